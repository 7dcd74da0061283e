"""The creator's whole journey in one page, without a reload (admin): upload a .txt, fine-tune it
from the form under a name of one's own, find that version by name in the Text tab and compare it
with its base (or send it there from the finished job, whose loss chart draws a line over steps), rate what it wrote and see the rating in the dashboard on opening it, then make the
demo shapes, train a GAN on them and generate with it in the GAN tab."""

import json
import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import open_tab, pick, put_file, type_params_json
from tests.browser.test_charts import assert_numeric_line, drawn_line

pytestmark = pytest.mark.browser

STORIES = "\n\n".join(f"Once upon a time a small fox number {i} found a red ball in the snow." for i in range(40))
# A GAN that finishes in seconds on two busy cores (as tests/api/test_gan_api.py drives one).
GAN_PARAMS = {"resolution": 32, "max_steps": 30, "batch_size": 16, "ngf": 16, "ndf": 16, "save_every": 30,
              "eval_every": 0, "quality_samples": 16, "log_every": 5}


def totals(page) -> int:
    text = page.locator("#feedback-totals").inner_text()
    return int(re.search(r"(\d+)\s*ratings", text).group(1))


def test_the_whole_journey_without_a_reload(admin_page, tmp_path):
    page = admin_page
    reloads = []
    page.on("framenavigated", lambda frame: reloads.append(frame.url) if frame == page.main_frame else None)
    corpus = tmp_path / "stories.txt"
    corpus.write_text(STORIES, encoding="utf-8")
    # 1. Upload a .txt
    open_tab(page, "Datasets")
    put_file(page, "datasets-files", corpus)  # uploaded to the page: Upload sees it
    page.fill("#datasets-name input, #datasets-name textarea", "fox stories")
    page.click("#datasets-upload")
    page.locator("#datasets-status").get_by_text("40").first.wait_for()

    # 2. Fine-tune it from the form alone, under a name
    open_tab(page, "Training")
    pick(page, "train-kind", "text-lora")
    pick(page, "train-dataset", "fox stories (text, 40)")
    pick(page, "train-base-model", "starter/gpt2-tiny")
    page.locator("#train-name input, #train-name textarea").first.fill("my fox tales")
    for field, value in (("max_steps", "20"), ("block_size", "32"), ("save_every", "20")):
        page.fill(f"#train-f-text-lora-{field} input", value)
        page.keyboard.press("Tab")  # commit the number before the click reads it
    page.locator("#train-check").get_by_text("Optimizer steps: 20").wait_for()
    page.click("#train-start")
    page.locator("#train-note").get_by_text("Started job").wait_for()  # (20 steps may finish within a second)

    # 3. The Text tab, left open: the version arrives by name, ready to compare with its base
    open_tab(page, "Text")
    page.get_by_text("Compare two versions").click()
    version_b = page.locator("#text-compare-b input")
    page.wait_for_function("() => (document.querySelector('#text-compare-b input') || {}).value"
                           "?.startsWith('my fox tales')", timeout=180_000)
    assert re.match(r"^my fox tales · [\w -]+ · 20 steps · 20\d\d-\d\d-\d\d \d\d:\d\d", version_b.input_value())
    assert "ad_" not in version_b.input_value()
    assert page.locator("#text-compare-a input").input_value() == "starter/gpt2-tiny"
    page.click("#text-model input")
    assert page.get_by_role("option", name=re.compile(r"^my fox tales · ")).count() >= 1
    page.keyboard.press("Escape")
    page.fill("#text-prompt textarea", "Once upon a time")
    page.click("#text-compare")
    out_b = page.locator("#text-compare-out-b")
    out_b.get_by_text("my fox tales").first.wait_for()  # the label names the version
    assert page.locator("#text-compare-out-a textarea").input_value() != ""
    assert out_b.locator("textarea").input_value() != ""
    # ... and from the finished job, one click puts it in the Text tab's pickers
    open_tab(page, "Training")
    page.locator("#train-status").get_by_text("completed").wait_for(timeout=60_000)
    axis, path = drawn_line(page, "train-loss")  # the finished job's loss: a line over numeric steps
    assert_numeric_line(axis, path)
    assert "step" in axis
    page.click("#train-use")
    expect(page.locator("#text-prompt textarea")).to_be_visible()
    # (a starter is fine-tuned whole: the version is a model of its own, with no adapter)
    expect(page.locator("#text-model input")).to_have_value(re.compile(r"^my fox tales · full fine-tune · "))
    expect(page.locator("#text-adapter input")).to_have_value("(none)")

    # 4. A rating shows in the dashboard on opening it
    open_tab(page, "Feedback")
    page.locator("#feedback-totals").get_by_text("ratings").wait_for()
    before = totals(page)
    open_tab(page, "Text")
    page.fill("#text-prompt textarea", "Once upon a time")
    page.click("#text-generate")
    page.locator("#text-status").get_by_text("output(s) from").wait_for()
    page.click("#text-up-0")
    page.locator("#text-rated-0").get_by_text("Saved").wait_for()
    open_tab(page, "Feedback")
    page.locator("#feedback-totals").get_by_text(f"{before + 1} ratings").wait_for(timeout=10_000)

    # 5. The demo shapes, made in the GAN tab, are in Training → Dataset at once
    open_tab(page, "GAN")
    page.locator("#gan-demo").get_by_text("Create demo dataset", exact=True).first.click()
    page.fill("#gan-demo-n input[type=number]", "320")  # captions that repeat: a conditional GAN
    page.keyboard.press("Tab")  # commit the number before the click reads it
    page.click("#gan-demo-create")
    page.locator("#gan-demo-note").get_by_text("Created dataset").wait_for()
    name = page.locator("#gan-demo-note strong").first.inner_text()
    images = re.search(r"\((\d+) images", name).group(1)  # the count the dataset was made with
    open_tab(page, "Training")
    pick(page, "train-kind", "gan")
    pick(page, "train-dataset", f"{name} (image, {images})")
    name_box = page.locator("#train-name input, #train-name textarea").first
    expect(name_box).to_have_value(re.compile(rf"^{re.escape(name)} · gan · 20\d\d-"))  # the proposed default
    name_box.fill("my shapes")
    type_params_json(page, "gan", json.dumps(GAN_PARAMS))
    page.click("#train-start")
    page.locator("#train-status").get_by_text("running").wait_for(timeout=60_000)

    # 6. Watching the GAN tab: the finished GAN arrives by itself, by its name, and generates
    open_tab(page, "GAN")
    page.locator("#gan-hint").get_by_text("Pick a trained GAN").wait_for(timeout=180_000)
    shown = page.locator("#gan-model input").input_value()
    assert re.match(r"^my shapes · gan · 30 steps · 20\d\d-\d\d-\d\d \d\d:\d\d$", shown), shown
    expect(page.locator("#gan-truncation input[type=number]")).to_have_value("0.3", timeout=30_000)  # the GAN's own ψ, set once it is picked
    pick(page, "gan-class", "a red circle on a blue background")  # one of its classes (the captions)
    page.click("#gan-generate")
    page.locator("#gan-status").get_by_text("ψ 0.3").wait_for()
    assert "a red circle on a blue background" in page.locator("#gan-results").inner_text()
    assert page.locator("#gan-results img").count() >= 1
    assert reloads == [], f"the page navigated: {reloads}"
