"""The trained starters shipped in assets/starter/: listed first and the default offline (tiny random
fixtures first only where AIGC_STUDIO_TINY_STARTERS asks for them), with their card; and what they make
means something (checked by the project's own measures)."""

from __future__ import annotations

import json

import pytest

from engines.registry import ModelRegistry
from engines.starter import STARTER_IMAGE, STARTER_TEXT, shipped


def fake_shipped(root, model_id: str) -> None:
    folder = shipped.shipped_path(model_id, root)
    for rel in shipped._REQUIRED[model_id]:
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text("{}")
    (folder / shipped.CARD_FILE).write_text(json.dumps({"id": model_id, "measures": {"x": 1}}))


@pytest.fixture
def assets(tmp_path, monkeypatch):
    root = tmp_path / "assets"
    monkeypatch.setattr(shipped, "ASSETS", root)
    return root


def test_the_trained_starter_is_the_offline_default_and_carries_its_card(assets, tmp_path, monkeypatch):
    monkeypatch.delenv(shipped.TINY_ENV, raising=False)
    fake_shipped(assets, shipped.TRAINED_TEXT)
    registry = ModelRegistry(tmp_path / "models", offline=True)
    text = registry.list("text")
    assert [s.id for s in text] == [shipped.TRAINED_TEXT]  # the random-weight model is not offered
    assert registry.default_id("text") == shipped.TRAINED_TEXT
    spec = registry.resolve(None, "text")
    assert spec.source == "starter" and spec.is_starter and not spec.is_random_starter
    assert spec.meta["card"]["measures"] == {"x": 1}
    assert registry.location(spec) == str(shipped.shipped_path(shipped.TRAINED_TEXT, assets))
    assert not (tmp_path / "models" / "starter").exists()  # nothing built at start
    # a kind with no trained starter shipped keeps its tiny one
    assert [s.id for s in registry.list("image")] == [STARTER_IMAGE]
    assert registry.resolve(None, "image").is_random_starter


def test_an_incomplete_folder_is_not_shipped(assets, tmp_path, monkeypatch):
    monkeypatch.delenv(shipped.TINY_ENV, raising=False)
    fake_shipped(assets, shipped.TRAINED_TEXT)
    (shipped.shipped_path(shipped.TRAINED_TEXT, assets) / shipped.CARD_FILE).unlink()  # written last
    assert not shipped.is_shipped(shipped.TRAINED_TEXT)
    assert ModelRegistry(tmp_path / "models", offline=True).default_id("text") == STARTER_TEXT


def test_tiny_fixtures_first_when_asked(assets, tmp_path, monkeypatch):
    monkeypatch.setenv(shipped.TINY_ENV, "1")
    fake_shipped(assets, shipped.TRAINED_TEXT)
    registry = ModelRegistry(tmp_path / "models", offline=True)
    assert [s.id for s in registry.list("text")] == [STARTER_TEXT, shipped.TRAINED_TEXT]
    assert registry.default_id("text") == STARTER_TEXT


def test_every_shipped_starter_is_complete_and_all_of_them_fit_in_40_mb():
    """The real assets/starter/: each trained starter a complete folder with its card, weights as
    safetensors only, and the whole lot within the 40 MB the repository may carry."""
    for model_id in shipped.TRAINED_IDS.values():
        assert shipped.is_shipped(model_id), model_id
        assert shipped.read_card(model_id)["measures"], model_id
    files = [f for f in shipped.ASSETS.rglob("*") if f.is_file()]
    weights = {f.suffix for f in files if f.suffix in (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".safetensors")}
    assert weights == {".safetensors"}
    assert sum(f.stat().st_size for f in files) <= 40 * 1024 * 1024


def test_the_image_build_trains_a_chain_of_stages_and_measures_what_ships(tmp_path, monkeypatch):
    """`python -m engines.starter build --kind image` at toy size: stage 1 from scratch, then a stage that
    trains its model further; the card sums both stages' time and carries the detector's measures."""
    import torch
    from diffusers import StableDiffusionPipeline

    from engines.starter import build_image as bi

    tiny = {**bi.IMAGE_RECIPE, "images": 8, "held_out_prompts": 2,
            "inference": {**bi.IMAGE_RECIPE["inference"], "steps": 2},
            "trainer": {**bi.IMAGE_RECIPE["trainer"], "resolution": 32, "vae_steps": 2, "unet_steps": 2,
                        "batch_size": 4, "vae_batch_size": 4, "vae_crop": 16, "sample_seeds": 1, "sample_steps": 1},
            "further": [{"unet_steps": 3, "learning_rate": 1e-4, "warmup_steps": 0, "base_reuse": "all"}]}  # fmt: skip
    tiny["inference"].update(width=32, height=32)
    monkeypatch.setattr(bi, "IMAGE_RECIPE", tiny)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    card = bi.build_image(tmp_path / "assets", work=tmp_path / "work", log=lambda _: None)
    runs = tmp_path / "work" / "runs"
    assert [e["phase"] for e in map(json.loads, (runs / "starter-image-2" / "events.jsonl").read_text().splitlines())
            if "phase" in e] == ["unet"] * 3  # fmt: skip
    assert json.loads((runs / "starter-image-2" / "config.json").read_text())["base_model_path"] == str(
        tmp_path / "work" / "models" / "trained" / "starter-image")
    assert set(card["phase_time_s"]) == {"stage1_vae", "stage1_unet", "stage2_unet"}
    assert card["train_time_s"] == pytest.approx(sum(card["phase_time_s"].values()), abs=0.2)
    assert card["measures"]["held_out_prompts"] == 2 and 0 <= card["measures"]["background"] <= 1
    folder = tmp_path / "assets" / "sd-shapes"
    from safetensors.torch import load_file

    assert {t.dtype for t in load_file(folder / "unet" / "diffusion_pytorch_model.safetensors").values()} == {
        torch.float16}  # stored in fp16, loaded as float32
    assert StableDiffusionPipeline.from_pretrained(folder).unet.dtype == torch.float32
    assert "then 3 more steps of that model" in (folder / "README.md").read_text()
