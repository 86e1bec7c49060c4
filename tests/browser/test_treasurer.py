"""The treasurer's dashboard on the web front: the trial balance (zero), the
accounts near their limits, the month's flows by category and the journal as CSV;
members do not get it."""

from __future__ import annotations

import uuid

from playwright.sync_api import Browser, expect

from tests.browser.conftest import HOURS, Community, assert_accessible, log_in, phone

NEAR_FLOOR_MINUTES = 570  # of the 600 minutes Alice may owe


def test_the_dashboard_shows_the_trial_balance_limits_flows_and_exports(
    browser: Browser, community: Community
) -> None:
    """After Alice spends most of what she may owe, the treasurer sees the ledger
    balanced, Alice near her limit, the month's flow, and downloads the journal."""
    transfer_id = str(uuid.uuid4())
    community.call(
        "POST",
        "/v1/transactions",
        community.alice,
        json={
            "id": transfer_id,
            "community": community.slug,
            "unit": HOURS,
            "from": community.alice.accounts[HOURS],
            "to": community.bob.accounts[HOURS],
            "amount": NEAR_FLOOR_MINUTES,
            "category": "garden",
        },
    )
    with phone(browser, community) as context:
        page = context.new_page()
        log_in(page, community.treasurer)
        page.get_by_role("link", name="Treasurer's dashboard").click()
        expect(page.locator("h1")).to_have_text("Treasurer's dashboard")
        expect(page.locator("#balanced")).to_have_text(
            "Balanced: every unit's balances add up to zero."
        )
        trial = page.get_by_role("table", name="Trial balance")
        expect(trial.get_by_role("row", name="Hours")).to_contain_text("0\u00a0h")
        near = page.get_by_role("table", name="Accounts near their limits")
        expect(near.get_by_role("row")).to_have_count(2)
        expect(near.get_by_role("row").nth(1)).to_contain_text("Alice")
        expect(page.get_by_role("table", name="This month by category")).to_contain_text("Garden")
        assert_accessible(page, "treasurer-dashboard")
        with page.expect_download() as download:
            page.get_by_role("button", name="Download the journal (CSV)").click()
        csv = download.value.path().read_text()
        assert transfer_id in csv
        assert download.value.suggested_filename.startswith(f"{community.slug}-journal-")


def test_a_member_is_not_shown_the_dashboard(browser: Browser, community: Community) -> None:
    """A member has no link to the dashboard, and its address shows their home."""
    with phone(browser, community) as context:
        page = context.new_page()
        log_in(page, community.bob)
        expect(page.get_by_role("link", name="Treasurer's dashboard")).to_have_count(0)
        page.goto("/#/audit")
        expect(page.locator("h1")).to_have_text("Hello Bob")
