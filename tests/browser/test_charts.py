"""Charts draw lines on numeric axes: approval over time here; the loss of a finished job in the
journey (tests/browser/test_journey.py)."""

import pytest

from tests.browser.conftest import open_tab

pytestmark = pytest.mark.browser


def drawn_line(page, elem_id: str) -> tuple[str, str]:
    """(the x axis' description, the path of the longest line) of the vega chart in #elem_id."""
    chart = page.locator(f"#{elem_id}")
    chart.locator("g.mark-line path").first.wait_for(state="attached", timeout=30_000)
    # a chart redrawn as its tab opens shows empty paths first, and a series of one point is "M…Z":
    # wait for a drawn line and read the longest
    longest = ("id => [...document.querySelectorAll(`#${id} g.mark-line path`)]"
               ".map(p => p.getAttribute('d') || '').sort((a, b) => b.length - a.length)[0] || ''")
    page.wait_for_function(f"id => ({longest})(id).includes('L')", arg=elem_id, timeout=30_000)
    axis = chart.locator("[aria-label^='X-axis']").first.get_attribute("aria-label")
    return axis, page.evaluate(longest, elem_id)


def assert_numeric_line(axis: str, path: str) -> None:
    assert "linear scale" in axis or "time scale" in axis or "utc scale" in axis, axis
    assert path.count("L") >= 1, path  # a line through two points at least


def test_approval_over_time_draws_a_line_on_a_time_axis(admin_page, studio_server):
    page = admin_page
    # Two ratings (a line needs two points), given through the REST API: this test reads the chart.
    write = {"headers": {"Origin": studio_server.url}}
    made = page.request.post(f"{studio_server.url}/api/v1/text/generate",
                             data={"prompt": "Once upon a time", "max_new_tokens": 4, "num_outputs": 2}, **write)
    assert made.ok, made.text()
    for out, thumb in zip(made.json()["outputs"], ("up", "down"), strict=True):
        rated = page.request.post(f"{studio_server.url}/api/v1/feedback",
                                  data={"output_id": out["id"], "rating": thumb}, **write)
        assert rated.ok, rated.text()
    open_tab(page, "Feedback")
    axis, path = drawn_line(page, "feedback-over-time")
    assert_numeric_line(axis, path)
