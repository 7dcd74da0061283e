"""Image generation through the API on the starter Stable Diffusion."""

from __future__ import annotations

import base64
import io
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from engines.image.pnginfo import parse, read_png_parameters
from engines.starter import STARTER_IMAGE, ensure_starter, starter_path
from studio.store import utcnow


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models run faster on one thread, and far faster on a busy machine (no spinning workers)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def sd_tiny(tmp_path_factory):
    """The starter built once for this module; each test's data dir gets a copy (building takes seconds)."""
    return ensure_starter(STARTER_IMAGE, tmp_path_factory.mktemp("models"))


@pytest.fixture
def api(config, sd_tiny, request):
    shutil.copytree(sd_tiny, starter_path(STARTER_IMAGE, config.data_dir / "models"))
    return request.getfixturevalue("api_client")


def gen(api, **body) -> dict:
    r = api.post("/api/v1/image/generate", json={"prompt": "a lighthouse at dusk", **body})
    assert r.status_code == 200, r.text
    return r.json()


def png(api, output: dict) -> bytes:
    r = api.get(output["url"])
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    return r.content


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def test_same_request_and_seed_give_byte_identical_pngs(api):
    a = gen(api, seed=42, negative_prompt="fog")
    b = gen(api, seed=42, negative_prompt="fog")
    assert a["model"] == "starter/sd-tiny" and a["lora"] is None and a["outputs"][0]["seed"] == 42
    assert a["outputs"][0]["id"] != b["outputs"][0]["id"]
    assert png(api, a["outputs"][0]) == png(api, b["outputs"][0])
    other = gen(api, seed=43, negative_prompt="fog")
    assert not np.array_equal(pixels(png(api, other["outputs"][0])), pixels(png(api, a["outputs"][0])))
    stored = api.get(f"/api/v1/outputs/{a['outputs'][0]['id']}").json()
    assert stored["kind"] == "image" and stored["seed"] == 42 and stored["prompt"] == "a lighthouse at dusk"
    assert stored["params"]["steps"] == 4 and stored["params"]["width"] == 64 and stored["params"]["sampler"] == "DDIM"
    assert stored["url"] == a["outputs"][0]["url"]


def test_the_third_of_a_batch_equals_a_single_request_with_seed_plus_two(api):
    batch = gen(api, seed=1000, num_outputs=3, scheduler="Euler a")
    assert [o["seed"] for o in batch["outputs"]] == [1000, 1001, 1002]
    files = [png(api, o) for o in batch["outputs"]]
    assert len({pixels(f).tobytes() for f in files}) == 3
    alone = gen(api, seed=1002, scheduler="Euler a")
    assert png(api, alone["outputs"][0]) == files[2]  # same pixels and same parameters: same bytes


def test_parameters_round_trip_through_the_png_info_reader(api):
    body = gen(api, seed=7, negative_prompt="rain, fog", steps=3, guidance_scale=6.5, width=48, height=40,
               scheduler="DPM++ 2M")
    data = png(api, body["outputs"][0])
    assert Image.open(io.BytesIO(data)).size == (48, 40)
    text = read_png_parameters(data)
    assert text.endswith("Steps: 3, Sampler: DPM++ 2M, CFG scale: 6.5, Seed: 7, Size: 48x40, Model: starter/sd-tiny")
    expected = {"prompt": "a lighthouse at dusk", "negative_prompt": "rain, fog", "steps": 3, "sampler": "DPM++ 2M",
                "cfg_scale": 6.5, "seed": 7, "width": 48, "height": 40, "model": "starter/sd-tiny"}
    assert {k: parse(text)[k] for k in expected} == expected
    r = api.post("/api/v1/image/pnginfo", files={"file": ("any-name.png", data, "image/png")})
    assert r.status_code == 200 and r.json() == {"raw": text, **expected}

    plain = io.BytesIO()
    Image.new("RGB", (8, 8)).save(plain, format="PNG")
    r = api.post("/api/v1/image/pnginfo", files={"file": ("plain.png", plain.getvalue(), "image/png")})
    assert r.status_code == 200 and r.json() == {"raw": None}
    jpeg = io.BytesIO()
    Image.new("RGB", (8, 8)).save(jpeg, format="JPEG")
    r = api.post("/api/v1/image/pnginfo", files={"file": ("photo.png", jpeg.getvalue(), "image/png")})
    assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_file_type"


