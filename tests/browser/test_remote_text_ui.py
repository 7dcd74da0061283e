"""The Text tab with a model served elsewhere (`--remote-text`): picked like any model, it streams
its answer into the tab, and the thumbs store a rating for it."""

import sqlite3

import pytest

from tests.browser.conftest import pick
from tests.conftest import start_studio

pytestmark = pytest.mark.browser


def test_a_remote_model_writes_in_the_text_tab_and_is_rated(browser, tmp_path):
    peer = start_studio(["--offline"], tmp_path / "peer" / "data", wait=False)  # both start at once
    main = start_studio(["--offline", "--remote-text", f"peer={peer.url}/v1@starter/gpt2-stories"],
                        tmp_path / "main" / "data", wait=False).wait_ready()
    peer.wait_ready()
    try:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.set_default_timeout(60_000)
        page.goto(main.url)
        page.wait_for_selector("#text-prompt textarea")
        pick(page, "text-model", "remote/peer")
        page.fill("#text-prompt textarea", "Once upon a time")
        page.click("#text-generate")
        page.locator("#text-status").get_by_text("output(s) from").wait_for()
        assert "remote/peer" in page.locator("#text-status").inner_text()
        assert page.locator("#text-output-0 textarea").input_value().strip()
        page.click("#text-up-0")
        page.locator("#text-rated-0").get_by_text("Saved").wait_for()
        with sqlite3.connect(main.data_dir / "studio.db") as db:
            rated = db.execute("SELECT o.model, r.rating FROM ratings r JOIN outputs o ON o.id = r.output_id").fetchall()
        assert rated == [("remote/peer", "up")], rated
        context.close()
    finally:
        main.stop()
        peer.stop()
