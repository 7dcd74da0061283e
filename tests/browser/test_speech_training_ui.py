"""A voice fine-tuned from the page: speech recordings uploaded in the Datasets tab, a `speech-finetune`
job set up in the Training tab's form on the starter voice, and its spoken samples played there."""

from __future__ import annotations

import io
import re
import sqlite3
import zipfile

import pytest
import soundfile as sf
from playwright.sync_api import expect

from engines.speech import espeak
from engines.starter.build_speech import story_sentences
from tests.browser.conftest import open_tab, pick, put_file

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _speaker_zip(path, n: int = 10) -> None:
    engine = espeak.Espeak()
    sentences = story_sentences(n, seed=99, exclude=set())
    with zipfile.ZipFile(path, "w") as z:
        for i, text in enumerate(sentences):
            buf = io.BytesIO()
            sf.write(buf, engine.say(text, voice="en-us+f3", speed=1.0), engine.sample_rate, format="WAV")
            z.writestr(f"clip{i}.wav", buf.getvalue())
        z.writestr("metadata.csv", "\n".join(f"clip{i}.wav|{t}" for i, t in enumerate(sentences)))


def test_fine_tune_a_voice_in_the_page_and_play_its_samples(admin_page, studio_server, tmp_path):
    page = admin_page
    archive = tmp_path / "speaker.zip"
    _speaker_zip(archive)
    open_tab(page, "Datasets")
    page.locator("#datasets-kind").get_by_text("audio", exact=True).click()
    put_file(page, "datasets-files", archive)  # uploaded to the page: Upload sees it
    page.fill("#datasets-name input, #datasets-name textarea", "new speaker")
    page.click("#datasets-upload")
    page.locator("#datasets-status").get_by_text("new speaker").first.wait_for(timeout=60_000)

    open_tab(page, "Training")
    pick(page, "train-kind", "speech-finetune")
    pick(page, "train-dataset", "new speaker (audio, 10)")
    for field, value in (("max_steps", "4"), ("batch_size", "4"), ("save_every", "4")):
        page.fill(f"#train-f-speech-finetune-{field} input", value)
        page.keyboard.press("Tab")  # commit the number before the click reads it
    page.locator("#train-check").get_by_text("Optimizer steps: 4").wait_for(timeout=30_000)
    page.click("#train-start")
    page.locator("#train-note").get_by_text("Started job").wait_for()
    job_id = re.search(r"job_\w+", page.locator("#train-note").inner_text()).group(0)
    page.locator("#train-status", has_text=job_id).get_by_text("completed").wait_for(timeout=300_000)

    player = page.locator("#train-spoken-0")
    expect(player).to_be_visible(timeout=30_000)
    expect(player).to_contain_text("Step 4")  # the newest save point, with the sentence it says
    # the player says "Pause" while it plays: caught however short the clip is
    page.evaluate("""() => {
        const root = document.querySelector('#train-spoken-0');
        window.samplePlayed = false;
        new MutationObserver(() => {
            if (root.querySelector('button[aria-label="Pause"]')) window.samplePlayed = true;
        }).observe(root, {subtree: true, childList: true, attributes: true});
    }""")
    player.get_by_role("button", name="Play", exact=True).click()
    page.wait_for_function("() => window.samplePlayed", timeout=15_000)

    db = sqlite3.connect(studio_server.data_dir / "studio.db")
    kind, status, base = db.execute("SELECT kind, status, base_model FROM jobs WHERE id = ?", (job_id,)).fetchone()
    assert (kind, status, base) == ("speech-finetune", "completed", "starter/speecht5-espeak")
    assert db.execute("SELECT type FROM adapters WHERE job_id = ?", (job_id,)).fetchone() == ("speech_model",)