@pytest.mark.parametrize("body, field", [
    ({"width": 60}, "width"),  # not a multiple of 8
    ({"height": 100}, "height"),
    ({"width": 512}, "width"),  # beyond the starter's 32..256
    ({"height": 16}, "height"),
    ({"width": 8192}, "width"),  # beyond any model
    ({"num_outputs": 9}, "num_outputs"),
    ({"scheduler": "Heun++"}, "scheduler"),
    ({"steps": 0}, "steps"),
    ({"size": 64}, "size"),  # unknown field
])
def test_invalid_fields_are_422_and_write_nothing(api, body, field):
    r = api.post("/api/v1/image/generate", json={"prompt": "x", **body})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "invalid_field" and field in r.json()["error"]["message"]
    assert not any((api.studio.data_dir / "outputs").rglob("*.png"))
    assert api.studio.outputs.recent("image") == []


def test_unknown_model_is_404_listing_the_models(api):
    r = api.post("/api/v1/image/generate", json={"prompt": "x", "model": "sd-99"})
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "unknown_model" and "starter/sd-tiny" in r.json()["error"]["message"]


def test_an_image_output_can_be_rated(api):
    out = gen(api, seed=3)["outputs"][0]
    r = api.post("/api/v1/feedback", json={"output_id": out["id"], "rating": "up"})
    assert r.status_code == 200 and r.json()["rating"] == "up"
    assert api.get(f"/api/v1/outputs/{out['id']}").json()["rating"] == "up"
    stats = api.get("/api/v1/feedback/stats").json()
    assert {"kind": "image", "model": "starter/sd-tiny", "up": 1}.items() <= stats["by_model"][0].items()


def test_img2img_from_an_earlier_output_or_base64(api):
    first = gen(api, seed=11)["outputs"][0]
    a = gen(api, seed=5, init_image=first["id"], strength=0.5, steps=8)
    b = gen(api, seed=5, init_image=first["id"], strength=0.5, steps=8)
    assert png(api, a["outputs"][0]) == png(api, b["outputs"][0])
    text = read_png_parameters(png(api, a["outputs"][0]))
    assert parse(text)["denoising_strength"] == 0.5
    assert api.get(f"/api/v1/outputs/{a['outputs'][0]['id']}").json()["params"]["init_image"] == first["id"]

    upload = io.BytesIO()
    Image.new("RGB", (128, 64), (30, 200, 90)).save(upload, format="PNG")
    encoded = base64.b64encode(upload.getvalue()).decode()
    c = gen(api, seed=5, init_image=f"data:image/png;base64,{encoded}", strength=0.6)
    assert Image.open(io.BytesIO(png(api, c["outputs"][0]))).size == (64, 32)  # aspect kept at 64 px
    r = api.post("/api/v1/image/generate", json={"prompt": "x", "init_image": "not base64!"})
    assert r.status_code == 422 and "init_image" in r.json()["error"]["message"]


# -- LoRA ---------------------------------------------------------------------------------------


def make_lora(api, base_model: str = STARTER_IMAGE) -> str:
    """A diffusers-format UNet LoRA on the starter (lora_B perturbed so it changes the output) + its row."""
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    studio = api.studio
    unet = UNet2DConditionModel.from_pretrained(starter_path(STARTER_IMAGE, studio.data_dir / "models") / "unet")
    unet.add_adapter(LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, param in unet.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.5)
    lora_id = f"lora_{len(studio.store.query('SELECT id FROM adapters')):016x}"
    rel = f"models/loras/{lora_id}"
    StableDiffusionPipeline.save_lora_weights(studio.data_dir / rel, unet_lora_layers=get_peft_model_state_dict(unet),
                                              safe_serialization=True)
    with studio.store.transaction() as c:
        c.execute(
            "INSERT INTO adapters (id, name, type, base_model, job_id, path, meta, created_at) "
            "VALUES (?, ?, 'image_lora', ?, NULL, ?, '{}', ?)",
            (lora_id, "test style", base_model, rel, utcnow()),
        )
    return lora_id


