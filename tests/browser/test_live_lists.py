"""One app, not eight: what one tab makes appears in the others without a reload (admin)."""

import json
import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import open_tab, pick, type_params_json

pytestmark = pytest.mark.browser

# A GAN that finishes in seconds on two busy cores (as tests/api/test_gan_api.py drives one).
GAN_PARAMS = {"resolution": 32, "max_steps": 30, "batch_size": 16, "ngf": 16, "ndf": 16, "save_every": 30,
              "eval_every": 0, "quality_samples": 16, "log_every": 5}


def totals(page) -> int:
    text = page.locator("#feedback-totals").inner_text()
    return int(re.search(r"(\d+)\s*ratings", text).group(1))


def test_a_rating_shows_in_the_dashboard_on_opening_it(admin_page):
    page = admin_page
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


def test_a_gan_trained_on_the_demo_data_appears_in_the_gan_tab_and_generates(admin_page):
    page = admin_page
    # 1. The demo dataset, made in the GAN tab ...
    open_tab(page, "GAN")
    page.locator("#gan-demo").get_by_text("Create demo dataset", exact=True).first.click()
    page.fill("#gan-demo-n input[type=number]", "64")
    page.keyboard.press("Tab")  # commit the number before the click reads it
    page.click("#gan-demo-create")
    page.locator("#gan-demo-note").get_by_text("Created dataset").wait_for()
    name = page.locator("#gan-demo-note strong").first.inner_text()
    images = re.search(r"\((\d+) images", name).group(1)  # the count the dataset was made with
    # 2. ... is in Training → Dataset at once (no kind toggling, no reload)
    open_tab(page, "Training")
    pick(page, "train-kind", "gan")
    pick(page, "train-dataset", f"{name} (image, {images})")
    name_box = page.locator("#train-name input, #train-name textarea").first
    expect(name_box).to_have_value(re.compile(rf"^{re.escape(name)} · gan · 20\d\d-"))  # the proposed default
    name_box.fill("my shapes")
    type_params_json(page, "gan", json.dumps(GAN_PARAMS))
    page.click("#train-start")
    page.locator("#train-status").get_by_text("running").wait_for(timeout=60_000)
    # 3. Watching the GAN tab: the finished GAN arrives by itself and generates
    open_tab(page, "GAN")
    page.locator("#gan-hint").get_by_text("Pick a trained GAN").wait_for(timeout=180_000)
    # ... by the name given in the form: name · kind · steps · date, no id
    shown = page.locator("#gan-model input").input_value()
    assert re.match(r"^my shapes · gan · 30 steps · 20\d\d-\d\d-\d\d \d\d:\d\d$", shown), shown
    page.click("#gan-generate")
    page.locator("#gan-status").get_by_text("image(s) from").wait_for()
    assert page.locator("#gan-results img").count() >= 1
