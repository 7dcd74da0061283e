"""The `image-scratch` trainer in-process (no studio): a tiny Stable Diffusion trained from scratch on
a handful of captioned shapes, the folder it leaves loaded by plain diffusers, an exact resume, and
the datasets it refuses before a job starts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from engines.gan.demo_data import write_demo_folder
from engines.image.scratch import ImageScratchConfig, check_dataset, run
from engines.image.scratch_data import check_dataset as dataset_rows
from engines.training import JobConfig, RunDir, latest_checkpoint, resolve_params

# 32 px, 3 VAE + 4 UNet steps: seconds on a busy 2-core machine, both phases and a boundary checkpoint
# (the VAE on 16-px crops)
TINY = {"resolution": 32, "vae_steps": 3, "unet_steps": 4, "batch_size": 4, "vae_batch_size": 4, "vae_crop": 16,
        "save_every": 2, "sample_seeds": 2, "sample_steps": 2}  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("scratch") / "ds"
    folder.mkdir()
    write_demo_folder(folder, n=8, seed=0)  # captioned shapes: "a red circle on a dark blue background" …
    (folder / "manifest.json").write_text(json.dumps({"name": "shapes", "kind": "image"}), encoding="utf-8")
    return folder


_jobs = iter(range(10**6))


def make_run(root: Path, dataset: Path, *, job_id: str | None = None, resume: bool = False,
             base: tuple[str, str] | None = None, **params):  # fmt: skip
    job_id = job_id or f"job{next(_jobs)}"
    run_dir = RunDir(root / "runs" / job_id)
    base_model, base_model_path = base or (None, None)
    job = JobConfig(job_id=job_id, kind="image-scratch", params=params, dataset_path=str(dataset), device="cpu",
                    resume=resume, output_dir=str(root / "models" / job_id), base_model=base_model,
                    base_model_path=base_model_path)  # fmt: skip
    run_dir.write_job(job)
    return run_dir, resolve_params(ImageScratchConfig, params)


class StopAfter:
    """A stop signal raised once the trainer has logged `step` events (as SIGTERM would be)."""

    def __init__(self, run_dir: RunDir, step: int):
        self.run_dir, self.step = run_dir, step

    @property
    def requested(self) -> bool:
        return len(self.run_dir.events()) >= self.step


@pytest.fixture(scope="module")
def trained(tmp_path_factory, dataset):
    run_dir, config = make_run(tmp_path_factory.mktemp("runs"), dataset, **TINY)
    return run_dir, run(config, run_dir)


def test_a_run_trains_the_vae_then_the_unet_with_samples_along_the_way(trained):
    run_dir, result = trained
    events = run_dir.events()
    assert [e["step"] for e in events] == list(range(1, 8))
    assert [e["phase"] for e in events] == ["vae"] * 3 + ["unet"] * 4
    assert all(e["total_steps"] == 7 and e["loss"] > 0 for e in events)
    vae_lr = [e["lr"] for e in events[:3]]  # the VAE's learning rate decays (cosine) over its phase
    assert vae_lr[0] == pytest.approx(1e-3) and vae_lr[0] > vae_lr[1] > vae_lr[2] > 0
    # a grid at every save point and at the end of the VAE phase
    assert {e["step"]: e["samples"] for e in events if "samples" in e} == {
        s: [f"samples/step-{s}.png"] for s in (2, 3, 4, 6, 7)
    }
    vae_grid = Image.open(run_dir.path / "samples" / "step-3.png")  # 8 originals over 8 reconstructions
    unet_grid = Image.open(run_dir.path / "samples" / "step-7.png")  # 4 prompts × 2 seeds, 2× scaled
    assert vae_grid.size == (2 * (8 * 34 + 2), 2 * (2 * 34 + 2))
    assert unet_grid.size == (2 * (2 * 34 + 2), 2 * (4 * 34 + 2))
    metrics = result["metrics"]
    assert metrics["scaling_factor"] > 0 and metrics["latent_size"] == 8
    assert result["artifact"]["type"] == "image_model"


def test_the_folder_loads_in_plain_diffusers_and_draws(trained):
    from diffusers import StableDiffusionPipeline

    _, result = trained
    folder = Path(result["artifact"]["path"])
    assert (folder / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    assert (folder / "README.md").is_file()
    pipe = StableDiffusionPipeline.from_pretrained(folder)
    assert pipe.vae.config.scaling_factor == pytest.approx(result["metrics"]["scaling_factor"])
    assert pipe.tokenizer.model_max_length == pipe.text_encoder.config.max_position_embeddings
    image = pipe("a red circle on a dark blue background", num_inference_steps=2, width=32, height=32,
                 generator=torch.Generator().manual_seed(0)).images[0]  # fmt: skip
    assert image.size == (32, 32)


def test_stopped_twice_then_resumed_it_ends_exactly_like_an_uninterrupted_run(tmp_path, dataset, trained):
    from safetensors.torch import load_file

    straight_dir, straight = trained
    run_dir, config = make_run(tmp_path, dataset, **TINY)
    run_dir.stop = StopAfter(run_dir, 2)  # in the VAE phase
    assert run(config, run_dir)["status"] == "cancelled"
    run_dir, config = make_run(tmp_path, dataset, job_id=run_dir.path.name, resume=True, **TINY)
    run_dir.stop = StopAfter(run_dir, 5)  # in the UNet phase
    assert run(config, run_dir)["status"] == "cancelled"
    assert latest_checkpoint(run_dir)[0] == 5
    run_dir, config = make_run(tmp_path, dataset, job_id=run_dir.path.name, resume=True, **TINY)
    resumed = run(config, run_dir)

    events = run_dir.events()
    assert [e["step"] for e in events] == list(range(1, 8))
    assert [e["loss"] for e in events] == [e["loss"] for e in straight_dir.events()]
    for part in ("unet/diffusion_pytorch_model", "vae/diffusion_pytorch_model", "text_encoder/model"):
        a = load_file(Path(straight["artifact"]["path"]) / f"{part}.safetensors")
        b = load_file(Path(resumed["artifact"]["path"]) / f"{part}.safetensors")
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), part


def test_a_base_model_lends_its_vae_and_the_run_trains_only_the_unet(tmp_path, dataset, trained):
    from safetensors.torch import load_file

    source = trained[1]["artifact"]["path"]
    run_dir, config = make_run(tmp_path, dataset, base=("ad_0123456789abcdef", source), **TINY)
    result = run(config, run_dir)
    assert [e["phase"] for e in run_dir.events()] == ["unet"] * 4
    assert result["artifact"]["base_model"] == "ad_0123456789abcdef"
    vae = "vae/diffusion_pytorch_model.safetensors"
    a, b = load_file(Path(source) / vae), load_file(Path(result["artifact"]["path"]) / vae)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert result["metrics"]["scaling_factor"] == pytest.approx(trained[1]["metrics"]["scaling_factor"])


def test_base_reuse_all_trains_the_base_model_further(tmp_path, dataset, trained):
    """With base_reuse "all" the run starts from the base model's UNet, text encoder and tokenizer (its
    first loss is the trained model's, not a fresh one's) and keeps its latent scale."""
    from diffusers import StableDiffusionPipeline

    source = trained[1]["artifact"]["path"]
    run_dir, config = make_run(tmp_path, dataset, base=("ad_0123456789abcdef", source),
                               **{**TINY, "base_reuse": "all", "learning_rate": 1e-9})  # fmt: skip
    result = run(config, run_dir)
    assert [e["phase"] for e in run_dir.events()] == ["unet"] * 4
    fresh, _ = make_run(tmp_path, dataset, base=("ad_0123456789abcdef", source), **TINY)  # a new UNet
    fresh.stop = StopAfter(fresh, 1)
    run(resolve_params(ImageScratchConfig, TINY), fresh)
    further = run_dir.events()[0]["loss"]
    assert further != fresh.events()[0]["loss"]
    a = StableDiffusionPipeline.from_pretrained(source)
    b = StableDiffusionPipeline.from_pretrained(result["artifact"]["path"])
    assert b.vae.config.scaling_factor == a.vae.config.scaling_factor
    assert b.tokenizer.get_vocab() == a.tokenizer.get_vocab()
    for name in ("unet", "text_encoder"):  # at a learning rate of 1e-9 the weights barely move
        wa, wb = getattr(a, name).state_dict(), getattr(b, name).state_dict()
        assert all(torch.allclose(wa[k], wb[k], atol=1e-5) for k in wa), name


def test_base_reuse_all_needs_the_base_models_latent_size(tmp_path, dataset, trained):
    source = trained[1]["artifact"]["path"]  # drew 8×8 latents at 32 px
    run_dir, config = make_run(tmp_path, dataset, base=("ad_0123456789abcdef", source),
                               **{**TINY, "base_reuse": "all", "resolution": 64, "vae_crop": 32})  # fmt: skip
    with pytest.raises(ValueError, match="set 'resolution' to match it"):
        run(config, run_dir)


def test_the_vae_learns_with_l1_unless_asked_for_mse(tmp_path, dataset, trained):
    run_dir, config = make_run(tmp_path, dataset, **{**TINY, "vae_reconstruction": "mse"})
    run_dir.stop = StopAfter(run_dir, 1)
    assert run(config, run_dir)["status"] == "cancelled"
    mse = run_dir.events()[0]["rec_loss"]
    l1 = trained[0].events()[0]["rec_loss"]  # the default; the same weights and batch at step 1
    assert config.vae_reconstruction == "mse" and ImageScratchConfig().vae_reconstruction == "l1"
    assert 0 < mse < l1 <= mse**0.5 + 1e-6  # mean |e| lies between mean e² and its square root


def test_by_default_the_unet_predicts_v_and_draws_from_pure_noise(trained):
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(trained[1]["artifact"]["path"])
    scheduler = pipe.scheduler.config
    assert (scheduler.prediction_type, scheduler.rescale_betas_zero_snr, scheduler.timestep_spacing) == (
        "v_prediction", True, "trailing")
    assert float(pipe.scheduler.alphas_cumprod[-1]) < 1e-6  # the last timestep keeps nothing of the image
    pipe.scheduler.set_timesteps(4)
    assert int(pipe.scheduler.timesteps[0]) == 999  # drawing starts from that timestep


def test_sd_1x_noise_prediction_when_asked(tmp_path, dataset, trained):
    from diffusers import StableDiffusionPipeline

    source = trained[1]["artifact"]["path"]  # its VAE, so that only the 4 UNet steps run
    params = {**TINY, "prediction_type": "epsilon", "zero_terminal_snr": False}
    run_dir, config = make_run(tmp_path, dataset, base=("ad_0123456789abcdef", source), **params)
    result = run(config, run_dir)
    losses = [e["loss"] for e in run_dir.events()]
    assert len(losses) == 4 and losses != [e["loss"] for e in trained[0].events()[3:]]  # the noise, not v
    pipe = StableDiffusionPipeline.from_pretrained(result["artifact"]["path"])
    scheduler = pipe.scheduler.config
    assert (scheduler.prediction_type, scheduler.rescale_betas_zero_snr, scheduler.timestep_spacing) == (
        "epsilon", False, "leading")
    assert float(pipe.scheduler.alphas_cumprod[-1]) ** 0.5 == pytest.approx(0.068, abs=0.001)  # SD 1.x's leak
    image = pipe("a red circle on a dark blue background", num_inference_steps=2, width=32, height=32,
                 generator=torch.Generator().manual_seed(0)).images[0]  # fmt: skip
    assert image.size == (32, 32)


def test_params_are_checked():
    with pytest.raises(ValueError, match="'resolution' must be 32 or 64"):
        resolve_params(ImageScratchConfig, {"resolution": 48})
    with pytest.raises(ValueError, match="'unet_size' must be one of"):
        resolve_params(ImageScratchConfig, {"unet_size": "huge"})
    with pytest.raises(ValueError, match="'vae_crop' must be 0 or a multiple of 4 from 16 to 64"):
        resolve_params(ImageScratchConfig, {"vae_crop": 30})
    with pytest.raises(ValueError, match="'vae_crop'"):
        resolve_params(ImageScratchConfig, {"vae_crop": 128})
    with pytest.raises(ValueError, match="cfg_dropout"):
        resolve_params(ImageScratchConfig, {"cfg_dropout": 1.0})
    with pytest.raises(ValueError, match="vae_reconstruction"):
        resolve_params(ImageScratchConfig, {"vae_reconstruction": "l2"})
    for share in (0, 1.5):
        with pytest.raises(ValueError, match="'vae_whole_share' must be above 0 and at most 1"):
            resolve_params(ImageScratchConfig, {"vae_whole_share": share})
    with pytest.raises(ValueError, match="prediction_type"):
        resolve_params(ImageScratchConfig, {"prediction_type": "sample"})
    with pytest.raises(ValueError, match="'base_reuse' must be one of 'vae', 'all'"):
        resolve_params(ImageScratchConfig, {"base_reuse": "unet"})
    with pytest.raises(ValueError, match="'zero_terminal_snr' needs 'prediction_type' 'v_prediction'"):
        resolve_params(ImageScratchConfig, {"prediction_type": "epsilon", "zero_terminal_snr": True})


def test_datasets_it_cannot_learn_from_are_refused_with_the_fix(tmp_path, dataset):
    check_dataset(dataset)  # the good one passes
    with pytest.raises(ValueError, match="needs a captioned image dataset"):
        check_dataset(None)
    text = tmp_path / "text"
    text.mkdir()
    (text / "manifest.json").write_text(json.dumps({"name": "poems", "kind": "text"}), encoding="utf-8")
    with pytest.raises(ValueError, match="'poems' is a text dataset"):
        check_dataset(text)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="has 0 image"):
        check_dataset(empty)
    uncaptioned = tmp_path / "uncaptioned"
    uncaptioned.mkdir()
    write_demo_folder(uncaptioned, n=3, seed=0)
    rows = [json.loads(line) for line in (uncaptioned / "metadata.jsonl").read_text().splitlines()]
    rows[1]["text"] = ""
    (uncaptioned / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with pytest.raises(ValueError, match="1 of 3 images .* have no caption"):
        check_dataset(uncaptioned)
    plain = tmp_path / "plain"  # a folder outside the studio: captions in a .txt beside each image
    plain.mkdir()
    for name in ("a", "b"):
        Image.new("RGB", (8, 8), "red").save(plain / f"{name}.png")
    (plain / "a.txt").write_text("a red square\n", encoding="utf-8")
    with pytest.raises(ValueError, match="1 of 2 images in 'plain' have no caption"):
        check_dataset(plain)
    (plain / "b.txt").write_text("a red circle", encoding="utf-8")
    check_dataset(plain)
    assert dataset_rows(plain) == [("a.png", "a red square"), ("b.png", "a red circle")]
