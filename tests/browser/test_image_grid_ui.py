"""The Image tab's X/Y/Z plot as a person uses it: a 2×3 seed × steps grid, then a thumb on one cell."""

import sqlite3
import time

import pytest

from tests.browser.conftest import open_tab, pick

pytestmark = pytest.mark.browser


def rating_of(studio_server, output_id: str) -> str | None:
    db = sqlite3.connect(studio_server.data_dir / "studio.db")
    try:
        row = db.execute("SELECT rating FROM ratings WHERE output_id = ?", (output_id,)).fetchone()
        return row[0] if row else None
    finally:
        db.close()


def test_a_seed_by_steps_grid_shows_six_cells_and_a_cell_can_be_rated(page, studio_server):
    open_tab(page, "Image")
    page.fill("#image-prompt textarea", "a red square")
    page.locator("#grid-accordion").get_by_text("X/Y/Z plot").first.click()
    page.fill("#grid-x-values textarea, #grid-x-values input", "1, 2")
    pick(page, "grid-y", "Steps")
    page.fill("#grid-y-values textarea, #grid-y-values input", "1, 2, 2")
    page.click("#grid-make")
    page.locator("#grid-status").get_by_text("6 cells").wait_for(timeout=60_000)
    page.locator("#grid-picture img").wait_for()
    thumbs = page.locator("#grid-cells .thumbnail-item")
    assert thumbs.count() == 6
    thumbs.nth(4).click()
    note = page.locator("#grid-selected").get_by_text("Selected out_")
    note.wait_for()
    output_id = note.inner_text().split("`")[1] if "`" in note.inner_text() else note.inner_text().split()[1]
    page.click("#grid-up")
    page.locator("#grid-rated").get_by_text("Saved").wait_for()
    deadline = time.monotonic() + 10
    while rating_of(studio_server, output_id) != "up":
        assert time.monotonic() < deadline, f"no rating stored for {output_id}"
        time.sleep(0.2)
