"""The treasurer's dashboard on the web front: the trial balance (zero), the
accounts near their limits, the month's flows by category and the journal as CSV;
members do not get it."""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import Browser, Route, expect

from tests.browser.conftest import (
    HOURS,
    Community,
    assert_accessible,
    log_in,
    phone,
    screenshot,
)

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
        # The flows as charts, with their figures as a table for screen readers.
        volume = page.get_by_role("figure", name="Amount exchanged per month (Hours)")
        expect(volume.locator("svg rect.bar")).to_have_count(12)
        figures = volume.get_by_role("table", name="Amount exchanged per month (Hours)")
        expect(figures.get_by_role("row")).to_have_count(13)
        expect(figures.get_by_role("row").last).to_contain_text("9\u00a0h\u00a030")
        count = page.get_by_role("figure", name="Number of exchanges per month (Hours)")
        expect(count.get_by_role("row").last).to_contain_text("1")
        assert_accessible(page, "treasurer-dashboard")
        with page.expect_download() as download:
            page.get_by_role("button", name="Download the journal (CSV)").click()
        csv = download.value.path().read_text()
        assert transfer_id in csv
        assert download.value.suggested_filename.startswith(f"{community.slug}-journal-")


def test_the_flow_charts_by_week_in_french_and_at_200_percent_text(
    browser: Browser, community: Community
) -> None:
    """By week, in French: the charts' titles, dates and amounts in the locale's
    format; with text at 200% they are drawn again with larger labels and still
    fit the phone's width; axe finds nothing serious."""
    community.call(
        "POST",
        "/v1/transactions",
        community.bob,
        json={
            "id": str(uuid.uuid4()),
            "community": community.slug,
            "unit": HOURS,
            "from": community.bob.accounts[HOURS],
            "to": community.alice.accounts[HOURS],
            "amount": 30,
        },
    )
    with phone(browser, community, "fr-FR") as context:
        page = context.new_page()
        log_in(page, community.treasurer, "fr")
        page.get_by_role("link", name="Tableau de bord du trésorier").click()
        page.get_by_label("Afficher").select_option("week")
        volume = page.get_by_role("figure", name="Quantité échangée par semaine (Hours)")
        expect(volume.locator("svg rect.bar")).to_have_count(12)
        expect(volume.get_by_role("row").last).to_contain_text("Semaine du")
        expect(volume.get_by_role("row").last).to_contain_text("\u00a0h")
        size_at_100 = float(volume.locator("svg text").first.get_attribute("font-size") or 0)
        assert_accessible(page, "treasurer-charts-week-fr")
        page.evaluate(
            "() => document.documentElement.style.setProperty('font-size', '200%', 'important')"
        )
        page.get_by_label("Afficher").select_option("month")
        volume = page.get_by_role("figure", name="Quantité échangée par mois (Hours)")
        expect(volume.locator("svg rect.bar")).to_have_count(12)
        size_at_200 = float(volume.locator("svg text").first.get_attribute("font-size") or 0)
        # The labels grow with the page's text: 18 px (the app's 112.5%) to 32 px.
        assert size_at_200 / size_at_100 == pytest.approx(32 / 18)
        overflow = page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 1
        screenshot(page, "treasurer-charts-200-percent")


def test_a_member_is_not_shown_the_dashboard(browser: Browser, community: Community) -> None:
    """A member has no link to the dashboard, and its address shows their home."""
    with phone(browser, community) as context:
        page = context.new_page()
        log_in(page, community.bob)
        expect(page.get_by_role("link", name="Treasurer's dashboard")).to_have_count(0)
        page.goto("/#/audit")
        expect(page.locator("h1")).to_have_text("Hello Bob")


