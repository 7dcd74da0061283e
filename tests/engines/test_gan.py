"""DCGAN engine: the networks, the quality score, the demo data, generation and the `gan` trainer."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch
from torch import nn

from engines.gan.artifact import load_generator_from_checkpoint
from engines.gan.demo_data import SHAPES, demo_images, write_demo_folder
from engines.gan.generate import GanEngine, latent_for_seed, slerp
from engines.gan.model import GanConfig, build_models, load_generator
from engines.gan.quality import QualityScorer
from engines.gan.train import GanTrainConfig, run, write_artifact
from engines.shapes import COLOURS, is_held_out, parse_caption
from engines.training import JobConfig, RunDir, latest_checkpoint, resolve_params


@pytest.fixture
def one_thread(monkeypatch):
    """Two cores shared with other work: one intra-op thread avoids oversubscription stalls
    (the trainer keeps the thread count it finds when OMP_NUM_THREADS is set)."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def pixels(img) -> np.ndarray:
    return np.asarray(img.convert("RGB"))


def demo_tensor(n: int, seed: int, size: int = 32) -> torch.Tensor:
    arrays = [np.array(d.image.resize((size, size))) for d in demo_images(n, seed)]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)  # (n, 3, size, size) uint8


# -- the networks ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("resolution", "blocks"), [(32, 2), (64, 3), (128, 4)])
def test_networks_follow_the_paper_at_each_resolution(resolution, blocks):
    config = GanConfig(resolution=resolution, nz=16, ngf=8, ndf=8)
    generator, discriminator = build_models(config, seed=0)
    z = torch.randn(3, 16)
    images = generator(z)
    assert images.shape == (3, 3, resolution, resolution)
    assert images.min() >= -1 and images.max() <= 1  # Tanh out
    assert discriminator(images).shape == (3,)  # one logit per image

    g_layers = list(generator.main)
    assert sum(isinstance(m, nn.ConvTranspose2d) for m in g_layers) == blocks + 2
    assert sum(isinstance(m, nn.BatchNorm2d) for m in g_layers) == blocks + 1  # all but the output
    assert sum(isinstance(m, nn.ReLU) for m in g_layers) == blocks + 1 and isinstance(g_layers[-1], nn.Tanh)
    d_layers = list(discriminator.main)
    assert isinstance(d_layers[0], nn.Conv2d) and isinstance(d_layers[1], nn.LeakyReLU)  # no BN first
    assert all(m.negative_slope == 0.2 for m in d_layers if isinstance(m, nn.LeakyReLU))
    assert sum(isinstance(m, nn.BatchNorm2d) for m in d_layers) == blocks
    assert {m.stride for m in d_layers if isinstance(m, nn.Conv2d)} == {(2, 2), (1, 1)}


@pytest.mark.parametrize("resolution", [32, 64])
def test_depth_2_adds_a_3x3_convolution_at_every_resolution(resolution):
    one = build_models(GanConfig(resolution=resolution, nz=16, ngf=8, ndf=8, upsample="resize"), seed=0)
    two = build_models(GanConfig(resolution=resolution, nz=16, ngf=8, ndf=8, upsample="resize", depth=2), seed=0)
    sizes = {32: 3, 64: 4}[resolution]  # the sizes above 4 × 4 (8, 16, 32 and 64 px): one more at each

    def convs(net):
        return [m for m in net.main if isinstance(m, nn.Conv2d)]

    assert len(convs(two[0])) == len(convs(one[0])) + sizes  # at full size: a width-ngf layer, then the colours
    assert convs(two[0])[-1].kernel_size == (3, 3) and convs(two[0])[-1].out_channels == 3
    assert convs(two[1])[0].kernel_size == (3, 3) and convs(two[1])[0].stride == (1, 1)  # D: full size first
    assert len(convs(two[1])) == len(convs(one[1])) + sizes
    z = torch.randn(2, 16)
    images = two[0](z)
    assert images.shape == (2, 3, resolution, resolution) and two[1](images).shape == (2,)
    with pytest.raises(ValueError, match="depth"):
        GanConfig(depth=5)
    # a GAN saved before depth existed is rebuilt as it was trained: one convolution per resolution
    assert GanConfig.from_dict({"resolution": 32, "ngf": 8}).depth == 1


