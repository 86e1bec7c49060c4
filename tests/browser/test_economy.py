"""Community economics on members' phones, where the community requires signatures:
"I helped someone" confirmed by the payer's signed intent; a solidarity pool given
to, asked for help, and approved by its manager's signed decision; paying with a
code (pasted: a headless browser has no camera)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from playwright.sync_api import Browser, Request, expect

from tests.browser.conftest import (
    HOURS,
    Community,
    assert_accessible,
    log_in,
    phone,
    wait_until,
)
from tests.browser.test_member_flows import OUTBOX, record_exchange
from timebank.signing import intents


@pytest.fixture(scope="module")
def signing(community: Community) -> Community:
    """The module's community, requiring signatures, with a pool Bob manages."""
    community.call(
        "PATCH",
        f"/v1/communities/{community.slug}",
        community.admin,
        json={"signatures": "required"},
    )
    return community


def make_pool(community: Community) -> dict[str, Any]:
    body = {
        "name": "Helping hands",
        "purpose": "Hours for members who cannot give back yet",
        "managers": [community.bob.party_id],
        "approvals_required": 1,
        "period_days": 30,
        "units": [{"unit": HOURS, "grant_max": 120, "beneficiary_period_max": 180}],
    }
    return dict(
        community.call(
            "POST", f"/v1/communities/{community.slug}/pools", community.admin, json=body
        )
    )


def test_the_payer_confirms_i_helped_you_with_a_signed_intent(
    browser: Browser, signing: Community
) -> None:
    """Where signatures are required, Bob records "I helped Alice" (a proposal);
    Alice's phone signs the intent as she confirms, and the exchange is posted
    with it."""
    with phone(browser, signing) as bob_phone, phone(browser, signing) as alice_phone:
        bob = bob_phone.new_page()
        log_in(bob, signing.bob)
        record_exchange(bob, helped=True, other="Alice", hours=0, minutes=45, memo="shelves")
        expect(bob.locator("#status")).to_contain_text("Alice will be asked to confirm it")
        alice = alice_phone.new_page()
        log_in(alice, signing.alice)
        waiting = alice.get_by_role("listitem").filter(has_text="shelves")
        expect(waiting).to_contain_text("Bob says they helped you: 0\u00a0h\u00a045")
        waiting.get_by_role("button", name="Confirm").click()
        expect(alice.locator("#status")).to_have_text("Confirmed.")
    (confirmed,) = [t for t in signing.transactions_of(signing.alice) if t["memo"] == "shelves"]
    detail = signing.call("GET", f"/v1/transactions/{confirmed['id']}", signing.alice)
    assert detail["state"] == "posted"
    (signature,) = detail["signatures"]
    intent = intents.parse_transfer_intent(intents.b64url_decode(signature["signed"]))
    assert (signature["purpose"], intent.amount, str(intent.payer)) == (
        "intent",
        45,
        signing.alice.accounts[HOURS],
    )


def test_a_member_gives_and_asks_and_a_manager_approves_with_a_signature(
    browser: Browser, signing: Community
) -> None:
    """Alice gives 1 h to the pool and asks it for 30 min; Bob, its manager, sees
    her request and approves it on his phone (a signed decision); Alice sees it
    paid. Every pool screen passes axe."""
    pool = make_pool(signing)
    with phone(browser, signing) as alice_phone, phone(browser, signing) as bob_phone:
        alice = alice_phone.new_page()
        log_in(alice, signing.alice)
        alice.get_by_role("link", name="Solidarity pools").click()
        expect(alice.locator("h2", has_text="Helping hands")).to_be_visible()
        give = alice.locator("form", has=alice.get_by_role("button", name="Give"))
        give.get_by_label("Hours").select_option("1")
        give.get_by_role("button", name="Give").click()
        expect(alice.locator("#status")).to_have_text("Thank you: given.")
        expect(alice.get_by_text("In the pool: 1\u00a0h")).to_be_visible()
        ask = alice.locator("form", has=alice.get_by_role("button", name="Ask"))
        ask.get_by_label("Hours").select_option("0")
        ask.get_by_label("Minutes").select_option("30")
        ask.get_by_label("Why (only the managers read it)").fill("moving house")
        ask.get_by_role("button", name="Ask").click()
        expect(alice.locator("#status")).to_contain_text("sent to the pool's managers")
        expect(alice.get_by_role("listitem").filter(has_text="moving house")).to_contain_text(
            "waiting for the managers"
        )
        assert_accessible(alice, "pools-member")

        bob = bob_phone.new_page()
        log_in(bob, signing.bob)
        bob.get_by_role("link", name="Solidarity pools").click()
        request = bob.get_by_role("listitem").filter(has_text="moving house")
        expect(request).to_contain_text("Alice asks for 0\u00a0h\u00a030")
        assert_accessible(bob, "pools-manager")
        request.get_by_role("button", name="Approve").click()
        expect(bob.locator("#status")).to_have_text("Approved.")

        alice.reload()
        expect(alice.get_by_role("listitem").filter(has_text="moving house")).to_contain_text(
            "paid"
        )
    base = f"/v1/communities/{signing.slug}/pools/{pool['id']}"
    (paid,) = signing.call("GET", f"{base}/requests", signing.bob)["items"]
    assert (paid["state"], paid["decisions"]) == (
        "paid",
        [{"manager": signing.bob.party_id, "decision": "approve"}],
    )


