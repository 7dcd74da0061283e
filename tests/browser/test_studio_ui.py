"""The studio as a person uses it: type, click, see, rate, sign in."""

import sqlite3

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import open_tab

pytestmark = pytest.mark.browser


def ratings(studio_server):
    db = sqlite3.connect(studio_server.data_dir / "studio.db")
    try:
        return db.execute("SELECT user, rating FROM ratings").fetchall()
    finally:
        db.close()


def test_text_generate_then_thumb_up_is_stored(page, studio_server):
    page.fill("#text-prompt textarea", "Once upon a time")
    page.click("#text-generate")
    status = page.locator("#text-status")
    status.get_by_text("output(s) from").wait_for()
    assert page.locator("#text-output-0 textarea").input_value() != ""
    before = len(ratings(studio_server))
    page.click("#text-up-0")
    page.locator("#text-rated-0").get_by_text("Saved").wait_for()
    rows = ratings(studio_server)
    assert len(rows) == before + 1
    user, rating = rows[-1]
    assert rating == "up" and user.startswith("visitor-")
    # A second generation: its thumbs rate the newest output, and the note stays
    first = page.locator("#text-output-0 textarea").input_value()
    page.fill("#text-prompt textarea", "The little dog")
    page.click("#text-generate")
    page.locator("#text-rated-0").get_by_text("Saved").wait_for(state="detached")
    status.get_by_text("output(s) from").wait_for()
    assert page.locator("#text-output-0 textarea").input_value() != first
    page.click("#text-down-0")
    page.locator("#text-rated-0").get_by_text("Saved").wait_for()
    page.wait_for_timeout(1500)  # any late update would have landed by now
    expect(page.locator("#text-rated-0")).to_contain_text("Saved")
    assert len(ratings(studio_server)) == before + 2 and ratings(studio_server)[-1][1] == "down"


def test_visitor_sees_no_training_controls_and_the_api_refuses(page, studio_server):
    page.locator("#studio-user").get_by_text("Visitor").wait_for()
    expect(page.locator("button[role=tab]:visible", has_text="Training")).to_have_count(0)
    expect(page.locator("button[role=tab]:visible", has_text="Datasets")).to_have_count(0)
    expect(page.locator("button[role=tab]:visible", has_text="Text")).to_have_count(1)
    r = httpx.post(studio_server.url + "/api/v1/jobs", json={"kind": "selftest", "params": {}})
    assert r.status_code == 403
    r = httpx.post(studio_server.url + "/api/v1/datasets", files={"file": ("a.txt", b"hello")},
                   data={"kind": "text", "name": "x"})
    assert r.status_code == 403


def test_admin_signs_in_and_sees_training(browser, studio_server):
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        page.goto(studio_server.url + "/signin")
        page.fill("#username", "admin")
        page.fill("#password", "wrong")
        page.click("#signin")
        page.get_by_text("Wrong user name or password").wait_for()
        page.fill("#username", "admin")
        page.fill("#password", "admin-pass")
        page.click("#signin")
        page.locator("#studio-user").get_by_text("Signed in as").wait_for()
        page.locator("button[role=tab]", has_text="Training").wait_for()
        # Settings: the speech engine's precision, switched in the page, is what the studio now runs
        open_tab(page, "Models / Settings")
        page.locator("#settings-precision-speech").get_by_text("bf16").click()
        expect(page.locator("#settings-precision-note")).to_contain_text("speech bf16")
        assert httpx.get(studio_server.url + "/api/v1/health", auth=("admin", "admin-pass")).json()[
            "precision"]["speech"] == "bf16"
        # a second click right after the first: a live redraw of the tab (started by the first
        # change) never puts the old value back, and the page settles on the last click
        page.locator("#settings-precision-speech").get_by_text("fp32").click()
        expect(page.locator("#settings-precision-note")).to_contain_text("speech fp32", timeout=15_000)
        expect(page.locator("#settings-precision-speech input[value=fp32]")).to_be_checked()
        assert httpx.get(studio_server.url + "/api/v1/health", auth=("admin", "admin-pass")).json()[
            "precision"]["speech"] == "fp32"
    finally:
        context.close()


def outputs_of(studio_server, kind):
    db = sqlite3.connect(studio_server.data_dir / "studio.db")
    try:
        return [r[0] for r in db.execute("SELECT file FROM outputs WHERE kind = ?", (kind,))]
    finally:
        db.close()


def test_image_generate_shows_a_picture(page, studio_server):
    before = len(outputs_of(studio_server, "image"))
    open_tab(page, "Image")
    page.fill("#image-prompt textarea", "a red square")
    page.click("#image-generate")
    page.locator("#image-results img").first.wait_for(timeout=120_000)
    page.locator("#image-status").get_by_text("starter/sd-tiny").first.wait_for()
    files = outputs_of(studio_server, "image")
    assert len(files) == before + 1 and (studio_server.data_dir / files[-1]).exists()


def test_speech_generate_gives_a_clip(page, studio_server):
    before = len(outputs_of(studio_server, "speech"))
    open_tab(page, "Speech")
    page.fill("#speech-text textarea", "Hello there, I have 3 cats.")
    page.click("#speech-generate")
    page.locator("#speech-status").get_by_text("Hz").first.wait_for(timeout=120_000)
    files = outputs_of(studio_server, "speech")
    assert len(files) == before + 1 and files[-1].endswith(".wav")
    assert (studio_server.data_dir / files[-1]).stat().st_size > 44  # more than a bare WAV header
