"""Choosing the other member in a community of more than a hundred: the name is
searched on the service (the whole directory, a page at a time), not among the
first hundred names the phone was given."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.conftest import HOURS, Community, assert_accessible, log_in, phone

MEMBERS_ADDED = 110
PAGE_SIZE = 20


@pytest.fixture(scope="module")
def crowded(community: Community) -> Community:
    """The module's community with 110 more members ("Neighbour 001"...), who
    sort after Alice and Bob: the last ones are beyond the directory's first 100."""
    for number in range(1, MEMBERS_ADDED + 1):
        body = {
            "email": f"n{number}-{community.slug}@example.org",
            "display_name": f"Neighbour {number:03}",
        }
        community.call(
            "POST", f"/v1/communities/{community.slug}/members", community.admin, json=body
        )
    return community


def test_a_member_beyond_the_first_hundred_is_found_by_name_and_paid(
    browser: Browser, crowded: Community
) -> None:
    """The list shows a page of names, "Show more names" adds the next page; typing
    a name finds Neighbour 108 (the 111th name), and the exchange recorded with
    them is pending on their account."""
    directory = crowded.call(
        "GET", f"/v1/communities/{crowded.slug}/members?limit=100", crowded.alice
    )
    assert "Neighbour 108" not in [member["display_name"] for member in directory["items"]]
    with phone(browser, crowded) as context:
        page = context.new_page()
        log_in(page, crowded.alice)
        page.get_by_role("link", name="Record", exact=True).click()
        names = page.locator("#members input[name=member]")
        # Alice is not offered to herself: a page of 20 less her.
        expect(names).to_have_count(PAGE_SIZE - 1)
        page.get_by_role("button", name="Show more names").click()
        expect(names).to_have_count(2 * PAGE_SIZE - 1)
        assert_accessible(page, "record-many-members")
        page.get_by_label("Search by name").fill("Neighbour 108")
        expect(names).to_have_count(1)
        expect(page.get_by_role("button", name="Show more names")).to_be_hidden()
        page.get_by_label("Neighbour 108", exact=True).check()
        page.get_by_label("I helped someone").check()
        page.get_by_label("Hours").select_option("1")
        page.get_by_role("button", name="Record", exact=True).click()
        expect(page.locator("#status")).to_contain_text("Neighbour 108 will be asked to confirm it")
    (neighbour,) = crowded.call(
        "GET", f"/v1/communities/{crowded.slug}/members?q=Neighbour%20108", crowded.admin
    )["items"]
    (account,) = [ref["id"] for ref in neighbour["accounts"] if ref["unit"] == HOURS]
    (pending,) = [t for t in crowded.transactions_of(crowded.alice) if t["state"] == "pending"]
    assert [(p["account"], p["amount"]) for p in pending["postings"]] == [
        (account, -60),
        (crowded.alice.accounts[HOURS], 60),
    ]
