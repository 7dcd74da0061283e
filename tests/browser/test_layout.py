"""Every tab on a laptop screen (1366×900): what a tab makes shows above the fold, and no table header
is squeezed into a letter-per-line column. A screenshot of each tab is kept under
test-artifacts/tabs/ for a person to look at."""

import re

import pytest

from tests.browser.conftest import ARTIFACTS, open_tab

pytestmark = pytest.mark.browser

LAPTOP = {"width": 1366, "height": 900}
# Tab → the element that shows its results (first match), read after the tab made something.
RESULTS = {
    "Text": "#text-output-0",
    "Image": "#image-results",
    "GAN": "#gan-results",
    "Speech": "#speech-audio",
    "Datasets": "#datasets-table",
    "Training": "#train-status",
    "Feedback": "#feedback-totals",
    "Models / Settings": "table",
}

# Each visible table header and heading: its height in lines of its own text (a header printed
# vertically is many lines tall) and how wide it is.
HEADER_LINES = """() => [...document.querySelectorAll('th, h1, h2, h3, label span')]
  .filter(e => e.offsetParent !== null && e.innerText.trim().length > 1)
  .map(e => {
    const r = e.getBoundingClientRect(), s = getComputedStyle(e);
    const line = parseFloat(s.lineHeight) || 1.4 * parseFloat(s.fontSize);
    return {text: e.innerText.trim().slice(0, 40), lines: r.height / line, width: r.width};
  })"""


def make_something(page, tab: str) -> None:
    """What a creator does first on the generating tabs."""
    if tab == "Text":
        page.fill("#text-prompt textarea", "Once upon a time")
        page.click("#text-generate")
        page.locator("#text-status").get_by_text("output(s) from").wait_for()
    elif tab == "Image":
        page.fill("#image-prompt textarea", "a red circle on a blue background")
        page.click("#image-generate")
        page.locator("#image-status").get_by_text("image(s) from").wait_for()
    elif tab == "Speech":
        page.fill("#speech-text textarea", "Hello there.")
        page.click("#speech-generate")
        page.locator("#speech-status").get_by_text(" s from ").first.wait_for()


def test_every_tab_shows_its_results_above_the_fold_at_1366_by_900(browser, studio_server):
    context = browser.new_context(viewport=LAPTOP)
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        page.goto(studio_server.url + "/signin")
        page.fill("#username", "admin")
        page.fill("#password", "admin-pass")
        page.click("#signin")
        page.locator("#studio-user").get_by_text("Signed in as").wait_for()
        shots = ARTIFACTS / "tabs"
        shots.mkdir(parents=True, exist_ok=True)
        for tab, selector in RESULTS.items():
            open_tab(page, tab)
            make_something(page, tab)
            page.evaluate("window.scrollTo(0, 0)")
            result = page.locator(selector).locator("visible=true").first
            result.wait_for()
            page.screenshot(path=str(shots / f"{re.sub(r'[^a-z]+', '-', tab.lower())}.png"))
            top = result.bounding_box()["y"]
            assert top < LAPTOP["height"] - 60, f"{tab}: its results start at {top:.0f} px, below the fold"
            squeezed = [h for h in page.evaluate(HEADER_LINES) if h["lines"] > 2.6 and h["width"] < 60]
            assert not squeezed, f"{tab}: headers printed vertically: {squeezed}"
    finally:
        context.close()
