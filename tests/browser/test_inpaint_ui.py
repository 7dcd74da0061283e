"""Inpainting in the Image tab: a result sent to the editor, a mask painted with the mouse, and only
the painted area regenerated (the rest of the image is the original's pixels)."""

import io
import re

import numpy as np
import pytest
from PIL import Image

from tests.browser.conftest import open_tab

pytestmark = pytest.mark.browser

def selected_id(page) -> str:
    return re.search(r"out_\w+", page.locator("#image-selected").inner_text()).group(0)

def generated(page, before: str) -> None:
    page.wait_for_function("([sel, old]) => { const t = document.querySelector(sel).innerText;"
                           " return t.includes('image(s) from') && t !== old; }", arg=["#image-status", before],
                           timeout=60_000)
    page.locator("#image-selected").get_by_text("Selected out_").wait_for()

def pixels(page, base: str, output_id: str) -> np.ndarray:
    r = page.request.get(f"{base}/api/v1/outputs/{output_id}/file")
    assert r.ok, r.text()
    return np.asarray(Image.open(io.BytesIO(r.body())).convert("RGB")).astype(int)

def test_a_painted_mask_regenerates_only_the_painted_area(page, studio_server):

    open_tab(page, "Image")
    page.fill("#image-prompt textarea", "a red square")
    page.click("#image-generate")
    generated(page, "")
    original = selected_id(page)

    page.click("#image-send-inpaint")
    page.locator("#image-send-note").get_by_text("is in the inpaint editor").wait_for()
    canvas = page.locator("#image-inpaint-editor canvas").first
    canvas.wait_for()
    page.locator("#image-inpaint").scroll_into_view_if_needed()  # the mouse paints only what is on screen
    page.locator("#image-inpaint-editor button[aria-label='Brush']").first.click()
    box = canvas.bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx - 8, cy)
    page.mouse.down()
    page.mouse.move(cx + 8, cy)  # a short stroke across the centre (each move redraws the canvas: keep few)
    page.mouse.up()

    page.fill("#image-mask-blur input[type=number]", "1")
    before = page.locator("#image-status").inner_text()
    page.click("#image-inpaint")
    generated(page, before)
    edited = selected_id(page)
    assert edited != original

    a, b = pixels(page, studio_server.url, original), pixels(page, studio_server.url, edited)
    assert a.shape == b.shape
    changed = np.abs(a - b).max(-1) > 0  # (H, W)
    h, w = changed.shape
    assert changed[h // 2 - 2:h // 2 + 2, w // 2 - 2:w // 2 + 2].any(), "the painted centre did not change"
    ys, xs = np.nonzero(changed)
    assert ys.min() > 4 and xs.min() > 4 and ys.max() < h - 5 and xs.max() < w - 5, "pixels far from the stroke changed"
    r = page.request.get(f"{studio_server.url}/api/v1/outputs/{edited}")
    assert {"mode": "inpaint", "mask_blur": 1}.items() <= r.json()["params"].items()
