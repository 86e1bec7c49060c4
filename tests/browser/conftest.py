"""Browser tests of the web front: the real service on loopback, a community made
through its API, and Debian's Chromium driven by Playwright at a phone's size.

No browser is ever downloaded: without /usr/bin/chromium these tests fail and say
how to install it."""

from __future__ import annotations

import contextlib
import secrets
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.live_server import ThreadedServer
from timebank.app import create_app
from timebank.keys import IDENTITIES
from timebank.settings import Settings

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGUMENTS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
PHONE: dict[str, Any] = {
    "viewport": {"width": 390, "height": 844},
    "is_mobile": True,
    "has_touch": True,
}
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
PASSWORD = "a correct horse battery"
HOURS = "HOUR"
CURRENCY = "G"
HTTP_TIMEOUT_S = 30
SERIOUS_IMPACTS = frozenset({"serious", "critical"})


@dataclass
class Person:
    name: str
    email: str
    token: str
    party_id: str
    accounts: dict[str, str] = field(default_factory=dict)


@dataclass
class Community:
    """A community on the live service: its slug and a person per role."""

    base_url: str
    slug: str
    http: requests.Session
    alice: Person
    bob: Person
    treasurer: Person
    admin: Person

    def call(self, method: str, path: str, who: Person, **kwargs: Any) -> Any:
        """The JSON answer to a request made as `who`; any status but 2xx fails."""
        response = self.http.request(
            method,
            self.base_url + path,
            headers={"Authorization": f"Bearer {who.token}"},
            timeout=HTTP_TIMEOUT_S,
            **kwargs,
        )
        assert response.status_code < 300, f"{response.status_code}: {response.text}"
        return response.json() if response.content else None

    def transactions_of(self, who: Person, unit: str = HOURS) -> list[dict[str, Any]]:
        """Every transaction on the person's account of `unit`, newest first."""
        account = who.accounts[unit]
        page = self.call(
            "GET", f"/v1/communities/{self.slug}/transactions?account={account}", self.treasurer
        )
        return list(page["items"])


@pytest.fixture(scope="module")
def browser(settings: Settings) -> Iterator[Browser]:
    """Debian's Chromium, headless; a clear failure when it is not installed.

    Module-scoped and after the database fixtures: Playwright's synchronous API runs
    an event loop of its own while it is open, and pytest-asyncio cannot run async
    fixtures in the meantime."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests need Debian's Chromium; install it with"
            " `apt-get install -y chromium chromium-driver` (Playwright's own download is not"
            " used)",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGUMENTS
        )
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def community(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Community]:
    """The service on loopback with a community: hours and a currency, two members,
    a treasurer and an admin."""
    data_dir = tmp_path_factory.mktemp("browser")
    server = ThreadedServer(create_app(settings.model_copy(update={"data_dir": data_dir})))
    server.start()
    try:
        email = f"op-{secrets.token_hex(4)}@example.org"
        assert server.run(server.app[IDENTITIES].create_operator(email, PASSWORD, "Operator"))
        with requests.Session() as http:
            yield _populate(http, server.base_url, email)
    finally:
        server.stop()


def _login(http: requests.Session, base_url: str, email: str) -> str:
    response = http.post(
        base_url + "/v1/auth/token",
        data={"grant_type": "password", "username": email, "password": PASSWORD},
        timeout=HTTP_TIMEOUT_S,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def _populate(http: requests.Session, base_url: str, operator_email: str) -> Community:
    slug = f"b-{secrets.token_hex(4)}"
    operator = Person("Operator", operator_email, _login(http, base_url, operator_email), "")
    community = Community(base_url, slug, http, operator, operator, operator, operator)
    community.call("POST", "/v1/communities", operator, json={"slug": slug, "name": "Town"})
    for unit in (
        {"code": HOURS, "name": "Hours", "kind": "time"},
        {"code": CURRENCY, "name": "Green", "kind": "currency", "decimals": 2},
    ):
        limits = {"default_min_balance": -600, "default_max_balance": 600_000}
        community.call("POST", f"/v1/communities/{slug}/units", operator, json=unit | limits)

    def member(name: str, role: str) -> Person:
        email = f"{name.lower()}-{uuid.uuid4().hex[:8]}@example.org"
        body = {"email": email, "display_name": name, "password": PASSWORD, "role": role}
        made = community.call("POST", f"/v1/communities/{slug}/members", operator, json=body)
        person = Person(name, email, _login(http, base_url, email), made["party_id"])
        person.accounts = {ref["unit"]: ref["id"] for ref in made["accounts"]}
        return person

    community.admin = member("Admin", "admin")
    community.treasurer = member("Treasurer", "treasurer")
    community.alice = member("Alice", "member")
    community.bob = member("Bob", "member")
    return community


@contextlib.contextmanager
def phone(
    browser: Browser, community: Community, locale: str = "en-GB"
) -> Iterator[BrowserContext]:
    """A fresh phone-sized browser profile on the service; closed after use, and
    failing the test if a page of it threw an uncaught error."""
    context = browser.new_context(**PHONE, locale=locale, base_url=community.base_url)
    context.set_default_timeout(15_000)
    errors: list[str] = []
    context.on("weberror", lambda error: errors.append(str(error.error)))
    try:
        yield context
    finally:
        context.close()
    assert errors == [], f"uncaught errors in the page: {errors}"


LOGIN_LABELS = {
    "en": ("Email", "Password", "Log in"),
    "fr": ("Adresse e-mail", "Mot de passe", "Se connecter"),
}


def log_in(page: Page, person: Person, language: str = "en") -> None:
    email, password, submit = LOGIN_LABELS[language]
    page.goto("/")
    page.get_by_label(email).fill(person.email)
    page.get_by_label(password).fill(PASSWORD)
    page.get_by_role("button", name=submit).click()
    page.locator("h1", has_text=person.name).wait_for()


# How long wait_until polls before failing, and how often.
WAIT_UNTIL_TIMEOUT_S = 10.0
WAIT_UNTIL_INTERVAL_S = 0.05


def wait_until(page: Page, expression: str) -> None:
    """Waits until the page's `expression` is truthy. Not Playwright's
    wait_for_function: when the value is not true at once, its polling compiles
    the expression in the page, which the front's CSP (no 'unsafe-eval') blocks;
    page.evaluate is not compiled by the page and is allowed."""
    deadline = time.monotonic() + WAIT_UNTIL_TIMEOUT_S
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, (
            f"never true within {WAIT_UNTIL_TIMEOUT_S} s: {expression}"
        )
        time.sleep(WAIT_UNTIL_INTERVAL_S)


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)


def assert_accessible(page: Page, name: str) -> None:
    """axe-core finds nothing serious or critical on the page as it stands; a
    screenshot of it is kept in the artifacts either way."""
    screenshot(page, name)
    results = Axe().run(page)
    serious = [
        f"{violation['id']} ({violation['impact']}): {violation['help']}"
        f" at {[node['target'] for node in violation['nodes']]}"
        for violation in results.response["violations"]
        if violation["impact"] in SERIOUS_IMPACTS
    ]
    assert serious == [], f"{name}: " + "; ".join(serious)
