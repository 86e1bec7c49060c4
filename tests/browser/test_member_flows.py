"""Members on their phones: an exchange recorded and signed on one device, confirmed
with a signed acknowledgement on another, both balances updated; an exchange
recorded offline, kept, and sent exactly once when the connection returns."""

from __future__ import annotations

from playwright.sync_api import Browser, Page, Request, expect

from tests.browser.conftest import (
    Community,
    assert_accessible,
    log_in,
    phone,
    screenshot,
    wait_until,
)
from timebank.signing import intents


def record_exchange(
    page: Page, *, helped: bool, other: str, hours: int, minutes: int, memo: str
) -> None:
    page.get_by_role("link", name="Record", exact=True).click()
    page.get_by_label("I helped someone" if helped else "Someone helped me").check()
    page.get_by_label("Search by name").fill(other[:2])
    # The search's answer replaces the list: wait for it (the treasurer is filtered out).
    expect(page.get_by_label("Treasurer", exact=True)).to_have_count(0)
    page.get_by_label(other, exact=True).check()
    page.get_by_label("Hours").select_option(str(hours))
    page.get_by_label("Minutes").select_option(str(minutes))
    page.get_by_label("Category").select_option("garden")
    page.get_by_label("Note (optional)").fill(memo)
    page.get_by_role("button", name="Record", exact=True).click()


def balance(page: Page) -> str:
    return page.locator(".balance strong").first.inner_text().replace("\u00a0", " ")


def test_an_exchange_signed_on_one_phone_is_confirmed_on_another(
    browser: Browser, community: Community
) -> None:
    """Alice, helped by Bob, records it: her device makes and registers an Ed25519
    key and signs the intent; the service holds it pending. Bob, in French, sees it
    waiting, confirms with a signed acknowledgement, and both balances move."""
    with (
        phone(browser, community) as alice_phone,
        phone(browser, community, "fr-FR") as bob_phone,
    ):
        alice = alice_phone.new_page()
        log_in(alice, community.alice)
        assert balance(alice) == "0 h"
        assert_accessible(alice, "home-empty")
        memo = "Jardin, café \u2615 \u00e9t\u00e9"
        record_exchange(alice, helped=False, other="Bob", hours=1, minutes=30, memo=memo)
        expect(alice.locator("#status")).to_contain_text("Bob will be asked to confirm it")
        assert_accessible(alice, "home-waiting-for-bob")

        (pending,) = community.transactions_of(community.alice)
        assert pending["state"] == "pending"
        detail = community.call("GET", f"/v1/transactions/{pending['id']}", community.alice)
        (signature,) = detail["signatures"]
        keys = community.call("GET", f"/v1/me/keys?community={community.slug}", community.alice)[
            "items"
        ]
        (key,) = [k for k in keys if k["key_id"] == signature["key_id"]]
        assert key["algorithm"] == "ed25519"
        signed = intents.b64url_decode(signature["signed"])
        assert intents.verify_signature(
            intents.KeyAlgorithm.ED25519,
            intents.b64url_decode(key["public_key"]),
            signed,
            intents.b64url_decode(signature["signature"]),
        )
        intent = intents.parse_transfer_intent(signed)
        assert (intent.amount, intent.memo_hash) == (90, intents.memo_hash(memo))

        bob = bob_phone.new_page()
        log_in(bob, community.bob, "fr")
        waiting = bob.get_by_role("listitem").filter(has_text="Alice")
        expect(waiting).to_contain_text("dit que vous lui avez rendu service : 1 h 30")
        assert_accessible(bob, "home-bob-fr-to-confirm")
        waiting.get_by_role("button", name="Valider").click()
        expect(bob.locator("#status")).to_have_text("Validé.")
        expect(bob.locator(".balance strong").first).to_have_text("1\u00a0h\u00a030")
        screenshot(bob, "home-bob-fr-confirmed")

        alice.reload()
        expect(alice.locator(".balance strong").first).to_have_text("\u22121\u00a0h\u00a030")
        posted = community.call("GET", f"/v1/transactions/{pending['id']}", community.bob)
        assert posted["state"] == "posted"
        assert sorted(s["purpose"] for s in posted["signatures"]) == ["ack", "intent"]


