"""The creator's journey without a reload: upload a .txt, fine-tune it from the form under a name of
one's own, find that version by name in the Text tab and compare it with its base (admin)."""

import re

import pytest

from tests.browser.conftest import open_tab, pick, type_params_json

pytestmark = pytest.mark.browser

STORIES = "\n\n".join(f"Once upon a time a small fox number {i} found a red ball in the snow." for i in range(40))


def test_fine_tune_then_compare_the_new_version_with_its_base(admin_page, tmp_path):
    page = admin_page
    corpus = tmp_path / "stories.txt"
    corpus.write_text(STORIES, encoding="utf-8")
    # 1. Upload
    open_tab(page, "Datasets")
    page.set_input_files("#datasets-files input[type=file]", str(corpus))
    page.fill("#datasets-name input, #datasets-name textarea", "fox stories")
    page.click("#datasets-upload")
    page.locator("#datasets-status").get_by_text("40").first.wait_for()
    # 2. Fine-tune from the form, under a name
    open_tab(page, "Training")
    pick(page, "train-kind", "text-lora")
    pick(page, "train-dataset", "fox stories (text, 40)")
    pick(page, "train-base-model", "starter/gpt2-tiny")
    page.locator("#train-name input, #train-name textarea").first.fill("my fox tales")
    type_params_json(page, "text-lora", '{"max_steps": 20, "block_size": 32, "save_every": 20}')
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
