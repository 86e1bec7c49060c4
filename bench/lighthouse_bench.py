"""Lighthouse on the members' web front: performance, accessibility and
best-practices scores at Lighthouse's mobile profile (a throttled mid-range phone),
target 95 or more each.

    python -m bench.lighthouse_bench            # installs Lighthouse 12.2.3 on first run

Lighthouse (npm, pinned; version 13 needs Node 22) goes into bench/lighthouse/, which
git ignores; it drives Debian's Chromium (/usr/bin/chromium), never a downloaded one.
The service runs as `timebank demo` on loopback with an embedded PostgreSQL in a
temporary directory. The login screen is measured as a stranger sees it; then a demo
member logs in (Playwright, in the same browser profile) and the member screens are
measured with that session (`--disable-storage-reset`). Each Lighthouse run gets a
Chromium started afresh on the profile kept on disk (session, service worker, cache),
as a member opens the app: see `measure` for why not one long-lived browser.

The invited person's welcome screen is measured as a stranger too, and the
treasurer's dashboard (with its charts and an admin's tasks) in a second profile,
logged in as the demo's admin.

Beside the scores it prints, for each screen, Lighthouse's time to interactive and
the bytes transferred (the login screen's first run is a first visit: nothing
cached, no service worker yet; the issue's budget is 150 KB), and how long the home
screen takes to be usable on the loopback server with the CPU slowed four times
(Lighthouse's mid-range phone) through the DevTools protocol: from navigation to
the member's balance and the "Record an exchange" button shown, as a returning
member opens it (service worker and cache) and with both bypassed, each the median
of `--runs` loads; the issue's target is 1 s.

Scores are absolute (Lighthouse's own scale, its simulated throttling), not ratios:
they are what the issue asks for. Each screen is measured several times (`--runs`,
3 by default) and the median of each score is printed, as Lighthouse advises: one
run on a busy two-core machine can lose ten points of performance to a neighbour.
Exit code 1 when a run fails; a score under the target is reported, not an exit code.
"""

# The subprocesses are our own tools (npm, Chromium, Lighthouse, timebank) with fixed
# arguments, and the URLs opened are the loopback service's and Chromium's.
# ruff: noqa: S603, S607, S310

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
LIGHTHOUSE_DIRECTORY = ROOT / "bench" / "lighthouse"
LIGHTHOUSE_VERSION = "12.2.3"
LIGHTHOUSE = LIGHTHOUSE_DIRECTORY / "node_modules" / ".bin" / "lighthouse"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
CATEGORIES = ("performance", "accessibility", "best-practices")
TARGET_SCORE = 95
DEMO_MEMBER = "chloe@demo.timebank.example"
DEMO_ADMIN = "alice@demo.timebank.example"
PASSWORD_LINE = re.compile(r"password \(shown only now\): (\S+)")
START_TIMEOUT_S = 90.0
LIGHTHOUSE_TIMEOUT_S = 300.0
LIGHTHOUSE_ATTEMPTS = 3
CHROMIUM_CLOSE_TIMEOUT_S = 30.0
MEMBER_SCREENS = ("home", "record", "history", "pools", "pay", "settings")
# Seen before logging in: an invitation's link (its token need not be valid to draw it).
STRANGER_SCREENS = {"login": "/", "welcome": "/#/welcome?token=measured"}
ADMIN_SCREENS = ("audit",)
# Lighthouse's mobile profile slows the CPU four times (a mid-range phone).
CPU_SLOWDOWN = 4
HOME_USABLE_TARGET_MS = 1000
FIRST_VISIT_BUDGET_BYTES = 150 * 1024


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def install_lighthouse() -> None:
    if LIGHTHOUSE.exists():
        return
    LIGHTHOUSE_DIRECTORY.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            "npm",
            "install",
            "--no-save",
            "--prefix",
            str(LIGHTHOUSE_DIRECTORY),
            "-E",
            f"lighthouse@{LIGHTHOUSE_VERSION}",
        ],
        check=True,
    )