def test_a_member_pays_a_merchants_code_in_three_steps(
    browser: Browser, signing: Community
) -> None:
    """Alice shows her code for 1 h (drawn by the service); Bob, with the code
    pasted as a camera would read it, checks who and how much, pays, and the
    payment is posted with his signed intent."""
    with phone(browser, signing) as alice_phone, phone(browser, signing) as bob_phone:
        alice = alice_phone.new_page()
        log_in(alice, signing.alice)
        alice.get_by_role("link", name="Pay or get paid").click()
        alice.get_by_role("button", name="Show my code").click()
        code = alice.get_by_role("img", name="My payment code (QR code)")
        expect(code).to_be_visible()
        wait_until(
            alice,
            "document.querySelector('.code img').complete"
            " && document.querySelector('.code img').naturalWidth > 0",
        )
        link = alice.locator(".code .link").inner_text()
        assert f"/#/pay?to={signing.alice.accounts[HOURS]}&unit={HOURS}&amount=60" in link
        assert_accessible(alice, "pay-my-code")

        bob = bob_phone.new_page()
        log_in(bob, signing.bob)
        bob.get_by_role("link", name="Pay or get paid").click()
        bob.get_by_label("Or paste the code").fill(link)
        bob.get_by_role("button", name="Continue").click()
        expect(bob.get_by_text("Pay Alice 1 h?")).to_be_visible()
        assert_accessible(bob, "pay-confirm")
        bob.get_by_role("button", name="Pay", exact=True).click()
        expect(bob.locator("#status")).to_have_text("Paid Alice 1 h.")
    (paid,) = [
        t
        for t in signing.transactions_of(signing.bob)
        if t["state"] == "posted" and t["postings"][0]["amount"] == -60 and t["memo"] == ""
    ]
    detail = signing.call("GET", f"/v1/transactions/{paid['id']}", signing.bob)
    assert [s["purpose"] for s in detail["signatures"]] == ["intent"]


def test_a_code_names_whoever_holds_its_account_as_the_service_says(
    browser: Browser, signing: Community
) -> None:
    """A code carries no name: the one shown is the service's, for an account
    outside the member directory too (an organization's); a code for an account
    that is not one of this time bank's is refused before anything is paid."""
    bakery = signing.call(
        "POST",
        f"/v1/communities/{signing.slug}/organizations",
        signing.admin,
        json={"name": "Bakery of the square", "kind": "business"},
    )
    (hours,) = [account["id"] for account in bakery["accounts"] if account["unit"] == HOURS]
    with phone(browser, signing) as context:
        page = context.new_page()
        log_in(page, signing.bob)
        page.goto(f"/#/pay?to={hours}&unit={HOURS}&amount=15")
        expect(page.get_by_text("Pay Bakery of the square 0 h 15?")).to_be_visible()
        page.goto(f"/#/pay?to={uuid.uuid4()}&unit={HOURS}&amount=15")
        expect(page.get_by_text("This is not a payment code of this time bank.")).to_be_visible()
        expect(page.get_by_role("button", name="Pay", exact=True)).to_have_count(0)


