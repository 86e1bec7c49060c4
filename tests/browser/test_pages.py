"""Each screen at a phone's size: accessible by axe-core's rules, the history paged
as it scrolls with the running balance, devices listed and revoked, the language
switched, and a first visit that stays within its weight budget."""

from __future__ import annotations

import uuid
from typing import Any

from playwright.sync_api import Browser, Request, expect

from tests.browser.conftest import (
    HOURS,
    Community,
    assert_accessible,
    log_in,
    phone,
)

# A first visit (the page, its files, logging in and the home screen) must stay
# light for old phones on poor connections.
FIRST_VISIT_BUDGET_BYTES = 150_000
HISTORY_TRANSFERS = 25
HISTORY_PAGE_SIZE = 20


def test_every_screen_passes_axe(browser: Browser, community: Community) -> None:
    """Login, home, record, history and settings have no serious or critical axe
    violation."""
    with phone(browser, community) as context:
        page = context.new_page()
        page.goto("/")
        page.get_by_label("Email").wait_for()
        assert_accessible(page, "login")
        log_in(page, community.bob)
        assert_accessible(page, "home")
        for link, heading, name in (
            ("Record", "Record an exchange", "record"),
            ("History", "History", "history"),
            ("Settings", "Settings", "settings"),
        ):
            page.get_by_role("link", name=link, exact=True).click()
            expect(page.locator("h1")).to_have_text(heading)
            page.wait_for_load_state("networkidle")
            assert_accessible(page, name)


def _transfer(community: Community, amount: int) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "community": community.slug,
        "unit": HOURS,
        "from": community.alice.accounts[HOURS],
        "to": community.bob.accounts[HOURS],
        "amount": amount,
        "memo": f"errand {amount}",
    }


def test_the_history_pages_as_it_scrolls_with_the_running_balance(
    browser: Browser, community: Community
) -> None:
    """The statement shows the newest first with the balance each left, and the
    next page arrives when the end of the list scrolls into view."""
    start = community.call("GET", f"/v1/accounts/{community.bob.accounts[HOURS]}", community.bob)
    transfers = [_transfer(community, minutes) for minutes in range(1, HISTORY_TRANSFERS + 1)]
    community.call(
        "POST",
        "/v1/transactions/batch",
        community.alice,
        json={"atomic": True, "transactions": transfers},
    )
    with phone(browser, community) as context:
        page = context.new_page()
        log_in(page, community.bob)
        page.get_by_role("link", name="History", exact=True).click()
        entries = page.locator("li.entry")
        expect(entries.first).to_contain_text("errand 25")
        total = start["balance"] + sum(range(1, HISTORY_TRANSFERS + 1))
        expected = f"Balance: {total // 60}\u00a0h\u00a0{total % 60:02d}"
        expect(entries.first).to_contain_text(expected)
        page.get_by_role("button", name="Show more").scroll_into_view_if_needed()
        expect(entries).to_have_count(HISTORY_TRANSFERS + start_entries(community))
        expect(entries.last).to_contain_text("errand 1")
        assert HISTORY_PAGE_SIZE < HISTORY_TRANSFERS


def start_entries(community: Community) -> int:
    """Bob's postings before this test's transfers (others in the module add some)."""
    page = community.call(
        "GET",
        f"/v1/accounts/{community.bob.accounts[HOURS]}/entries?limit=500",
        community.bob,
    )
    return len([item for item in page["items"] if not item["memo"].startswith("errand")])


def test_a_device_is_listed_and_revoked_and_the_language_switched(
    browser: Browser, community: Community
) -> None:
    """Settings list this device's registered key; revoking it revokes it on the
    service; choosing French turns the interface French."""
    with phone(browser, community) as context:
        page = context.new_page()
        log_in(page, community.alice)
        page.get_by_role("link", name="Settings", exact=True).click()
        device = page.locator("li.card", has_text="This device")
        expect(device).to_have_count(1)
        device.get_by_role("button", name="Revoke").click()
        expect(page.locator("#status")).to_have_text("The device can no longer sign.")
        keys = community.call("GET", f"/v1/me/keys?community={community.slug}", community.alice)[
            "items"
        ]
        assert [key["revoked_at"] is not None for key in keys] == [True] * len(keys)
        page.get_by_label("Language").select_option("fr")
        expect(page.locator("h1")).to_have_text("Réglages")
        assert page.evaluate("document.documentElement.lang") == "fr"


def test_a_first_visit_stays_within_its_weight_budget(
    browser: Browser, community: Community
) -> None:
    """Everything a first visit transfers (page, files, service worker, log in and
    the home screen's API calls), compressed as sent, is under 150 KB."""
    with phone(browser, community) as context:
        finished: list[Request] = []
        context.on("requestfinished", lambda request: finished.append(request))
        page = context.new_page()
        log_in(page, community.bob)
        page.evaluate("navigator.serviceWorker.ready.then(() => true)")
        page.wait_for_load_state("networkidle")
        sizes = [request.sizes() for request in finished]
        total = sum(size["responseBodySize"] + size["responseHeadersSize"] for size in sizes)
        print(f"first visit: {len(finished)} requests, {total} bytes")
        assert any(request.url.endswith("/js/main.js") for request in finished)
        assert 0 < total < FIRST_VISIT_BUDGET_BYTES