def test_lora_scale_changes_the_image_and_scale_zero_is_the_base_model(api):
    lora = make_lora(api)
    listed = api.get("/api/v1/models").json()["image_loras"]
    assert [a["id"] for a in listed] == [lora] and listed[0]["base_model"] == STARTER_IMAGE

    def image(**body) -> np.ndarray:
        return pixels(png(api, gen(api, seed=21, **body)["outputs"][0]))

    base = image()
    full = gen(api, seed=21, lora=lora, lora_scale=1.0)
    assert full["lora"] == lora and full["model"] == STARTER_IMAGE  # the model follows the LoRA's base
    with_lora = pixels(png(api, full["outputs"][0]))
    zero = image(lora=lora, lora_scale=0.0)
    after = image()  # no LoRA asked for: the base output again, though the LoRA stays attached
    assert not np.array_equal(with_lora, base)
    assert np.array_equal(zero, base) and np.array_equal(after, base)
    assert np.array_equal(image(lora=lora, lora_scale=1.0), with_lora)
    text = read_png_parameters(png(api, full["outputs"][0]))
    assert parse(text)["lora"] == lora and parse(text)["lora_scale"] == 1.0
    assert api.get(f"/api/v1/outputs/{full['outputs'][0]['id']}").json()["adapter"] == lora
    assert api.studio.models.memory.load_counts["image:starter/sd-tiny"] == 1  # switching never reloads


def test_image_precision_setting_reloads_the_pipeline_in_bf16_and_loras_still_apply(api):
    lora = make_lora(api)
    base32 = pixels(png(api, gen(api, seed=5)["outputs"][0]))
    r = api.put("/api/v1/settings/precision", json={"image": "bf16"})
    assert r.status_code == 200 and r.json()["image"] == "bf16"
    base16 = pixels(png(api, gen(api, seed=5)["outputs"][0]))
    engine = api.studio.image.engine(api.studio.image.resolve(None)[0])
    assert engine.dtype == "bfloat16" and next(engine.pipe.unet.parameters()).dtype is torch.bfloat16
    assert api.studio.models.memory.load_counts["image:starter/sd-tiny"] == 2
    assert base16.shape == base32.shape and np.array_equal(base16, pixels(png(api, gen(api, seed=5)["outputs"][0])))
    assert np.abs(base16.astype(int) - base32.astype(int)).mean() < 8  # the same picture, rounded differently
    styled = pixels(png(api, gen(api, seed=5, lora=lora, lora_scale=1.0)["outputs"][0]))
    assert not np.array_equal(styled, base16)
    assert api.studio.models.memory.load_counts["image:starter/sd-tiny"] == 2


def test_lora_errors(api):
    other = make_lora(api, base_model="stable-diffusion-v1-5/stable-diffusion-v1-5")
    r = api.post("/api/v1/image/generate", json={"prompt": "x", "lora": other, "model": STARTER_IMAGE})
    assert r.status_code == 422 and "stable-diffusion-v1-5" in r.json()["error"]["message"]
    r = api.post("/api/v1/image/generate", json={"prompt": "x", "lora": "lora_ffffffffffffffff"})
    assert r.status_code == 404 and other in r.json()["error"]["message"]


def test_content_filter_status_for_the_starter(api):
    status = api.studio.image.content_filter_status(None)
    assert "unavailable" in status and "starter/sd-tiny" in status


def test_images_the_content_filter_flags_are_withheld_not_stored(api):
    from tests.engines.test_image import FakeFeatures, FlagEverything

    gen(api, seed=1)  # loads the engine
    engine = api.studio.image.engine(api.studio.models.resolve(None, "image"))
    engine.safety_checker, engine.feature_extractor = FlagEverything(), FakeFeatures()  # as if the model shipped one
    assert "Content filter: on" in api.studio.image.content_filter_status(None)
    body = gen(api, seed=9, num_outputs=2)
    assert body["outputs"] == [] and body["filtered"] == [{"seed": 9}, {"seed": 10}]
    assert sum("withheld by the content filter" in w for w in body["warnings"]) == 2
    assert len(api.studio.outputs.recent("image")) == 1
    assert len(list((api.studio.data_dir / "outputs").rglob("*.png"))) == 1  # no black image on disk
    api.studio.settings.set_content_filter(False, "admin")  # the Settings switch
    assert len(gen(api, seed=9)["outputs"]) == 1