def test_weights_start_as_in_the_paper():
    generator, discriminator = build_models(GanConfig(resolution=64), seed=0)
    convs = [
        m.weight
        for net in (generator, discriminator)
        for m in net.modules()
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)
    ]
    flat = torch.cat([w.flatten() for w in convs])
    assert abs(flat.mean().item()) < 1e-3 and flat.std().item() == pytest.approx(0.02, rel=0.05)
    bns = [m for net in (generator, discriminator) for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    scale = torch.cat([m.weight.detach() for m in bns])
    assert scale.mean().item() == pytest.approx(1.0, abs=0.01) and scale.std().item() == pytest.approx(
        0.02, rel=0.2
    )
    assert all(torch.count_nonzero(m.bias) == 0 for m in bns)
    # seeded: the same seed, the same networks; the global RNG is left alone
    state = torch.get_rng_state()
    again, _ = build_models(GanConfig(resolution=64), seed=0)
    assert torch.equal(torch.get_rng_state(), state)
    assert all(
        torch.equal(a, b)
        for a, b in zip(generator.state_dict().values(), again.state_dict().values(), strict=True)
    )


def test_config_checks_and_the_small_cpu_default_at_32px():
    with pytest.raises(ValueError, match="resolution"):
        GanConfig(resolution=48)
    with pytest.raises(ValueError, match="resolution"):
        resolve_params(GanTrainConfig, {"resolution": 256})
    with pytest.raises(ValueError, match="Unknown augmentation"):
        resolve_params(GanTrainConfig, {"augment": ["flip", "blur"]})
    with pytest.raises(ValueError, match="Unknown parameter"):
        resolve_params(GanTrainConfig, {"lora_rank": 4})
    assert GanTrainConfig().model_config() == GanConfig(
        resolution=32, nz=100, ngf=32, ndf=32, upsample="resize", truncation=GanTrainConfig.truncation, depth=2
    )
    with pytest.raises(ValueError, match="depth"):
        resolve_params(GanTrainConfig, {"depth": 0})
    with pytest.raises(ValueError, match="upsample"):
        GanConfig(upsample="bilinear")
    resize = build_models(GanConfig(resolution=32, nz=8, ngf=8, ndf=8, upsample="resize"), seed=0)[0]
    assert resize(torch.randn(2, 8)).shape == (2, 3, 32, 32)
    assert not any(isinstance(m, nn.ConvTranspose2d) for m in list(resize.main)[3:])  # ↑2 by resize + conv
    paper = resolve_params(GanTrainConfig, {"resolution": 64}).model_config()
    assert (paper.ngf, paper.ndf, paper.nz) == (64, 64, 100)
    defaults = GanTrainConfig()
    assert (defaults.learning_rate, defaults.beta1, defaults.augment) == (2e-4, 0.5, ["flip"])
    assert defaults.r1_gamma > 0 and 0.99 <= defaults.ema_decay < 1  # stabilize.py: on by default
    with pytest.raises(ValueError, match="'ema_decay' must be in"):
        resolve_params(GanTrainConfig, {"ema_decay": 1.0})
    with pytest.raises(ValueError, match="must not be negative"):
        resolve_params(GanTrainConfig, {"r1_gamma": -1})
    assert 0 < defaults.translate <= 0.25
    with pytest.raises(ValueError, match="'translate' must be between 0 and 0.5"):
        resolve_params(GanTrainConfig, {"translate": 0.6})


def test_translation_moves_each_image_repeats_its_edges_and_is_seeded():
    from engines.gan.stabilize import translate

    images = demo_tensor(16, seed=0).float() / 127.5 - 1  # (16, 3, 32, 32): one shape on a plain background
    images.requires_grad_(True)

    def shifted(seed: int, shift: float = 0.125) -> torch.Tensor:
        return translate(images, shift, torch.Generator().manual_seed(seed))

    out = shifted(0)
    assert out.shape == images.shape and torch.equal(out, shifted(0)) and not torch.equal(out, shifted(1))
    assert not torch.equal(out, images) and torch.equal(translate(images, 0.0, torch.Generator()), images)
    moved = [i for i in range(16) if not torch.equal(out[i], images[i])]
    assert len(moved) >= 12  # each image its own offset (up to ±4 px at 32 px): most move
    # the background is repeated into the gap: a centred square's frame stays plain background
    square = torch.tensor([0.2, -0.6, 0.9])[None, :, None, None].repeat(8, 1, 32, 32)
    square[:, :, 12:20, 12:20] = -1.0
    moved_square = translate(square, 0.125, torch.Generator().manual_seed(0))
    frame = torch.cat([moved_square[:, :, :2].flatten(2), moved_square[:, :, -2:].flatten(2),
                       moved_square[..., :2].flatten(2), moved_square[..., -2:].flatten(2)], dim=2)
    assert torch.equal(frame, square[:, :, :1, :1].flatten(2).expand_as(frame))
    assert (moved_square == -1).all(dim=1).sum(dim=(1, 2)).eq(64).all()  # the whole square, elsewhere
    # a shift, not a blend: every pixel out is a pixel of the same image in
    for i in moved:
        pixels_in = set(map(tuple, images[i].detach().reshape(3, -1).T.tolist()))
        assert set(map(tuple, out[i].detach().reshape(3, -1).T.tolist())) <= pixels_in
    out.sum().backward()  # gradients reach the images (G learns through D's shifted view)
    assert images.grad is not None and images.grad.abs().sum() > 0


def test_r1_penalises_the_discriminators_slope_at_real_images_and_the_ema_follows_the_generator():
    from engines.gan.stabilize import discriminator_loss, ema_generator

    g, d = build_models(GanConfig(resolution=32, nz=8, ngf=8, ndf=8), seed=0)
    real, fake = demo_tensor(8, seed=0).float() / 127.5 - 1, torch.randn(8, 3, 32, 32).tanh()
    plain, *_ = discriminator_loss(d, real, fake, 0.0)
    with_r1, logits_real, _ = discriminator_loss(d, real, fake, 10.0)
    assert with_r1 > plain and not logits_real.requires_grad
    with_r1.backward()  # the penalty's own gradient reaches D's weights
    assert all(p.grad is not None for p in d.parameters())
    assert ema_generator(g, 0.0) is None
    ema = ema_generator(g, 0.999)
    ema.update_parameters(g)  # the first update copies
    with torch.no_grad():
        for p in g.parameters():
            p.add_(1.0)
    ema.update_parameters(g)  # the decay ramps up: step 2 moves the average by 1 − 2/11 of the change
    delta = next(ema.module.parameters()) - (next(g.parameters()) - 1.0)
    assert torch.allclose(delta, torch.full_like(delta, 9 / 11), atol=1e-5)


def test_the_generator_is_rebuilt_from_its_saved_config_alone(tmp_path):
    config = GanConfig(resolution=32, nz=12, ngf=8, ndf=8)
    generator, _ = build_models(config, seed=3)
    generator(torch.randn(16, 12))  # a train-mode pass moves the batch-norm statistics
    write_artifact(tmp_path, generator, config, {"name": "t"})
    assert json.loads((tmp_path / "config.json").read_text())["model"] == config.to_dict()
    rebuilt = load_generator(tmp_path)
    z = torch.randn(4, 12)
    with torch.no_grad():
        assert torch.equal(rebuilt(z), generator.eval()(z))


# -- quality and diversity -------------------------------------------------------------------------
def test_quality_score_is_near_zero_for_the_same_distribution_and_large_for_noise():
    # 400 a side: a 5 × 5 blur moves this KID by ~0.08, and at 200 a side its noise is about as large
    scorer = QualityScorer(demo_tensor(400, seed=0))
    same = scorer.score(demo_tensor(400, seed=1))
    noise = scorer.score(torch.rand(400, 3, 32, 32) * 2 - 1)
    blurred = scorer.score(
        torch.nn.functional.avg_pool2d(demo_tensor(400, seed=1).float() / 127.5 - 1, 5, 1, 2)
    )
    assert abs(same.quality) < 0.2 and abs(same.quality) < blurred.quality < noise.quality
    assert noise.quality > 50 * abs(same.quality)
    assert same.diversity == pytest.approx(1.0, abs=0.1) and not same.mode_collapse_warning
    # on shapes-world data the detector's clean share: the real images' kind is clean, noise and blur are not
    assert same.clean_share >= 0.95 and noise.clean_share == 0 and blurred.clean_share < 0.1
    assert QualityScorer(torch.rand(16, 3, 32, 32) * 2 - 1).score(demo_tensor(16, seed=1)).clean_share is None


def test_near_copies_raise_the_mode_collapse_warning():
    scorer = QualityScorer(demo_tensor(100, seed=0))
    one = demo_tensor(1, seed=5).float() / 127.5 - 1
    copies = one.repeat(100, 1, 1, 1) + 0.01 * torch.randn(100, 3, 32, 32)
    report = scorer.score(copies)
    assert report.mode_collapse_warning and report.diversity < 0.1 and "mode collapse" in report.message


# -- demo data -------------------------------------------------------------------------------------
def test_demo_images_are_seeded_shapes_on_plain_backgrounds(tmp_path):
    first = list(demo_images(40, seed=7))
    again = list(demo_images(40, seed=7))
    other = list(demo_images(40, seed=8))
    assert all(np.array_equal(pixels(a.image), pixels(b.image)) for a, b in zip(first, again, strict=True))
    assert not all(
        np.array_equal(pixels(a.image), pixels(b.image)) for a, b in zip(first, other, strict=True)
    )
    assert {d.image.size for d in first} == {(64, 64)} and {d.shape for d in first} == set(SHAPES)
    corner = pixels(first[0].image)[:3, :3].reshape(-1, 3)
    assert (corner.max(0) - corner.min(0)).max() <= 2  # a plain background
    # captions of the shapes world, training combinations only
    combos = [parse_caption(d.caption) for d in first]
    assert all(
        c is not None and not is_held_out(c) and c.shape == d.shape
        for c, d in zip(combos, first, strict=True)
    )
    assert tuple(int(v) for v in pixels(first[0].image)[0, 0]) == COLOURS[combos[0].background]

    files = write_demo_folder(tmp_path, n=5, seed=7)
    assert [f.name for f in files] == [f"demo-{i:06d}.png" for i in range(5)] + ["metadata.jsonl"]
    rows = [json.loads(line) for line in (tmp_path / "metadata.jsonl").read_text().splitlines()]
    assert rows[0] == {"file_name": "demo-000000.png", "text": first[0].caption}


# -- generation ------------------------------------------------------------------------------------
@pytest.fixture
def gan_folder(tmp_path):
    config = GanConfig(resolution=32, nz=16, ngf=8, ndf=8)
    generator, _ = build_models(config, seed=1)
    generator(torch.randn(32, 16))
    write_artifact(tmp_path / "gan", generator, config, {"name": "tiny"})
    return tmp_path / "gan"


def test_seeds_are_reproducible_image_by_image(gan_folder):
    engine = GanEngine(gan_folder).load()
    batch = engine.generate(num_outputs=4, seed=10)
    assert [i.seed for i in batch.images] == [10, 11, 12, 13]
    assert batch.images[0].image.size == (32, 32)
    alone = engine.generate(num_outputs=1, seed=12).images[0]
    assert np.array_equal(pixels(alone.image), pixels(batch.images[2].image))  # seed + i, on its own
    fresh = GanEngine(gan_folder).load().generate(num_outputs=4, seed=10)
    assert all(
        np.array_equal(pixels(a.image), pixels(b.image))
        for a, b in zip(batch.images, fresh.images, strict=True)
    )
    assert not np.array_equal(pixels(batch.images[0].image), pixels(batch.images[1].image))


def test_a_latent_walk_starts_and_ends_at_the_two_seeds_images(gan_folder):
    engine = GanEngine(gan_folder).load()
    walk = engine.walk(3, 99, frames=6)
    assert len(walk.frames) == 6 and walk.positions[0] == 0 and walk.positions[-1] == 1
    assert np.array_equal(pixels(walk.frames[0]), pixels(engine.generate(1, 3).images[0].image))
    assert np.array_equal(pixels(walk.frames[-1]), pixels(engine.generate(1, 99).images[0].image))
    assert not np.array_equal(pixels(walk.frames[2]), pixels(walk.frames[0]))

    a, b = latent_for_seed(3, 16), latent_for_seed(99, 16)
    assert torch.equal(slerp(0.0, a, b), a) and torch.equal(slerp(1.0, a, b), b)
    mid = slerp(0.5, a, b)  # on the great circle: the norm stays between the ends' (lerp would shrink it)
    assert min(a.norm(), b.norm()) * 0.99 <= mid.norm() <= max(a.norm(), b.norm()) * 1.01


# -- training --------------------------------------------------------------------------------------
def make_run(tmp_path, params: dict, *, n: int = 288, resume: bool = False, name: str = "run") -> RunDir:
    dataset = tmp_path / "demo"
    if not dataset.exists():
        write_demo_folder(dataset, n=n, seed=0)
    run_dir = RunDir(tmp_path / name)
    run_dir.write_job(
        JobConfig(
            job_id=f"job_{name}",
            kind="gan",
            params=params,
            dataset_path=str(dataset),
            output_dir=str(tmp_path / f"{name}-out"),
            device="cpu",
            resume=resume,
        )
    )
    return run_dir


@pytest.mark.slow
def test_a_short_run_on_the_demo_data_clearly_improves_the_quality_score(tmp_path, one_thread):
    params = {"max_steps": 120, "batch_size": 32, "save_every": 60, "eval_every": 30, "log_every": 10}
    run_dir = make_run(tmp_path, params)
    t0 = time.monotonic()
    result = run(resolve_params(GanTrainConfig, params), run_dir)
    elapsed = time.monotonic() - t0

    metrics = result["metrics"]
    assert metrics["quality"] < 0.7 * metrics["quality_start"], metrics
    assert metrics["images_per_s"] > 0 and elapsed < 300
    events = run_dir.events()
    assert events[0]["step"] == 1 and events[-1]["step"] == 120
    assert all({"loss", "loss_g", "loss_d", "d_x", "d_g_z"} <= set(e) for e in events)
    assert all(e["loss"] == e["loss_g"] and 0 <= e["d_x"] <= 1 and 0 <= e["d_g_z"] <= 1 for e in events)
    scored = [e for e in events if "quality" in e]
    assert [e["step"] for e in scored] == [1, 30, 60, 90, 120]  # step 0's score rides on step 1
    assert all(e["quality_start"] == metrics["quality_start"] for e in scored)
    samples = [s for e in events for s in e.get("samples", [])]
    assert samples == ["samples/step-0.png", "samples/step-60.png", "samples/step-120.png"]
    assert all((run_dir.path / s).is_file() for s in samples)

    artifact = result["artifact"]
    assert artifact["type"] == "gan" and artifact["base_model"] == "dcgan-32"
    out = tmp_path / "run-out"
    assert artifact["path"] == str(out) and {p.name for p in out.iterdir()} == {
        "generator.safetensors",
        "config.json",
    }
    info = json.loads((out / "config.json").read_text())
    assert info["metrics"]["quality"] == metrics["quality"] and info["model"]["resolution"] == 32
    step, path = latest_checkpoint(run_dir)
    assert step == 120
    z, labels = torch.randn(2, 100), torch.tensor([0, 1])  # the demo's captions repeat: a conditional GAN
    assert len(info["model"]["classes"]) > 100
    with torch.no_grad():  # the checkpoint and the artifact hold the same generator
        assert torch.equal(load_generator_from_checkpoint(path)(z, labels), load_generator(out)(z, labels))


def test_a_resumed_run_repeats_the_uninterrupted_one_exactly(tmp_path, one_thread):
    tiny = {
        "batch_size": 8,
        "ngf": 8,
        "ndf": 8,
        "nz": 16,
        "quality_samples": 16,
        "save_every": 3,
        "eval_every": 0,
        "log_every": 1,
        "lr_schedule": "constant",  # the 3-step half stands in for a kill; a linear rate would follow its own end
    }
    straight = make_run(tmp_path, {**tiny, "max_steps": 6}, n=24, name="straight")
    run(resolve_params(GanTrainConfig, {**tiny, "max_steps": 6}), straight)

    split = make_run(tmp_path, {**tiny, "max_steps": 3}, n=24, name="split")
    run(resolve_params(GanTrainConfig, {**tiny, "max_steps": 3}), split)
    resumed = make_run(tmp_path, {**tiny, "max_steps": 6}, name="split", resume=True)
    result = run(resolve_params(GanTrainConfig, {**tiny, "max_steps": 6}), resumed)

    assert [e["step"] for e in resumed.events()] == [1, 2, 3, 4, 5, 6]
    assert (
        result["metrics"]["quality_start"]
        == json.loads((tmp_path / "straight-out" / "config.json").read_text())["metrics"]["quality_start"]
    )
    from safetensors.torch import load_file

    a = load_file(str(tmp_path / "straight-out" / "generator.safetensors"))
    b = load_file(str(tmp_path / "split-out" / "generator.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_job_without_a_dataset_fails_with_a_clear_message(tmp_path):
    run_dir = RunDir(tmp_path / "run")
    run_dir.write_job(JobConfig(job_id="job_x", kind="gan", device="cpu"))
    with pytest.raises(ValueError, match="needs an image dataset"):
        run(GanTrainConfig(), run_dir)