OUTBOX = """() => new Promise((resolve, reject) => {
  const opening = indexedDB.open("timebank");
  opening.onerror = () => reject(opening.error);
  opening.onsuccess = () => {
    const reading = opening.result.transaction("outbox").objectStore("outbox").getAll();
    reading.onsuccess = () => resolve(reading.result);
  };
})"""


def test_an_exchange_recorded_offline_is_sent_once_back_online(
    browser: Browser, community: Community
) -> None:
    """With the connection cut, the app shell still loads (service worker) and an
    exchange recorded and signed on the device waits in the outbox with its id and
    signature, said on screen; when the connection returns it is posted exactly
    once, with that signature, and never again."""
    with phone(browser, community) as context:
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
        log_in(page, community.alice)
        page.evaluate("navigator.serviceWorker.ready.then(() => true)")
        # Read when the home screen is idle, and kept for signing offline.
        wait_until(page, "JSON.parse(localStorage.getItem('timebank.context') || '{}').origin")
        before = len(community.transactions_of(community.alice))

        context.set_offline(True)
        page.reload()
        expect(page.locator("#offline")).to_be_visible()
        record_exchange(page, helped=False, other="Bob", hours=0, minutes=45, memo="offline help")
        expect(page.locator("#status")).to_contain_text("Kept on this phone")
        expect(page.locator("#outbox")).to_contain_text("Bob")
        assert_accessible(page, "home-offline-outbox")
        (kept,) = page.evaluate(OUTBOX)
        assert kept["body"]["id"] == kept["id"]
        assert set(kept["body"]["signed"]) == {"intent", "signature"}
        assert len(community.transactions_of(community.alice)) == before

        context.set_offline(False)
        expect(page.locator("#outbox")).to_have_count(0)
        page.reload()
        page.locator("h1", has_text="Alice").wait_for()
        after = community.transactions_of(community.alice)
        sent = [t for t in after if t["memo"] == "offline help"]
        assert len(after) == before + 1
        assert [transaction["id"] for transaction in sent] == [kept["id"]]
        detail = community.call("GET", f"/v1/transactions/{kept['id']}", community.alice)
        assert detail["state"] == "pending"
        (signature,) = detail["signatures"]
        assert signature["signed"] == kept["body"]["signed"]["intent"]
        assert [request.response().status for request in posts] == [201]  # type: ignore[union-attr]
        assert page.evaluate(OUTBOX) == []


def test_a_signed_exchange_declined_carries_the_signed_refusal(
    browser: Browser, community: Community
) -> None:
    """Bob, named by Alice as having helped her, declines on his phone: his device
    signs an acknowledgement saying "decline", and the exchange is voided with it."""
    with phone(browser, community) as alice_phone, phone(browser, community) as bob_phone:
        alice = alice_phone.new_page()
        log_in(alice, community.alice)
        record_exchange(alice, helped=False, other="Bob", hours=2, minutes=0, memo="not me")
        expect(alice.locator("#status")).to_contain_text("Bob will be asked to confirm it")
        bob = bob_phone.new_page()
        log_in(bob, community.bob)
        waiting = bob.get_by_role("listitem").filter(has_text="not me")
        expect(waiting).to_contain_text("Alice says you helped them: 2 h")
        waiting.get_by_role("button", name="Decline").click()
        expect(bob.locator("#status")).to_have_text("Declined.")
        expect(bob.get_by_role("listitem").filter(has_text="not me")).to_have_count(0)
    (declined,) = [t for t in community.transactions_of(community.alice) if t["memo"] == "not me"]
    detail = community.call("GET", f"/v1/transactions/{declined['id']}", community.bob)
    assert detail["state"] == "voided"
    acks = [s for s in detail["signatures"] if s["purpose"] == "ack"]
    assert len(acks) == 1
    ack = intents.parse_ack(intents.b64url_decode(acks[0]["signed"]))
    assert ack.decision is intents.AckDecision.DECLINE
