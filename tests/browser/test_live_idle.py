"""An open page stays live without costing its browser: idle, with every tab opened, it makes no
Gradio event at all (it polls `GET /api/v1/changes`, a few numbers), and a dataset uploaded
elsewhere still reaches the Training tab's picker without a reload."""

import httpx
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.browser.conftest import open_tab, pick

pytestmark = pytest.mark.browser

TABS = ["Text", "Image", "GAN", "Speech", "Datasets", "Training", "Feedback", "Models / Settings"]


def test_an_idle_page_makes_no_gradio_events_and_still_sees_changes(admin_page, studio_server):
    page = admin_page
    for label in TABS:  # every tab drawn once, with its lists
        open_tab(page, label)
        page.wait_for_timeout(300)
    open_tab(page, "Training")
    pick(page, "train-kind", "text-lora")
    events, polls = [], []
    page.on("request", lambda r: events.append(r.url) if "/queue/join" in r.url
            else polls.append(r.url) if r.url.endswith("/api/v1/changes") else None)
    # The loads and each tab's first redraws settle (seconds on a busy machine) ...
    for _ in range(20):
        seen = len(events)
        page.wait_for_timeout(2_000)
        if len(events) == seen:
            break
    else:
        raise AssertionError(f"the page never went quiet: {len(events)} Gradio events in 40 s")
    # ... and then nothing: a timer would send an event every second or two, whatever happened
    events.clear()
    polls.clear()
    page.wait_for_timeout(5_000)
    assert events == [], f"an idle page sent Gradio events: {events}"
    assert len(polls) >= 3, polls

    r = httpx.post(f"{studio_server.url}/api/v1/datasets", auth=("admin", "admin-pass"),
                   data={"kind": "text", "name": "made elsewhere"},
                   files=[("file", ("tales.txt", b"Once upon a time.\n\nA fox ran.\n\nThe end.\n"))])
    assert r.status_code in (200, 201), r.text
    option = page.get_by_role("option", name="made elsewhere (text, 3)")
    for _ in range(10):  # the picker, reopened until the redraw has reached it (a few seconds at most)
        page.wait_for_timeout(1_000)
        page.click("#train-dataset input")
        try:
            option.wait_for(timeout=1_500)
            break
        except PlaywrightTimeout:  # closed and left, so that a redraw arriving now is drawn
            page.keyboard.press("Escape")
            page.evaluate("document.activeElement && document.activeElement.blur()")
    else:
        raise AssertionError("the new dataset never reached the Training tab's picker")
    assert events, "the change was drawn by an event"
