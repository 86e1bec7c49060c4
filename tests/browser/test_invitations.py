"""An admin invites a member from the dashboard and hands over the one-time link
(no SMTP here: copied); the invited person opens it on their phone, chooses a
password and is logged in; the link then works no more."""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

from playwright.sync_api import Browser, expect

from tests.browser.conftest import Community, assert_accessible, log_in, phone

NEW_PASSWORD = "un jardin de quarante tomates"


def test_an_invited_person_chooses_a_password_with_the_link_once(
    browser: Browser, community: Community
) -> None:
    """The admin sees the link (not emailed: said so), copies it, and sees the
    invitation waiting; Dora, in French, opens it, is told two different
    passwords apart, chooses one and is logged in; the same link is then refused
    in plain words, and the admin sees the password chosen. Every screen passes
    axe."""
    email = f"dora-{uuid.uuid4().hex[:6]}@example.org"
    with phone(browser, community) as admin_phone:
        admin_phone.grant_permissions(["clipboard-read", "clipboard-write"])
        admin = admin_phone.new_page()
        log_in(admin, community.admin)
        admin.get_by_role("link", name="Treasurer's dashboard").click()
        admin.get_by_label("Email").fill(email)
        admin.get_by_label("Name", exact=True).first.fill("Dora")
        admin.get_by_role("button", name="Invite a member").click()
        expect(admin.locator("#invite-result")).to_contain_text(
            "No email was sent. Copy the link below and give it to Dora."
        )
        link = admin.get_by_label("Invitation link (works once)").input_value()
        assert link.startswith(f"{community.base_url}/#/welcome?token=")
        admin.get_by_role("button", name="Copy the link").click()
        expect(admin.locator("#status")).to_have_text("Link copied.")
        assert admin.evaluate("navigator.clipboard.readText()") == link
        invitation = admin.locator("#invitations li").filter(has_text=email)
        expect(invitation).to_contain_text("Waiting")
        expect(
            invitation.get_by_role("button", name="Cancel the invitation of Dora")
        ).to_be_visible()
        assert_accessible(admin, "admin-invited")

        with phone(browser, community, "fr-FR") as dora_phone:
            dora = dora_phone.new_page()
            address = urlsplit(link)
            dora.goto(f"/#{address.fragment}")
            expect(dora.locator("h1")).to_have_text("Bienvenue")
            expect(dora.locator("#nav")).to_be_hidden()
            assert_accessible(dora, "welcome-fr")
            dora.get_by_label("Nouveau mot de passe").fill(NEW_PASSWORD)
            dora.get_by_label("Le même mot de passe encore").fill(NEW_PASSWORD + "s")
            dora.get_by_role("button", name="Enregistrer et se connecter").click()
            expect(dora.locator("#status")).to_have_text(
                "Les deux mots de passe ne sont pas les mêmes."
            )
            dora.get_by_label("Le même mot de passe encore").fill(NEW_PASSWORD)
            dora.get_by_role("button", name="Enregistrer et se connecter").click()
            expect(dora.locator("h1")).to_have_text("Bonjour Dora")
            assert_accessible(dora, "welcome-fr-logged-in")

        with phone(browser, community) as again_phone:
            again = again_phone.new_page()
            again.goto(f"/#{urlsplit(link).fragment}")
            again.get_by_label("New password").fill("another password here")
            again.get_by_label("The same password again").fill("another password here")
            again.get_by_role("button", name="Save and log in").click()
            expect(again.locator("#status")).to_contain_text("This link does not work any more")

        admin.reload()
        expect(admin.locator("#invitations li").filter(has_text=email)).to_contain_text(
            "Password chosen"
        )
