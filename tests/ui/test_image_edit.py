"""The Image tab's editing controls turned into the service's fields (no browser, no model)."""

from __future__ import annotations

import base64
import io

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from studio.ui.image_edit import editor_images, form_params
from studio.ui.image_tab import image_params


def editor_value(painted: bool = True) -> dict:
    background = Image.new("RGBA", (64, 48), (10, 120, 200, 255))
    layer = Image.new("RGBA", (64, 48), (0, 0, 0, 0))
    if painted:
        layer.paste((255, 255, 255, 255), (8, 8, 24, 20))
    return {"background": background, "layers": [layer], "composite": background}


def test_the_painted_pixels_of_the_layers_are_the_mask_and_the_background_the_image():
    init, mask = editor_images(editor_value())
    assert init.mode == "RGB" and init.size == (64, 48) and init.getpixel((0, 0)) == (10, 120, 200)
    m = np.asarray(mask)
    assert (m[8:20, 8:24] == 255).all() and m.sum() == 255 * 16 * 12


def test_inpaint_form_fields_become_mask_image_and_hires_fields_become_hires():
    params = form_params(image_params, {"prompt": "x", "inpaint": editor_value(), "mask_blur": 2, "hires": True,
                                        "hires_scale": 2, "hires_strength": 0.4, "hires_steps": None, "width": 64})
    assert params.mask_blur == 2 and params.hires is None and params.width is None  # inpainting keeps the image's size
    mask = Image.open(io.BytesIO(base64.b64decode(params.mask_image)))
    assert mask.size == (64, 48)
    params = form_params(image_params, {"prompt": "x", "hires": True, "hires_scale": 1.5, "hires_strength": 0.4,
                                        "hires_steps": 3})
    assert params.hires.model_dump() == {"scale": 1.5, "strength": 0.4, "steps": 3} and params.mask_image is None


@pytest.mark.parametrize(("value", "words"), [(None, "put an image in the editor"),
                                              (editor_value(painted=False), "nothing painted")])
def test_an_empty_editor_says_what_to_do(value, words):
    with pytest.raises(gr.Error, match=words):
        form_params(image_params, {"prompt": "x", "inpaint": value, "mask_blur": 4})
