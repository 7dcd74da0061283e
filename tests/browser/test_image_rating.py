"""Selecting and rating follow the newest results: right after a new generation, the thumbs rate the
new image (issue 23, point 7: the old selection outlived its results)."""

import pytest

from tests.browser.conftest import open_tab

pytestmark = pytest.mark.browser


def test_a_thumb_right_after_a_new_generation_rates_the_new_image(page):
    open_tab(page, "Image")
    notes = []
    for prompt in ("a red square", "a blue circle"):
        before = page.locator("#image-status").inner_text()
        page.fill("#image-prompt textarea", prompt)
        page.click("#image-generate")
        page.wait_for_function("([sel, old]) => { const t = document.querySelector(sel).innerText;"
                               " return t.includes('image(s) from') && t !== old; }", arg=["#image-status", before],
                               timeout=120_000)
        page.locator("#image-selected").get_by_text("Selected out_").wait_for()
        notes.append(page.locator("#image-selected").inner_text())
    assert notes[0] != notes[1], notes  # the new image is the one selected
    page.click("#image-down")
    page.locator("#image-rated").get_by_text("Saved").wait_for()
