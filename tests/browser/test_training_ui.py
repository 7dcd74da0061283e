"""Upload a dataset and fine-tune from it in the page, watching the job live (admin)."""

import json
import re
import sqlite3

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import open_tab, pick, put_file

pytestmark = pytest.mark.browser

CORPUS = "\n\n".join(f"The red fox number {i} jumps over the lazy dog." for i in range(60))


def test_upload_a_text_dataset_in_the_page(admin_page, studio_server, tmp_path):
    page = admin_page
    corpus = tmp_path / "foxes.txt"
    corpus.write_text(CORPUS, encoding="utf-8")
    open_tab(page, "Datasets")
    put_file(page, "datasets-files", corpus)  # uploaded to the page: Upload sees it
    page.fill("#datasets-name input, #datasets-name textarea", "foxes")
    page.click("#datasets-upload")
    page.locator("#datasets-status").get_by_text("60").first.wait_for()
    db = sqlite3.connect(studio_server.data_dir / "studio.db")
    rows = db.execute("SELECT name, kind, num_items FROM datasets WHERE name = 'foxes'").fetchall()
    assert rows == [("foxes", "text", 60)]


def test_fine_tune_progress_reaches_100_and_survives_a_reload(admin_page, studio_server):
    """A real fine-tune (text-lora on the starter GPT-2) of the dataset uploaded above."""
    page = admin_page
    open_tab(page, "Training")
    pick(page, "train-kind", "text-lora")
    pick(page, "train-dataset", "foxes (text, 60)")
    pick(page, "train-base-model", "starter/gpt2-tiny")
    expect(page.locator("#train-dataset-rows")).to_contain_text("The red fox number 0", timeout=30_000)  # beside the form
    # The form alone: no JSON typed.
    for field, value in (("max_steps", "60"), ("block_size", "32"), ("save_every", "20")):
        page.fill(f"#train-f-text-lora-{field} input", value)
        page.keyboard.press("Tab")  # commit the number before the click reads it
    page.locator("#train-check").get_by_text("Optimizer steps: 60").wait_for()  # the estimate follows the form
    page.locator("#train-json").get_by_text("Advanced: parameters as JSON").first.click()
    expect(page.locator("#train-params")).to_contain_text('"block_size": 32', timeout=30_000)  # and the JSON view
    page.click("#train-start")
    status = page.locator("#train-status")
    status.get_by_text("running").wait_for(timeout=60_000)
    # A reload mid-job shows the same job, still live.
    page.reload()
    page.wait_for_selector("#text-prompt textarea")
    open_tab(page, "Training")
    page.locator("#train-status").get_by_text("completed").wait_for(timeout=120_000)
    assert "100 %" in page.locator("#train-status").inner_text()
    db = sqlite3.connect(studio_server.data_dir / "studio.db")
    kind, status, step, metrics = db.execute(
        "SELECT kind, status, step, metrics FROM jobs ORDER BY created_at DESC LIMIT 1").fetchone()
    assert (kind, status, step) == ("text-lora", "completed", 60)
    params = json.loads(db.execute("SELECT params FROM jobs ORDER BY created_at DESC LIMIT 1").fetchone()[0])
    assert (params["block_size"], params["save_every"]) == (32, 20)
    metrics = json.loads(metrics)
    assert metrics["perplexity_after"] < metrics["perplexity_before"]


def _images_zip(path):
    import io
    import zipfile

    from PIL import Image

    with zipfile.ZipFile(path, "w") as z:
        for colour in ("red", "blue", "green"):
            buf = io.BytesIO()
            Image.new("RGB", (64, 64), colour).save(buf, "PNG")
            z.writestr(f"{colour}.png", buf.getvalue())
            z.writestr(f"{colour}.txt", f"a {colour} square")


def _audio_zip(path):
    import io
    import zipfile

    import numpy as np
    import soundfile as sf

    with zipfile.ZipFile(path, "w") as z:
        lines = []
        for i in range(2):
            buf = io.BytesIO()
            sf.write(buf, np.zeros(8000, dtype="float32"), 16000, format="WAV")
            z.writestr(f"clip{i}.wav", buf.getvalue())
            lines.append(f"clip{i}.wav|hello number {i}")
        z.writestr("metadata.csv", "\n".join(lines))


@pytest.mark.parametrize(("kind", "make", "items"), [("image", _images_zip, 3), ("audio", _audio_zip, 2)])
def test_upload_image_and_audio_datasets_in_the_page(admin_page, studio_server, tmp_path, kind, make, items):
    page = admin_page
    archive = tmp_path / f"{kind}.zip"
    make(archive)
    open_tab(page, "Datasets")
    page.locator("#datasets-kind").get_by_text(kind, exact=True).click()
    put_file(page, "datasets-files", archive)  # uploaded to the page: Upload sees it
    page.fill("#datasets-name input, #datasets-name textarea", f"my {kind}")
    page.click("#datasets-upload")
    page.locator("#datasets-status").get_by_text(f"my {kind}").first.wait_for()
    db = sqlite3.connect(studio_server.data_dir / "studio.db")
    assert db.execute("SELECT kind, num_items FROM datasets WHERE name = ?", (f"my {kind}",)).fetchone() == (
        kind, items)


def test_an_int8_and_30pct_pruned_export_of_the_trained_starter_from_the_page(admin_page, studio_server):
    """Deployment from the page: the shipped trained starter compressed by an `export` job set up in
    the form alone; its size, speed and perplexity shown beside the original's in the Models tab."""
    page = admin_page
    open_tab(page, "Training")
    pick(page, "train-kind", "export")
    page.locator("#train-form-export").first.wait_for()
    pick(page, "train-base-model", "starter/gpt2-stories")
    # The JSON view shows when the form has taken each change (the preset first, then the edit)
    page.locator("#train-json").get_by_text("Advanced: parameters as JSON").first.click()
    page.locator("#train-preset").get_by_text("quick", exact=True).click()
    expect(page.locator("#train-params")).to_contain_text('"speed_reps": 1', timeout=30_000)
    expect(page.locator("#train-f-export-quantization input")).to_have_value("int8")
    page.fill("#train-f-export-sparsity input[type=number]", "0.3")
    page.keyboard.press("Enter")  # commit the number
    expect(page.locator("#train-params")).to_contain_text('"sparsity": 0.3', timeout=30_000)
    page.click("#train-start")
    page.locator("#train-note").get_by_text("Started job").wait_for()
    job_id = re.search(r"job_\w+", page.locator("#train-note").inner_text()).group(0)
    page.locator("#train-status", has_text=job_id).get_by_text("completed").wait_for(timeout=180_000)
    db = sqlite3.connect(studio_server.data_dir / "studio.db")
    kind, base, params, metrics = db.execute(
        "SELECT kind, base_model, params, metrics FROM jobs WHERE id = ?", (job_id,)).fetchone()
    params, metrics = json.loads(params), json.loads(metrics)
    assert (kind, base, params["quantization"], params["sparsity"]) == ("export", "starter/gpt2-stories", "int8", 0.3)
    assert metrics["size_mb"] < metrics["size_mb_original"]
    assert abs(metrics["perplexity_delta_pct"]) <= 3  # measured: +1.8 % on the built-in held-out lines
    open_tab(page, "Models / Settings")
    row = page.locator("#models-exports tr", has_text="int8, 30% pruned").first
    expect(row).to_contain_text("starter/gpt2-stories")
