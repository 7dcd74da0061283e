"""The Text tab's token probabilities, as a person reads them."""

import re

import pytest

pytestmark = pytest.mark.browser

PERCENT = re.compile(r"^(<0\.01|\d+(\.\d+)?)%$")


def test_token_probabilities_show_k_alternatives_for_every_token_and_a_text_is_scored(page):
    page.check("#text-show-tokens input")
    k = page.locator("#text-token-k input[type=number]")
    k.fill("3")
    k.press("Enter")
    page.fill("#text-prompt textarea", "Once upon a time")
    page.click("#text-generate")
    page.locator("#text-status").get_by_text("output(s) from").wait_for()
    page.locator("#text-token-view .tv-row").first.wait_for(state="attached")

    rows = page.eval_on_selector_all("#text-token-view .tv-row", """rows => rows.map(r => ({
        chosen: r.querySelector('.tv-chosen-p').textContent,
        alternatives: [...r.querySelectorAll('.tv-alt')].map(a => [a.querySelector('code').textContent,
                                                                   a.querySelector('.tv-p').textContent])}))""")
    spans = page.locator("#text-token-view .tv-tok")
    assert rows and spans.count() == len(rows)  # one table row per coloured token
    for row in rows:
        assert PERCENT.match(row["chosen"])
        assert len(row["alternatives"]) == 3 and all(PERCENT.match(p) for _, p in row["alternatives"])
    assert "alternatives:" in spans.first.get_attribute("title")  # and on hover

    # The same tab scores a pasted text under the chosen model.
    page.get_by_text("Score a text (perplexity)").click()
    page.fill("#text-score-input textarea", "The cat sat on the mat.")
    page.click("#text-score")
    page.locator("#text-score-result").get_by_text("Perplexity").wait_for()
    assert re.search(r"Perplexity \d+\.\d\d over \d+ tokens", page.locator("#text-score-result").inner_text())
