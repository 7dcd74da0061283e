"""The Stable Diffusion engine on the starter model, and the A1111 PNG parameters."""

from __future__ import annotations

import io
import json
import threading

import numpy as np
import pytest
import torch
from PIL import Image

from engines.image import (
    SCHEDULER_NAMES,
    ImageEngine,
    ImageGenerationRequest,
    UnsupportedCheckpoint,
    latents_preview,
    ships_safety_checker,
)
from engines.image.pnginfo import format_parameters, parse, read_png_parameters, save_png
from engines.starter import STARTER_IMAGE, ensure_starter


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models run faster on one thread, and far faster on a busy machine (no spinning workers)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def sd_tiny(tmp_path_factory):
    return ensure_starter(STARTER_IMAGE, tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def engine(sd_tiny):
    return ImageEngine(sd_tiny).load()


def request(**kw) -> ImageGenerationRequest:
    return ImageGenerationRequest(**{"prompt": "a red fox in the snow", "negative_prompt": "blurry", "seed": 7, **kw})


def pixels(item) -> np.ndarray:
    return np.asarray(item.image)


# -- generation ---------------------------------------------------------------------------------


@pytest.mark.parametrize("scheduler", ["Default", "Euler a"])  # Euler a draws fresh noise every step
def test_any_image_of_a_batch_is_reproduced_alone(engine, scheduler):
    batch = engine.generate(request(num_outputs=3, seed=100, scheduler=scheduler))
    alone = engine.generate(request(num_outputs=1, seed=102, scheduler=scheduler))
    assert [g.seed for g in batch.images] == [100, 101, 102]
    assert np.array_equal(pixels(batch.images[2]), pixels(alone.images[0]))
    assert not np.array_equal(pixels(batch.images[0]), pixels(batch.images[1]))
    assert batch.images[0].image.size == (64, 64) and not batch.stopped


def test_every_scheduler_runs_and_is_built_once(engine):
    pipe = engine.pipe
    seen = {}
    for name in SCHEDULER_NAMES:
        result = engine.generate(request(scheduler=name, steps=3))
        seen[name] = (result.sampler, engine.pipe.scheduler)
    assert engine.pipe is pipe  # switching never rebuilds the pipeline
    assert seen["Default"][0] == "DDIM"  # the starter's own scheduler, named as A1111 tools name it
    assert seen["Euler a"][0] == "Euler a" and type(seen["DPM++ 2M"][1]).__name__ == "DPMSolverMultistepScheduler"
    again = engine.generate(request(scheduler="Euler a", steps=3))
    assert again.sampler == "Euler a" and engine.pipe.scheduler is seen["Euler a"][1]  # cached per name
    # "DDIM" rebuilt from the model's DDIM config is the model's own scheduler: the same image
    a = engine.generate(request(scheduler="DDIM"))
    b = engine.generate(request(scheduler="Default"))
    assert np.array_equal(pixels(a.images[0]), pixels(b.images[0]))


def test_progress_every_step_with_previews(engine):
    calls = []
    engine.generate(request(num_outputs=2, steps=8),
                    on_progress=lambda step, total, preview: calls.append((step, total, preview)))
    assert [(s, t) for s, t, _ in calls] == [(s, 16) for s in range(1, 17)]
    previews = [p for _, _, p in calls if p is not None]
    assert len(previews) >= 4 and all(p.size == (64, 64) for p in previews)


def test_stop_interrupts_the_loop_and_skips_the_rest(engine):
    stop = threading.Event()
    steps_seen = []

    def on_progress(step, total, preview):
        steps_seen.append(step)
        if step == 2:
            stop.set()

    result = engine.generate(request(num_outputs=3, steps=10), on_progress=on_progress, stop_event=stop)
    assert result.stopped and result.images == []  # the cut-short image is dropped, the others never start
    assert steps_seen == [1, 2]


def test_img2img_shares_the_modules_and_follows_strength(engine):
    init = Image.new("RGB", (96, 80), (220, 40, 40))
    calls = []
    result = engine.generate(request(init_image=init, strength=0.5, steps=8),
                             on_progress=lambda s, t, p: calls.append(t))
    assert engine._img2img.unet is engine.pipe.unet and engine._img2img.vae is engine.pipe.vae
    assert result.steps_run == 4 and set(calls) == {4}
    assert result.images[0].image.size == (64, 64)
    again = engine.generate(request(init_image=init, strength=0.5, steps=8))
    assert np.array_equal(pixels(result.images[0]), pixels(again.images[0]))
    plain = engine.generate(request(steps=8))
    assert not np.array_equal(pixels(result.images[0]), pixels(plain.images[0]))
    with pytest.raises(ValueError, match="strength"):
        engine.generate(request(init_image=init, strength=0.05, steps=8))


def test_bad_sizes_are_refused(engine):
    with pytest.raises(ValueError, match="multiples of 8"):
        engine.generate(request(width=60))


def test_long_prompt_warns(engine):
    result = engine.generate(request(prompt="castle " * 120, steps=1))
    assert any("reads the first" in w for w in result.warnings)


class FlagEverything(torch.nn.Module):
    """Stands in for StableDiffusionSafetyChecker: flags every image (and blacks it out, like the real one)."""

    def forward(self, images, clip_input):
        images[:] = 0
        return images, [True] * len(images)


class FakeFeatures:
    def __call__(self, images, return_tensors="pt"):
        class Out:
            pixel_values = torch.zeros(len(images), 3, 8, 8)
        return Out()


def test_content_filter_withholds_flagged_images(sd_tiny):
    engine = ImageEngine(sd_tiny).load()
    assert engine.safety_checker is None and not engine.has_safety_checker  # the starter ships none
    engine.safety_checker, engine.feature_extractor = FlagEverything(), FakeFeatures()
    flagged = engine.generate(request(num_outputs=2))
    assert [(g.filtered, g.image) for g in flagged.images] == [(True, None), (True, None)]
    shown = engine.generate(request(num_outputs=1), content_filter=False)
    assert not shown.images[0].filtered and np.asarray(shown.images[0].image).max() > 0


def test_a_tight_memory_budget_slices_attention(sd_tiny):
    engine = ImageEngine(sd_tiny, budget_bytes=1024).load()
    assert engine.attention_slicing and not engine.cpu_offload  # model offload is for CUDA only
    assert len(engine.generate(request(steps=2)).images) == 1
    roomy = ImageEngine(sd_tiny, budget_bytes=10 * engine.size_bytes()).load()
    assert not roomy.attention_slicing


def test_pickle_checkpoints_are_refused(tmp_path):
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(b"not loaded")
    with pytest.raises(UnsupportedCheckpoint, match="safetensors"):
        ImageEngine(ckpt).load()


def test_ships_safety_checker(sd_tiny, tmp_path):
    assert ships_safety_checker(sd_tiny) is False
    folder = tmp_path / "sd15"
    folder.mkdir()
    (folder / "model_index.json").write_text(json.dumps({"safety_checker": ["stable_diffusion",
                                                                            "StableDiffusionSafetyChecker"]}))
    assert ships_safety_checker(folder) is True
    assert ships_safety_checker(tmp_path / "model.safetensors") is False
    assert ships_safety_checker("nobody/not-cached") is None


def test_latents_preview():
    preview = latents_preview(torch.randn(1, 4, 8, 12), 8)
    assert preview.size == (96, 64) and preview.mode == "RGB"
    assert latents_preview(torch.randn(1, 16, 8, 8), 8) is None


# -- PNG parameters -----------------------------------------------------------------------------

FIELDS = dict(prompt="a castle, on a hill\n(golden hour)", negative_prompt="blurry, low quality", steps=4,
              sampler="Euler a", cfg_scale=5.0, seed=123, width=64, height=48, model="starter/sd-tiny")


def test_parameters_text_is_a1111_layout():
    text = format_parameters(**{**FIELDS, "prompt": "a castle"})
    assert text == ("a castle\nNegative prompt: blurry, low quality\n"
                    "Steps: 4, Sampler: Euler a, CFG scale: 5.0, Seed: 123, Size: 64x48, Model: starter/sd-tiny")


@pytest.mark.parametrize("extra", [
    {},
    {"lora": "lora_0123456789abcdef", "lora_scale": 0.8},
    {"denoising_strength": 0.75, "model": 'local/image/my, "odd" model.safetensors'},
    {"prompt": "un château — 城", "negative_prompt": ""},
])
def test_parameters_round_trip(extra):
    fields = {**FIELDS, **extra}
    parsed = parse(format_parameters(**fields))
    expected = {k: v for k, v in fields.items() if k != "lora_scale" or "lora" in fields}
    assert {k: parsed[k] for k in expected} == expected


def test_parse_reads_other_tools_text():
    text = ("masterpiece, a cat\nwearing a hat\nNegative prompt: ugly\n"
            'Steps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 42, Size: 512x768, Model hash: abc123, '
            'Model: v1-5, Lora hashes: "foo: 1234, bar: 5678", Version: v1.9.0')
    parsed = parse(text)
    assert parsed["prompt"] == "masterpiece, a cat\nwearing a hat" and parsed["negative_prompt"] == "ugly"
    assert (parsed["steps"], parsed["cfg_scale"], parsed["seed"]) == (20, 7.0, 42)
    assert (parsed["width"], parsed["height"], parsed["model"]) == (512, 768, "v1-5")
    assert parsed["model_hash"] == "abc123" and parsed["lora_hashes"] == "foo: 1234, bar: 5678"
    assert parse("just a prompt") == {"prompt": "just a prompt", "negative_prompt": ""}


def test_png_is_deterministic_and_carries_its_parameters(tmp_path):
    image = Image.fromarray(np.arange(64 * 64 * 3, dtype=np.uint8).reshape(64, 64, 3))
    text = format_parameters(**FIELDS)
    a, b = save_png(image, tmp_path / "a.png", text), save_png(image, tmp_path / "b.png", text)
    assert a.read_bytes() == b.read_bytes()
    assert read_png_parameters(a) == text == read_png_parameters(a.read_bytes())
    assert parse(read_png_parameters(a))["seed"] == 123
    plain = io.BytesIO()
    image.save(plain, format="PNG")
    assert read_png_parameters(plain.getvalue()) is None
    with pytest.raises(ValueError):
        read_png_parameters(b"GIF89a...")
    assert sorted(tmp_path.iterdir()) == [a, b]  # no temp files left behind
    unicode = format_parameters(**{**FIELDS, "prompt": "un château — 城"})  # not Latin-1: an iTXt chunk
    assert read_png_parameters(save_png(image, tmp_path / "c.png", unicode)) == unicode