def test_the_dashboard_shows_pools_dues_reserve_and_verifies_the_log(
    browser: Browser, community: Community
) -> None:
    """The treasurer sees the pools with their requests and decisions, the dues
    (none unpaid), the euro reserve adding up, nobody idle, and the latest checkpoint; "Verify
    now" recomputes the root from every entry on the phone and checks the note's
    signature and the newest entry's proof; an entry changed on the way is caught.
    An admin's tasks are not offered to a treasurer."""
    slug = community.slug
    community.call(
        "PUT",
        f"/v1/communities/{slug}/currencies/G",
        community.admin,
        json={"reconversion_fee_bps": 200},
    )
    pool = community.call(
        "POST",
        f"/v1/communities/{slug}/pools",
        community.admin,
        json={
            "name": "Helping hands",
            "purpose": "Hours for members who cannot give back yet",
            "managers": [community.bob.party_id],
            "approvals_required": 1,
            "units": [{"unit": HOURS, "grant_max": 120, "beneficiary_period_max": 180}],
        },
    )
    community.call(
        "POST",
        f"/v1/communities/{slug}/pools/{pool['id']}/requests",
        community.alice,
        json={"id": str(uuid.uuid4()), "unit": HOURS, "amount": 30, "reason": "boxes"},
    )
    with phone(browser, community) as context:
        page = context.new_page()
        log_in(page, community.treasurer)
        page.get_by_role("link", name="Treasurer's dashboard").click()
        requests = page.get_by_role("table", name="Requests to Helping hands")
        expect(requests.get_by_role("row").nth(1)).to_contain_text("Alice")
        expect(page.get_by_text("Every due is paid.")).to_be_visible()
        reserve = page.get_by_role("table", name="Euro reserve")
        expect(reserve).to_contain_text("Circulation = reserve + fees")
        # Everyone joined just now: nobody has been idle for 90 days.
        expect(page.get_by_text("Everyone has exchanged lately.")).to_be_visible()
        expect(page.get_by_text("Latest checkpoint:")).to_be_visible()
        expect(page.get_by_role("heading", name="Administration")).to_have_count(0)
        page.get_by_role("button", name="Verify now").click()
        expect(page.locator("#verify-result")).to_contain_text("Verified", timeout=30_000)
        assert_accessible(page, "treasurer-dashboard-economy")

        def tampered(route: Route) -> None:
            body = route.fetch().json()
            body["entries"][0] = body["entries"][0].replace('"v":1', '"v":1 ')
            route.fulfill(json=body)

        page.route("**/log/entries?*", tampered)
        page.get_by_role("button", name="Verify now").click()
        expect(page.locator("#verify-result")).to_have_text(
            "The entries do not give the checkpoint's root."
        )


def test_an_admin_invites_sets_limits_freezes_and_makes_an_api_client(
    browser: Browser, community: Community
) -> None:
    """On the dashboard an admin invites a member, sets Bob's limits, freezes and
    unfreezes his account, and creates an API client whose secret is shown once."""
    with phone(browser, community) as context:
        page = context.new_page()
        log_in(page, community.admin)
        page.get_by_role("link", name="Treasurer's dashboard").click()
        expect(page.get_by_role("heading", name="Administration")).to_be_visible()
        assert_accessible(page, "admin-dashboard")
        page.get_by_label("Email").fill(f"carol-{uuid.uuid4().hex[:6]}@example.org")
        page.get_by_label("Name", exact=True).first.fill("Carol")
        page.get_by_role("button", name="Invite a member").click()
        expect(page.locator("#status")).to_have_text("Carol is invited.")

        page.get_by_label("Account", exact=True).select_option(label="Bob · Hours")
        page.get_by_label("May owe at most").fill("20")
        page.get_by_label("May hold at most").fill("200")
        page.get_by_role("button", name="Set the limits").click()
        expect(page.locator("#status")).to_have_text("Limits set.")
        bob = community.call(
            "GET", f"/v1/accounts/{community.bob.accounts[HOURS]}", community.admin
        )
        assert (bob["min_balance"], bob["max_balance"]) == (-1200, 12000)
        page.get_by_role("button", name="Freeze", exact=True).click()
        expect(page.locator("#status")).to_have_text("Frozen.")
        bob = community.call(
            "GET", f"/v1/accounts/{community.bob.accounts[HOURS]}", community.admin
        )
        assert bob["status"] == "frozen"
        page.get_by_role("button", name="Unfreeze").click()
        expect(page.locator("#status")).to_have_text("Active again.")

        page.locator("#client-name").fill("Accounting export")
        page.get_by_label("audit:read").check()
        page.get_by_role("button", name="Create the client").click()
        expect(page.get_by_text("client_secret:")).to_be_visible()
    clients = community.call("GET", f"/v1/communities/{community.slug}/clients", community.admin)
    assert [c["scopes"] for c in clients["items"] if c["name"] == "Accounting export"] == [
        ["audit:read"]
    ]