def test_a_payment_confirmed_offline_waits_and_is_sent_once(
    browser: Browser, signing: Community
) -> None:
    """Bob confirms paying Alice's code with the connection cut: the signed payment
    waits on his phone with its id and signature, and the screen says so; when the
    connection returns it is posted exactly once, with that signature."""
    link = f"/#/pay?to={signing.alice.accounts[HOURS]}&unit={HOURS}&amount=15"
    with phone(browser, signing) as context:
        posts: list[Request] = []
        context.on(
            "requestfinished",
            lambda request: (
                posts.append(request)
                if request.method == "POST" and request.url.endswith("/v1/transactions")
                else None
            ),
        )
        page = context.new_page()
        log_in(page, signing.bob)
        page.evaluate("navigator.serviceWorker.ready.then(() => true)")
        wait_until(page, "JSON.parse(localStorage.getItem('timebank.context') || '{}').origin")
        page.goto(link)
        expect(page.get_by_text("Pay Alice 0 h 15?")).to_be_visible()
        before = len(signing.transactions_of(signing.bob))

        context.set_offline(True)
        page.get_by_role("button", name="Pay", exact=True).click()
        expect(page.locator("#status")).to_contain_text(
            "Payment of 0\u00a0h\u00a015 to Alice kept on this phone"
        )
        expect(page.locator("#outbox")).to_contain_text("Alice")
        assert_accessible(page, "pay-offline-outbox")
        (kept,) = page.evaluate(OUTBOX)
        assert kept["body"]["amount"] == 15
        assert set(kept["body"]["signed"]) == {"intent", "signature"}
        assert len(signing.transactions_of(signing.bob)) == before

        context.set_offline(False)
        expect(page.locator("#outbox")).to_have_count(0)
        assert page.evaluate(OUTBOX) == []
        assert [request.response().status for request in posts] == [201]  # type: ignore[union-attr]
    after = signing.transactions_of(signing.bob)
    assert len(after) == before + 1
    detail = signing.call("GET", f"/v1/transactions/{kept['id']}", signing.bob)
    assert detail["state"] == "posted"
    (signature,) = detail["signatures"]
    assert signature["signed"] == kept["body"]["signed"]["intent"]


def test_a_proposal_with_a_split_fixed_levy_is_confirmed_for_its_own_amount(
    browser: Browser, signing: Community
) -> None:
    """With a fixed levy of 5 minutes split between payer and payee, and an
    overflow to the same pool (where the amount paid in all would also fit the
    legs), Alice confirms Bob's "I helped you" of 1 h: her phone signs the 60
    minutes the proposal was made for, at the first try, and it posts."""
    pool = make_pool(signing)
    slug = signing.slug
    levies = f"/v1/communities/{slug}/policies/levies"
    overflow = f"/v1/communities/{slug}/policies/overflow"
    terms = {"unit": HOURS, "pool": pool["id"], "rate_bps": 0, "fixed_amount": 5}
    signing.call("PUT", levies, signing.admin, json=terms | {"paid_by": "split"})
    signing.call("PUT", overflow, signing.admin, json={"unit": HOURS, "pool": pool["id"]})
    try:
        with phone(browser, signing) as bob_phone, phone(browser, signing) as alice_phone:
            bob = bob_phone.new_page()
            log_in(bob, signing.bob)
            record_exchange(bob, helped=True, other="Alice", hours=1, minutes=0, memo="levied")
            expect(bob.locator("#status")).to_contain_text("Alice will be asked to confirm it")
            confirms: list[Request] = []
            alice_phone.on(
                "requestfinished",
                lambda request: (
                    confirms.append(request)
                    if request.url.split("?")[0].endswith("/confirm")
                    else None
                ),
            )
            alice = alice_phone.new_page()
            log_in(alice, signing.alice)
            waiting = alice.get_by_role("listitem").filter(has_text="levied")
            waiting.get_by_role("button", name="Confirm").click()
            expect(alice.locator("#status")).to_have_text("Confirmed.")
            assert len(confirms) == 1
    finally:
        signing.call("PUT", levies, signing.admin, json=terms | {"fixed_amount": 0})
        signing.call("PUT", overflow, signing.admin, json={"unit": HOURS, "pool": None})
    (confirmed,) = [t for t in signing.transactions_of(signing.alice) if t["memo"] == "levied"]
    detail = signing.call("GET", f"/v1/transactions/{confirmed['id']}", signing.alice)
    assert detail["state"] == "posted"
    assert [p["amount"] for p in detail["postings"]] == [-63, 58, 5]
    (signature,) = detail["signatures"]
    intent = intents.parse_transfer_intent(intents.b64url_decode(signature["signed"]))
    assert intent.amount == 60