def wait_until(check: Callable[[], bool], what: str, timeout_s: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if check():
                return
        time.sleep(0.2)
    raise SystemExit(f"lighthouse_bench: {what} did not happen in {timeout_s:.0f} s")


@contextlib.contextmanager
def demo_service(directory: Path) -> Iterator[tuple[str, str]]:
    """`timebank demo` on a free loopback port: its URL and the demo password."""
    port = free_port()
    environment = {
        **os.environ,
        "TIMEBANK_DATA_DIR": str(directory / "data"),
        "TIMEBANK_LOG_LEVEL": "warning",
    }
    environment.pop("DATABASE_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "timebank", "demo", "--host", "127.0.0.1", "--port", str(port)],
        env=environment,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        password = None
        for line in process.stdout:
            match = PASSWORD_LINE.search(line)
            if match:
                password = match.group(1)
                break
        if password is None:
            raise SystemExit("lighthouse_bench: the demo printed no password")
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: urllib.request.urlopen(url + "/health/ready").status == 200, "ready")
        yield url, password
    finally:
        process.terminate()
        process.wait(timeout=30)


@contextlib.contextmanager
def chromium(directory: Path, profile: str = "profile") -> Iterator[int]:
    """Chromium with a profile of its own and a debugging port, for both Playwright
    (to log in) and Lighthouse (to measure) to drive."""
    port = free_port()
    process = subprocess.Popen(
        [
            str(CHROMIUM),
            *CHROMIUM_FLAGS,
            f"--remote-debugging-port={port}",
            f"--user-data-dir={directory / profile}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/json/version").status == 200,
            "Chromium's debugging port",
        )
        yield port
    finally:
        close_gracefully(port)
        try:
            process.wait(timeout=CHROMIUM_CLOSE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.terminate()
            process.wait(timeout=30)


def close_gracefully(debugging_port: int) -> None:
    """Closes Chromium as a person would (DevTools' Browser.close), so that it writes
    its profile out: a SIGTERM may end it before the session's localStorage is on
    disk, and the next Chromium on that profile would show the login screen."""
    with contextlib.suppress(Exception), sync_playwright() as playwright:
        browser = playwright.chromium.connect_over_cdp(f"http://127.0.0.1:{debugging_port}")
        browser.new_browser_cdp_session().send("Browser.close")


def log_in(debugging_port: int, url: str, password: str, email: str = DEMO_MEMBER) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.connect_over_cdp(f"http://127.0.0.1:{debugging_port}")
        page = browser.contexts[0].new_page()
        page.goto(url + "/")
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Log in").click()
        page.locator("h1", has_text="Hello").wait_for(timeout=30_000)
        page.evaluate("navigator.serviceWorker.ready.then(() => true)")
        page.close()


def lighthouse(url: str, debugging_port: int, output: Path) -> dict[str, int]:
    """The scores (0 to 100) of one Lighthouse run at the mobile profile, with its
    time to interactive (ms) and the bytes the page transferred."""
    subprocess.run(
        [
            str(LIGHTHOUSE),
            url,
            f"--port={debugging_port}",
            "--disable-storage-reset",
            f"--only-categories={','.join(CATEGORIES)}",
            "--output=json",
            f"--output-path={output}",
            "--quiet",
            "--locale=en-US",
        ],
        check=True,
        timeout=LIGHTHOUSE_TIMEOUT_S,
        env={**os.environ, "CHROME_PATH": str(CHROMIUM)},
    )
    report = json.loads(output.read_text())
    scores = {name: round(report["categories"][name]["score"] * 100) for name in CATEGORIES}
    audits = report["audits"]
    scores["interactive_ms"] = round(audits["interactive"]["numericValue"])
    scores["transfer_bytes"] = round(audits["total-byte-weight"]["numericValue"])
    return scores


def measure(
    runs: dict[str, list[dict[str, int]]],
    screen: str,
    url: str,
    directory: Path,
    profile: str,
    count: int,
) -> None:
    """`count` Lighthouse runs of one screen, each in a Chromium started afresh on the
    profile (its session, service worker and cache kept on disk), as a member opens
    the app. In one long-lived Chromium, most runs after the first began with a
    task of 120 ms to 170 ms that no page of ours ran: V8 walking its heap and
    deoptimising code as Lighthouse's instrumentation started, in a renderer
    process that same-site pages before it had used. Lighthouse counts it 4x (the
    simulated phone's CPU) as blocking time: 86 to 88 instead of 99 to 100 on the
    login screen, whose own tasks are the same either way."""
    for run in range(count):
        report = directory / f"{screen}-{run}.json"
        for attempt in range(1, LIGHTHOUSE_ATTEMPTS + 1):
            with chromium(directory, profile) as port:
                try:
                    runs.setdefault(screen, []).append(lighthouse(url, port, report))
                    if screen not in STRANGER_SCREENS and not read_the_api(report):
                        raise SystemExit(f"lighthouse_bench: {screen} was measured logged out")
                    break
                except subprocess.CalledProcessError:
                    # Lighthouse's own runtime errors (NO_NAVSTART: "run Lighthouse
                    # again"); a run that fails every attempt fails the bench.
                    if attempt == LIGHTHOUSE_ATTEMPTS:
                        raise
                    print(f"{screen}: Lighthouse failed, run {run + 1} tried again", flush=True)


def read_the_api(report: Path) -> bool:
    """Whether the measured page asked the API anything: a logged-in screen reads
    at least the member's context; the login screen reads nothing."""
    requests = json.loads(report.read_text())["audits"]["network-requests"]["details"]["items"]
    return any("/v1/" in request["url"] for request in requests)


HOME_USABLE = """() => {
  const title = document.querySelector("h1");
  const record = document.querySelector('a[href="#/record"]');
  return Boolean(title && title.textContent.startsWith("Hello") && record
    && document.querySelector(".balance strong"));
}"""


def home_usable_ms(debugging_port: int, url: str, runs: int, *, cached: bool) -> list[float]:
    """Milliseconds from navigation to the home screen usable (the member's name,
    balance and the button to record), the CPU slowed CPU_SLOWDOWN times, on the
    loopback server; `cached`: with the service worker and the HTTP cache, as a
    returning member opens it; else both bypassed (every file fetched again)."""
    timings = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.connect_over_cdp(f"http://127.0.0.1:{debugging_port}")
        page = browser.contexts[0].new_page()
        session = page.context.new_cdp_session(page)
        session.send("Network.enable")
        session.send("Network.setCacheDisabled", {"cacheDisabled": not cached})
        session.send("Network.setBypassServiceWorker", {"bypass": not cached})
        page.goto(url + "/#/home")
        page.wait_for_function(HOME_USABLE, timeout=30_000)
        session.send("Emulation.setCPUThrottlingRate", {"rate": CPU_SLOWDOWN})
        for _ in range(runs):
            page.goto("about:blank")
            page.goto(url + "/#/home", wait_until="commit")
            page.wait_for_function(HOME_USABLE, timeout=30_000, polling="raf")
            timings.append(page.evaluate("performance.now()"))
        session.send("Emulation.setCPUThrottlingRate", {"rate": 1})
        page.close()
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="copy the JSON reports into this directory")
    parser.add_argument("--runs", type=int, default=3, help="runs per screen (median shown)")
    arguments = parser.parse_args()
    if not CHROMIUM.exists():
        raise SystemExit("lighthouse_bench: install Chromium: apt-get install -y chromium")
    install_lighthouse()
    with tempfile.TemporaryDirectory(prefix="timebank-lighthouse-") as temporary:
        directory = Path(temporary)
        runs: dict[str, list[dict[str, int]]] = {}
        with demo_service(directory) as (url, password):
            for screen, path in STRANGER_SCREENS.items():
                measure(runs, screen, url + path, directory, "profile", arguments.runs)
            with chromium(directory) as port:
                log_in(port, url, password)
            for screen in MEMBER_SCREENS:
                measure(runs, screen, f"{url}/#/{screen}", directory, "profile", arguments.runs)
            with chromium(directory) as port:
                usable = {
                    "service worker and cache": home_usable_ms(
                        port, url, arguments.runs, cached=True
                    ),
                    "nothing cached": home_usable_ms(port, url, arguments.runs, cached=False),
                }
            with chromium(directory, "admin-profile") as port:
                log_in(port, url, password, DEMO_ADMIN)
            for screen in ADMIN_SCREENS:
                measure(
                    runs, screen, f"{url}/#/{screen}", directory, "admin-profile", arguments.runs
                )
        if arguments.keep:
            arguments.keep.mkdir(parents=True, exist_ok=True)
            for report in directory.glob("*.json"):
                (arguments.keep / report.name).write_bytes(report.read_bytes())
    print_table(
        {
            screen: {name: round(statistics.median(r[name] for r in scores)) for name in scores[0]}
            for screen, scores in runs.items()
        },
        arguments.runs,
    )
    first_visit = runs["login"][0]["transfer_bytes"]
    print(
        f"first visit (login, nothing cached): {first_visit / 1024:.1f} KB transferred,"
        f" budget {FIRST_VISIT_BUDGET_BYTES // 1024} KB"
        f"{'' if first_visit <= FIRST_VISIT_BUDGET_BYTES else ' !'}"
    )
    for how, timings in usable.items():
        median = statistics.median(timings)
        print(
            f"home usable, CPU slowed {CPU_SLOWDOWN}x, loopback, {how}:"
            f" median {median:.0f} ms of {len(timings)} (min {min(timings):.0f},"
            f" max {max(timings):.0f}), target {HOME_USABLE_TARGET_MS} ms"
            f"{'' if median <= HOME_USABLE_TARGET_MS else ' !'}"
        )


def print_table(results: dict[str, dict[str, int]], runs: int) -> None:
    print(
        f"Lighthouse {LIGHTHOUSE_VERSION}, mobile profile, median of {runs} runs,"
        f" target {TARGET_SCORE}+ each"
    )
    print(
        f"{'screen':<10}"
        + "".join(f"{name:>16}" for name in CATEGORIES)
        + f"{'TTI ms':>10}{'KB':>8}"
    )
    for screen, scores in results.items():
        # A "!" marks a score under the target.
        cells = "".join(
            f"{scores[name]:>15}{' ' if scores[name] >= TARGET_SCORE else '!'}"
            for name in CATEGORIES
        )
        extra = f"{scores['interactive_ms']:>10}{scores['transfer_bytes'] / 1024:>8.1f}"
        print(f"{screen:<10}{cells}{extra}")


if __name__ == "__main__":
    main()
