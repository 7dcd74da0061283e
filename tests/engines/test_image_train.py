"""The `image-lora` trainer in-process on the starter Stable Diffusion (no studio).

The starter's weights are random, so "learning" here means the noise-prediction loss falls; the
checks are what a user would notice: the loss, the samples, a LoRA that plain diffusers loads.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from engines.image.train import (
    ImageLoraConfig,
    default_learning_rate,
    resolve_mixed_precision,
    run,
    sample_settings,
)
from engines.image.train_data import batch_indices, read_captioned_images
from engines.registry import ModelSpec
from engines.starter import STARTER_IMAGE, ensure_starter
from engines.training import JobConfig, RunDir, describe_config, latest_checkpoint, resolve_params

FAST = {"batch_size": 2, "sample_steps": 2, "learning_rate": 1e-2}  # tiny runs for a busy 2-core machine


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def shapes(n: int) -> list[tuple[Image.Image, str]]:
    """Red squares and blue circles, a little shifted each time, with their captions."""
    out = []
    for i in range(n):
        img = Image.new("RGB", (64, 64), "white")
        draw = ImageDraw.Draw(img)
        dx = (i // 2 % 3) * 4
        if i % 2 == 0:
            draw.rectangle([12 + dx, 12, 48 + dx, 48], fill=(220, 30, 30))
            out.append((img, "a red square"))
        else:
            draw.ellipse([12 + dx, 12, 48 + dx, 48], fill=(30, 60, 220))
            out.append((img, "a blue circle"))
    return out


def write_dataset(root: Path, ds_id: str, items: list[tuple[Image.Image, str]], name: str) -> Path:
    """The studio's image dataset layout: 000000.png … + metadata.jsonl (+ manifest.json)."""
    folder = root / "datasets" / ds_id
    folder.mkdir(parents=True)
    rows = []
    for i, (img, caption) in enumerate(items):
        img.save(folder / f"{i:06d}.png")
        rows.append({"file_name": f"{i:06d}.png", "text": caption})
    (folder / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (folder / "manifest.json").write_text(json.dumps({"name": name}), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("image-train") / "data"
    ensure_starter(STARTER_IMAGE, root / "models")
    write_dataset(root, "ds_shapes", shapes(8), "shapes")
    write_dataset(root, "ds_plain", [(img, "") for img, _ in shapes(4)], "uncaptioned")
    return root


_counter = iter(range(10**6))


def make_run(data_dir: Path, dataset: str = "ds_shapes", *, job_id: str | None = None, resume: bool = False,
             **params) -> tuple[RunDir, ImageLoraConfig]:  # fmt: skip
    job_id = job_id or f"job_{next(_counter):016x}"
    run_dir = RunDir(data_dir / "runs" / job_id)
    run_dir.write_job(
        JobConfig(
            job_id=job_id, kind="image-lora", params=params, base_model=STARTER_IMAGE, dataset_id=dataset,
            dataset_path=str(data_dir / "datasets" / dataset), resume=resume,
            output_dir=str(data_dir / "models" / "trained" / job_id), models_root=str(data_dir / "models"),
            device="cpu", offline=True,
        )
    )  # fmt: skip
    return run_dir, resolve_params(ImageLoraConfig, params)


class StopAfter:
    """A stop signal raised once the trainer has logged `step` events (as SIGTERM would be)."""

    def __init__(self, run_dir: RunDir, step: int):
        self.run_dir, self.step = run_dir, step

    @property
    def requested(self) -> bool:
        return len(self.run_dir.events()) >= self.step


@pytest.fixture(scope="module")
def trained(data_dir) -> tuple[RunDir, dict]:
    """One real run: 16 steps, samples every 8, rank 4 with alpha 8 (so the saved scale matters)."""
    run_dir, config = make_run(data_dir, max_steps=16, save_every=8, lora_rank=4, lora_alpha=8.0, **FAST)
    return run_dir, run(config, run_dir)


# -- parameters and data -------------------------------------------------------------------------


def test_params_are_documented_and_checked():
    described = {p["name"]: p for p in describe_config(ImageLoraConfig)}
    assert {"resolution", "augment", "learning_rate", "max_steps", "batch_size", "gradient_accumulation_steps",
            "lora_rank", "lora_alpha", "lora_dropout", "seed", "save_every", "mixed_precision",
            "instance_prompt", "sample_prompts", "sample_steps"} <= set(described)  # fmt: skip
    assert all(p["doc"] for p in described.values())
    assert resolve_params(ImageLoraConfig, {"augment": ["color", "flip"]}).augment == ["flip", "color"]
    sd15 = "stable-diffusion-v1-5/stable-diffusion-v1-5"
    assert default_learning_rate(ModelSpec(STARTER_IMAGE, "image", "starter", "")) > default_learning_rate(
        ModelSpec(sd15, "image", "hub", sd15)
    )
    turbo = ModelSpec("stabilityai/sd-turbo", "image", "hub", "stabilityai/sd-turbo")
    assert sample_settings(ImageLoraConfig(), turbo) == (4, 0.0)  # distilled: few steps, no CFG
    assert resolve_mixed_precision("fp16", torch.device("cpu")) == "no"
    for bad in ({"augment": ["blur"]}, {"resolution": 60}, {"mixed_precision": "fp8"}, {"max_steps": 0},
                {"lora_dropout": 1.0}, {"colour": "red"}):  # fmt: skip
        with pytest.raises(ValueError):
            resolve_params(ImageLoraConfig, bad)


def test_batches_depend_only_on_the_step_and_cover_each_epoch():
    assert batch_indices(10, 4, 0, 5) == batch_indices(10, 4, 0, 5)
    epoch = [i for m in range(3) for i in batch_indices(10, 4, 0, m)]  # 3 micro-batches = 1 epoch of 10
    assert sorted(epoch) == list(range(10))
    assert batch_indices(10, 4, 1, 0) != batch_indices(10, 4, 0, 0)


def test_images_without_captions_take_the_instance_prompt_or_are_refused(data_dir):
    folder = data_dir / "datasets" / "ds_plain"
    pairs = read_captioned_images(folder, "a photo in sks style")
    assert len(pairs) == 4 and {c for _, c in pairs} == {"a photo in sks style"}
    assert all(p.is_file() for p, _ in pairs)
    with pytest.raises(ValueError, match="instance_prompt"):
        read_captioned_images(folder, "")
    run_dir, config = make_run(data_dir, "ds_plain", max_steps=2, save_every=0, **FAST)
    with pytest.raises(ValueError, match="instance_prompt"):
        run(config, run_dir)


# -- a real run ----------------------------------------------------------------------------------


def test_a_run_lowers_the_loss_and_writes_samples_as_it_goes(trained):
    run_dir, result = trained
    metrics = result["metrics"]
    assert metrics["steps"] == 16 and metrics["resolution"] == 64  # the starter's own size
    # The validation loss uses fixed noise and timesteps: it moves only when the model does.
    assert metrics["eval_loss"] < metrics["eval_loss_before"] - 0.01
    assert metrics["loss"] < metrics["loss_start"]
    events = run_dir.events()
    assert [e["step"] for e in events] == list(range(1, 17))
    with_samples = [e for e in events if e.get("samples")]
    assert [e["step"] for e in with_samples] == [8, 16]
    for event in with_samples:
        assert len(event["samples"]) == 2  # the two distinct captions
        for rel in event["samples"]:
            with Image.open(run_dir.path / rel) as img:
                assert img.size == (64, 64)
    early, late = (np.asarray(Image.open(run_dir.path / e["samples"][0])) for e in with_samples)
    assert not np.array_equal(early, late)  # the LoRA changed between the two sample points


def test_the_saved_lora_loads_in_plain_diffusers_and_reproduces_the_last_sample(data_dir, trained):
    from diffusers import StableDiffusionPipeline

    run_dir, result = trained
    artifact = result["artifact"]
    folder = Path(artifact["path"])
    assert artifact["type"] == "image_lora" and artifact["base_model"] == STARTER_IMAGE
    assert (folder / "pytorch_lora_weights.safetensors").is_file()
    card = (folder / "README.md").read_text(encoding="utf-8")
    assert "base_model: starter/sd-tiny" in card and "shapes" in card and "loss_start" in card

    pipe = StableDiffusionPipeline.from_pretrained(data_dir / "models" / "starter" / "sd-tiny")
    pipe.set_progress_bar_config(disable=True)

    def draw() -> np.ndarray:  # the trainer's sample settings: 2 steps, guidance 7, seed 0
        generator = torch.Generator().manual_seed(0)
        return np.asarray(pipe("a red square", num_inference_steps=2, guidance_scale=7.0, generator=generator,
                               output_type="np").images[0])  # fmt: skip

    base = draw()
    pipe.load_lora_weights(folder)
    with_lora = draw()
    assert np.abs(with_lora - base).max() > 1e-3
    last = np.asarray(Image.open(run_dir.path / "samples" / "step-16-0.png"), dtype=np.float32) / 255
    # lora_alpha / lora_rank = 2 travels with the weights: the loaded LoRA draws what the trainer drew.
    assert np.abs(with_lora - last).max() <= 2 / 255


def test_stop_then_resume_continues_exactly_like_an_uninterrupted_run(data_dir):
    from safetensors.torch import load_file

    # Dropout, augmentation and instance-prompt captions: every source of randomness in play.
    params = {"max_steps": 6, "save_every": 4, "lora_dropout": 0.1, "augment": ["flip", "crop"],
              "augment_copies": 2, "instance_prompt": "a sks shape", **FAST}  # fmt: skip
    straight_dir, config = make_run(data_dir, "ds_plain", **params)
    straight = run(config, straight_dir)
    stopped_dir, config = make_run(data_dir, "ds_plain", **params)
    stopped_dir.stop = StopAfter(stopped_dir, 3)
    assert run(config, stopped_dir)["status"] == "cancelled"
    assert latest_checkpoint(stopped_dir)[0] == 3  # saved where it stopped
    resumed_dir, config = make_run(data_dir, "ds_plain", job_id=stopped_dir.path.name, resume=True, **params)
    resumed = run(config, resumed_dir)

    events = resumed_dir.events()
    assert [e["step"] for e in events] == list(range(1, 7))  # no step twice, none missing
    assert [e["loss"] for e in events] == [e["loss"] for e in straight_dir.events()]
    weights = "pytorch_lora_weights.safetensors"
    a = load_file(Path(straight["artifact"]["path"]) / weights)
    b = load_file(Path(resumed["artifact"]["path"]) / weights)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert resumed["metrics"]["loss_start"] == straight["metrics"]["loss_start"]
