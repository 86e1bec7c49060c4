"""WCAG 2.1's resize text (1.4.4): with text at 200%, every member screen still
fits the phone's width (no sideways scrolling) and its controls stay reachable."""

from __future__ import annotations

from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import Community, log_in, phone, screenshot

SCREENS = (
    ("Record", "Record an exchange", "record"),
    ("History", "History", "history"),
    ("Settings", "Settings", "settings"),
)


def zoom_text(page: Page) -> None:
    """What a phone's "large text" setting does: the root font size doubled (set
    through the CSSOM, which the page's CSP allows, unlike a style element)."""
    page.evaluate(
        "() => document.documentElement.style.setProperty('font-size', '200%', 'important')"
    )


def assert_fits_the_width(page: Page, name: str) -> None:
    """No sideways scrolling, and no link or button cut by the screen's edge (the
    fixed navigation bar's included, which the page's width does not count)."""
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    outside = page.evaluate(
        """() => Array.from(document.querySelectorAll("a, button"))
             .filter((element) => element.getClientRects().length > 0)
             .filter((element) => {
               // Cut by an edge; a skip link kept wholly off screen until focused is not.
               const box = element.getBoundingClientRect();
               const width = window.innerWidth;
               return (box.left < -1 && box.right > 0)
                 || (box.right > width + 1 && box.left < width);
             })
             .map((element) => element.textContent.trim())"""
    )
    screenshot(page, f"zoom-200-{name}")
    assert overflow <= 1, f"{name}: {overflow} px wider than the screen at 200% text"
    assert outside == [], f"{name}: out of the screen at 200% text: {outside}"


def test_every_member_screen_fits_the_phone_with_text_at_200_percent(
    browser: Browser, community: Community
) -> None:
    with phone(browser, community) as context:
        page = context.new_page()
        page.goto("/")
        zoom_text(page)
        page.get_by_label("Email").wait_for()
        assert_fits_the_width(page, "login")
        log_in(page, community.bob)
        zoom_text(page)
        assert_fits_the_width(page, "home")
        for link, heading, name in SCREENS:
            page.get_by_role("link", name=link, exact=True).click()
            expect(page.locator("h1")).to_have_text(heading)
            page.wait_for_load_state("networkidle")
            zoom_text(page)
            assert_fits_the_width(page, name)
