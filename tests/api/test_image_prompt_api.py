"""Several LoRAs at once (`loras` and `<lora:…>` tags) and A1111 prompt weighting, through the API."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from engines.image.pnginfo import parse, read_png_parameters
from engines.image.prompts import parse_attention, split_lora_tags
from engines.starter import STARTER_IMAGE, ensure_starter, starter_path
from studio.store import utcnow
from tests.api.test_image_api import gen, pixels, png

pytestmark = pytest.mark.usefixtures("one_thread")

FAST = {"steps": 2, "width": 64, "height": 64}


@pytest.fixture(scope="module", name="one_thread")
def one_thread_fixture():
    """Tiny models run faster on one thread on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session", name="sd_tiny")
def sd_tiny_fixture(tmp_path_factory):
    """Built once for the image prompt and grid tests (building takes seconds)."""
    return ensure_starter(STARTER_IMAGE, tmp_path_factory.mktemp("models"))


@pytest.fixture(name="api")
def api_fixture(config, sd_tiny, request):
    shutil.copytree(sd_tiny, starter_path(STARTER_IMAGE, config.data_dir / "models"))
    return request.getfixturevalue("api_client")


def make_lora(api, seed: int, name: str) -> str:
    """A random-init UNet LoRA on the starter saved in diffusers format, registered as an artifact."""
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    studio = api.studio
    unet = UNet2DConditionModel.from_pretrained(starter_path(STARTER_IMAGE, studio.data_dir / "models") / "unet")
    unet.add_adapter(LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param_name, param in unet.named_parameters():
            if "lora_B" in param_name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.5)
    lora_id = f"lora_{seed:016x}"
    rel = f"models/loras/{lora_id}"
    StableDiffusionPipeline.save_lora_weights(studio.data_dir / rel, unet_lora_layers=get_peft_model_state_dict(unet),
                                              safe_serialization=True)
    with studio.store.transaction() as c:
        c.execute("INSERT INTO adapters (id, name, type, base_model, job_id, path, meta, created_at) "
                  "VALUES (?, ?, 'image_lora', ?, NULL, ?, '{}', ?)", (lora_id, name, STARTER_IMAGE, rel, utcnow()))
    return lora_id


def test_two_loras_at_scales_one_and_zero_give_the_first_alone(api):
    a, b = make_lora(api, 1, "ink"), make_lora(api, 2, "neon")

    def image(**body) -> np.ndarray:
        return pixels(png(api, gen(api, seed=7, **FAST, **body)["outputs"][0]))

    first = image(lora=a)
    both = gen(api, seed=7, **FAST, loras=[{"id": a, "scale": 1.0}, {"id": b, "scale": 0.0}])
    assert both["lora"] == a and np.array_equal(pixels(png(api, both["outputs"][0])), first)
    mixed = image(loras=[{"id": a, "scale": 1.0}, {"id": b, "scale": 1.0}])
    assert not np.array_equal(mixed, first)
    # the same two LoRAs written A1111-style in the prompt, by name or id: the same pixels
    tagged = gen(api, seed=7, **FAST, prompt=f"a lighthouse at dusk <lora:ink:1> <lora:{b}:1.0>")
    assert np.array_equal(pixels(png(api, tagged["outputs"][0])), mixed)
    stored = api.get(f"/api/v1/outputs/{tagged['outputs'][0]['id']}").json()
    assert stored["prompt"].endswith(f"<lora:{b}:1.0>") and stored["params"]["loras"] == [
        {"id": a, "scale": 1.0}, {"id": b, "scale": 1.0}]
    assert parse(read_png_parameters(png(api, tagged["outputs"][0])))["prompt"] == stored["prompt"]


def test_unknown_or_bad_loras_are_refused_before_anything_runs(api):
    r = api.post("/api/v1/image/generate", json={"prompt": "x", "loras": [{"id": "lora_nope", "scale": 1}]})
    assert r.status_code == 404 and "lora_nope" in r.json()["error"]["message"]
    r = api.post("/api/v1/image/generate", json={"prompt": "x <lora:nobody:0.5>"})
    assert r.status_code == 404 and "nobody" in r.json()["error"]["message"]
    r = api.post("/api/v1/image/generate", json={"prompt": "x <lora:any:5>"})
    assert r.status_code == 422 and "between 0 and 2" in r.json()["error"]["message"]


def test_prompt_syntax_is_read_as_a1111_reads_it():
    assert split_lora_tags("a cat <lora:ink:0.8>, <lora:neon>") == ("a cat", [("ink", 0.8), ("neon", 1.0)])
    assert parse_attention("a (red:1.5) [square] \\(x\\)") == [
        ("a ", 1.0), ("red", 1.5), (" ", 1.0), ("square", 1 / 1.1), (" (x)", 1.0)]
    assert parse_attention("((big))") == [("big", 1.1 * 1.1)]


def test_weighting_changes_the_image_and_plain_prompts_are_unchanged(api):
    from diffusers import StableDiffusionPipeline

    def image(prompt: str, **body) -> tuple[np.ndarray, dict]:
        out = gen(api, seed=3, prompt=prompt, **FAST, **body)
        return pixels(png(api, out["outputs"][0])), out

    plain, _ = image("a red square")
    weighted, out = image("a (red:1.5) square")
    assert not np.array_equal(plain, weighted)
    assert image("a [red] square", negative_prompt="(blue:1.2)")[0].shape == plain.shape
    stored = api.get(f"/api/v1/outputs/{out['outputs'][0]['id']}").json()
    assert stored["prompt"] == "a (red:1.5) square"
    assert parse(read_png_parameters(png(api, out["outputs"][0])))["prompt"] == "a (red:1.5) square"
    # no regression: a plain prompt gives the pixels of the plain diffusers pipeline
    pipe = StableDiffusionPipeline.from_pretrained(starter_path(STARTER_IMAGE, api.studio.data_dir / "models"))
    pipe.set_progress_bar_config(disable=True)
    ref = pipe(prompt="a red square", num_inference_steps=2, guidance_scale=5.0, width=64, height=64,
               generator=torch.Generator("cpu").manual_seed(3), output_type="pil").images[0]
    assert np.array_equal(np.asarray(ref.convert("RGB")), plain)
