"""Charts draw lines on numeric axes: the loss of a finished job, approval over time."""

import json

import pytest

from tests.browser.conftest import open_tab, pick, type_params_json

pytestmark = pytest.mark.browser


def drawn_line(page, elem_id: str) -> tuple[str, str]:
    """(the x axis' description, the path of the first line) of the vega chart in #elem_id."""
    chart = page.locator(f"#{elem_id}")
    line = chart.locator("g.mark-line path").first
    line.wait_for(state="attached", timeout=30_000)
    axis = chart.locator("[aria-label^='X-axis']").first.get_attribute("aria-label")
    return axis, line.get_attribute("d")


def assert_numeric_line(axis: str, path: str) -> None:
    assert "linear scale" in axis or "time scale" in axis or "utc scale" in axis, axis
    assert path.count("L") >= 1, path  # a line through two points at least


def test_the_loss_chart_of_a_finished_job_draws_a_line_over_steps(admin_page):
    page = admin_page
    open_tab(page, "Training")
    pick(page, "train-kind", "selftest")
    type_params_json(page, "selftest", json.dumps({"max_steps": 30, "save_every": 0}))
    page.click("#train-start")
    page.locator("#train-status").get_by_text("completed").wait_for(timeout=120_000)
    axis, path = drawn_line(page, "train-loss")
    assert_numeric_line(axis, path)
    assert "step" in axis


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
