"""Inpainting, outpainting and the hires fix through POST /image/generate on the tiny starter SD."""

from __future__ import annotations

import base64
import io
import shutil

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter

from engines.image.pnginfo import parse, read_png_parameters
from engines.starter import STARTER_IMAGE, ensure_starter, starter_path


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def sd_tiny(tmp_path_factory):
    return ensure_starter(STARTER_IMAGE, tmp_path_factory.mktemp("models"))


@pytest.fixture
def api(config, sd_tiny, request):
    shutil.copytree(sd_tiny, starter_path(STARTER_IMAGE, config.data_dir / "models"))
    return request.getfixturevalue("api_client")


def b64(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def photo(size=(64, 64)) -> Image.Image:
    return Image.fromarray((np.random.RandomState(0).rand(size[1], size[0], 3) * 255).astype(np.uint8))


def square_mask(size=(64, 64), box=(16, 16, 48, 48)) -> Image.Image:
    mask = Image.new("L", size, 0)
    mask.paste(255, box)
    return mask


def post(api, **body):
    return api.post("/api/v1/image/generate", json={"prompt": "a lighthouse at dusk", "steps": 2, "seed": 3, **body})


def result_pixels(api, answer: dict) -> np.ndarray:
    r = api.get(answer["outputs"][0]["url"])
    return np.asarray(Image.open(io.BytesIO(r.content)).convert("RGB")).astype(int)


def test_inpainting_keeps_every_pixel_outside_the_mask_and_repaints_inside(api):
    init, mask, blur = photo(), square_mask(), 2
    r = post(api, init_image=b64(init), mask_image=b64(mask), mask_blur=blur, strength=1.0)
    assert r.status_code == 200, r.text
    out, orig = result_pixels(api, r.json()), np.asarray(init).astype(int)
    assert out.shape == orig.shape  # the canvas keeps its own size
    # Beyond the blur margin (3 × blur covers PIL's Gaussian) every pixel is the original's
    margin = np.asarray(mask.filter(ImageFilter.MaxFilter(2 * 3 * blur + 1))) > 0
    assert np.array_equal(out[~margin], orig[~margin])
    inside = np.abs(out - orig).max(-1)[20:44, 20:44]
    assert (inside > 0).mean() > 0.9  # the masked square was repainted

    row = api.get(f"/api/v1/outputs/{r.json()['outputs'][0]['id']}").json()
    assert {"mode": "inpaint", "mask_blur": 2, "strength": 1.0, "mask_image": "upload"}.items() <= row["params"].items()
    fields = parse(read_png_parameters(api.get(row["url"]).content))
    assert fields["mask_blur"] == "2" and fields["denoising_strength"] == 1.0


def test_outpainting_grows_the_canvas_and_keeps_the_old_image(api):
    init = photo()
    r = post(api, init_image=b64(init), outpaint={"left": 16, "bottom": 8}, mask_blur=0, strength=1.0)
    assert r.status_code == 200, r.text
    out = result_pixels(api, r.json())
    assert out.shape == (72, 80, 3)
    assert np.array_equal(out[:64, 16:], np.asarray(init).astype(int))
    assert r.json()["params"]["width"] == 80


def test_hires_fix_output_is_scale_times_the_base_size(api):
    r = post(api, width=32, height=48, hires={"scale": 2, "strength": 0.5, "steps": 2})
    assert r.status_code == 200, r.text
    assert result_pixels(api, r.json()).shape == (96, 64, 3)
    row = api.get(f"/api/v1/outputs/{r.json()['outputs'][0]['id']}").json()
    assert row["params"]["hires"] == {"scale": 2.0, "strength": 0.5, "steps": 2, "upscaler": "Lanczos"}
    assert parse(read_png_parameters(api.get(row["url"]).content))["hires_upscale"] == "2.0"


@pytest.mark.parametrize(("body", "status", "words"), [
    ({"mask_image": "MASK64"}, 422, "mask_image: it is 32x32 but init_image is 64x64"),
    ({"mask_image": "BLACK"}, 422, "no white pixels"),
    ({"mask_image": "not base64!"}, 422, "mask_image: give the id"),
    ({"mask_image": base64.b64encode(b"\x89PNG\r\n\x1a\nbroken").decode()}, 415, "mask_image: not a readable image"),
    ({"init_image": None, "mask_image": "BLACK"}, 422, "give the image to edit as init_image"),
    ({"hires": {"scale": 8}}, 422, "hires.scale"),
    ({"hires": {"scale": 4}, "width": 128, "height": 128}, 422, "hires.scale: 512x512 is larger than 256"),
    ({"hires": {"scale": 2}, "mask_image": "SQUARE"}, 422, "hires: the hires fix works with txt2img"),
    ({"outpaint": {"left": -8}}, 422, "outpaint"),
])
def test_bad_edits_are_refused_before_anything_runs(api, body, status, words):
    images = {"MASK64": b64(square_mask((32, 32), (0, 0, 8, 8))), "BLACK": b64(Image.new("L", (64, 64), 0)),
              "SQUARE": b64(square_mask())}
    body = {"init_image": b64(photo()), **{k: images.get(v, v) if isinstance(v, str) else v for k, v in body.items()}}
    r = post(api, **body)
    assert r.status_code == status, r.text
    assert words in r.json()["error"]["message"]
    assert api.studio.outputs.recent("image") == [] and not any((api.studio.data_dir / "outputs").rglob("*.png"))
    assert not api.studio.models.memory.is_loaded(f"image:{STARTER_IMAGE}")
