"""The Speech tab with espeak-ng: picked, its voices and pitch come alive, and the clip is labelled."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.conftest import open_tab, pick


def test_espeak_in_the_speech_tab(page, studio_server):
    open_tab(page, "Speech")
    expect(page.locator("#speech-pitch input[type=range]")).to_be_visible()
    pick(page, "speech-model", "starter/espeak-ng")
    expect(page.locator("#speech-pitch")).to_contain_text("classic formant synthesis, not neural")
    expect(page.locator("#speech-pitch input[type=range]")).to_be_enabled()
    pick(page, "speech-voice", "en-gb")
    page.fill("#speech-text textarea", "Good morning, it is 9 o'clock.")
    page.click("#speech-generate")
    status = page.locator("#speech-status")
    status.get_by_text("22,050 Hz").first.wait_for(timeout=60_000)
    expect(status).to_contain_text("espeak-ng: classic formant synthesis, not neural")
    expect(status).to_contain_text("Spoken as")
