"""The conditional DCGAN (captions as classes, a projection discriminator) and the truncation ψ:
the networks, which datasets condition, generation by class, and exact resume."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
import torch

from engines.gan.demo_data import write_demo_folder
from engines.gan.generate import GanEngine, latent_for_seed
from engines.gan.model import GanConfig, build_models, caption_words, load_generator, sample_inputs
from engines.gan.train import GanTrainConfig, run, write_artifact
from engines.gan.train_data import dataset_classes
from engines.training import JobConfig, RunDir, resolve_params

CLASSES = ["a red circle on a blue background", "a white square on a black background", "a green triangle"]


def pixels(img) -> np.ndarray:
    return np.asarray(img.convert("RGB"))


def test_a_class_is_its_words_at_their_places_or_a_one_hot():
    words = GanConfig(classes=CLASSES, conditioning="words")
    assert caption_words("A red circle") == ["0:a", "1:red", "2:circle"]
    assert len(words.features) == 12 and "2:triangle" in words.features  # shared words counted once
    m = words.class_matrix()
    red, white = m[0], m[1]
    assert m.shape == (3, 12) and m.sum(1).tolist() == [7, 7, 3]
    assert (red * white).sum() == 4  # "a … on a … background" shared; colours, shapes, backgrounds not
    one_hot = GanConfig(classes=CLASSES)  # the default
    assert one_hot.features == CLASSES and torch.equal(one_hot.class_matrix(), torch.eye(3))
    with pytest.raises(ValueError, match="conditioning"):
        GanConfig(conditioning="bag")


@pytest.mark.parametrize("conditioning", ["words", "classes"])
def test_the_class_reaches_both_networks(conditioning):
    config = GanConfig(resolution=32, nz=8, ngf=8, ndf=8, classes=CLASSES, conditioning=conditioning)
    g, d = build_models(config, seed=0)
    n = len(config.features)
    assert g.main[0].in_channels == 8 + n and d.embed.weight.shape == (8 * 4, n)
    assert "class_matrix" not in g.state_dict()  # rebuilt from the config, not saved
    z = torch.randn(4, 8)
    with torch.no_grad():
        g.eval()
        by_index = g(z, torch.tensor([0, 1, 2, 0]))
        by_weights = g(z, torch.eye(3)[[0, 1, 2, 0]])  # one-hot weights are the same classes
        assert torch.equal(by_index, by_weights)
        assert not torch.equal(g(z, torch.tensor([0, 0, 0, 0])), g(z, torch.tensor([1, 1, 1, 1])))
        images = by_index
        # the projection: D's logit for the same image depends on the class it is told
        assert not torch.equal(d(images, torch.tensor([0, 0, 0, 0])), d(images, torch.tensor([2, 2, 2, 2])))
    with pytest.raises(ValueError, match="conditional"):
        g(z)
    with pytest.raises(ValueError, match="conditional"):
        d(images)
    with pytest.raises(ValueError, match="distinct"):
        GanConfig(classes=["a", "a"])
    with pytest.raises(ValueError, match="truncation"):
        GanConfig(truncation=1.5)


def test_truncation_scales_the_latent_and_zero_gives_one_image_per_class():
    config = GanConfig(resolution=32, nz=8, ngf=8, ndf=8, classes=CLASSES, truncation=0.5)
    g, _ = build_models(config, seed=0)
    g.eval()
    z, y = torch.randn(2, 8), torch.tensor([1, 1])
    with torch.no_grad():
        assert torch.equal(g(z, y), g(z * 0.5, y, truncation=1.0))  # the config's ψ by default
        flat = g(z, y, truncation=0.0)
    assert torch.equal(flat[0], flat[1])  # ψ = 0: every latent is the mean


def test_which_datasets_condition(tmp_path):
    demo = tmp_path / "demo"
    write_demo_folder(demo, n=320, seed=0)  # dealt evenly: all 141 training captions, each 2 or 3 times
    classes, labels = dataset_classes(demo, "auto")
    rows = [json.loads(line) for line in (demo / "metadata.jsonl").read_text().splitlines()]
    assert len(classes) == 141 and len(labels) == 320
    assert set(Counter(labels.tolist()).values()) == {2, 3}
    assert [classes[i] for i in labels[:5]] == [r["text"] for r in rows[:5]]
    assert dataset_classes(demo, "off") == ([], None)

    few = tmp_path / "few"
    write_demo_folder(few, n=40, seed=0)  # nearly every caption once: descriptions, not classes
    assert dataset_classes(few, "auto") == ([], None)
    with pytest.raises(ValueError, match="images each on average"):
        dataset_classes(few, "on")
    (few / "metadata.jsonl").write_text("\n".join(
        json.dumps({"file_name": r["file_name"]}) for r in map(json.loads, (few / "metadata.jsonl").read_text().splitlines())
    ))  # fmt: skip
    with pytest.raises(ValueError, match="40 of its 40 images have no caption"):
        dataset_classes(few, "on")
    with pytest.raises(ValueError, match="'conditional'"):
        resolve_params(GanTrainConfig, {"conditional": "yes"})
    with pytest.raises(ValueError, match="'truncation'"):
        resolve_params(GanTrainConfig, {"truncation": -0.1})


@pytest.fixture
def conditional_folder(tmp_path):
    config = GanConfig(resolution=32, nz=16, ngf=8, ndf=8, classes=CLASSES, truncation=0.7)
    generator, _ = build_models(config, seed=1)
    generator(torch.randn(32, 16), torch.arange(32) % 3)  # move the batch-norm statistics
    write_artifact(tmp_path / "gan", generator, config, {"name": "tiny"})
    return tmp_path / "gan"


def test_each_seed_draws_its_class_and_a_label_picks_one(conditional_folder):
    engine = GanEngine(conditional_folder).load()
    drawn = engine.generate(num_outputs=12, seed=5)
    labels = [i.label for i in drawn.images]
    assert set(labels) <= set(CLASSES) and len(set(labels)) > 1
    for item in drawn.images:  # the seed alone decides the latent and the class
        z, y = sample_inputs(item.seed, engine.config)
        assert torch.equal(z, latent_for_seed(item.seed, 16)) and CLASSES[int(y)] == item.label
    alone = engine.generate(num_outputs=1, seed=9).images[0]
    assert np.array_equal(pixels(alone.image), pixels(drawn.images[4].image)) and alone.label == labels[4]

    asked = engine.generate(num_outputs=4, seed=5, label=CLASSES[1])
    assert [i.label for i in asked.images] == [CLASSES[1]] * 4
    same = [i for i in drawn.images[:4] if i.label == CLASSES[1]]
    for item in same:  # a seed whose own class is the one asked for gives the same image
        assert np.array_equal(pixels(item.image), pixels(asked.images[item.seed - 5].image))
    flat = engine.generate(num_outputs=3, seed=5, label=CLASSES[0], truncation=0.0)
    assert np.array_equal(pixels(flat.images[0].image), pixels(flat.images[2].image))
    with pytest.raises(ValueError, match="Unknown class 'a purple star'; this GAN knows 3"):
        engine.generate(label="a purple star")


def test_a_walk_blends_the_two_seeds_classes_and_ends_on_their_images(conditional_folder):
    engine = GanEngine(conditional_folder).load()
    walk = engine.walk(3, 99, frames=5)
    assert np.array_equal(pixels(walk.frames[0]), pixels(engine.generate(1, 3).images[0].image))
    assert np.array_equal(pixels(walk.frames[-1]), pixels(engine.generate(1, 99).images[0].image))
    kept = engine.walk(3, 99, frames=3, label=CLASSES[2])
    assert np.array_equal(pixels(kept.frames[0]), pixels(engine.generate(1, 3, label=CLASSES[2]).images[0].image))
    rebuilt = load_generator(conditional_folder)
    assert rebuilt.config.classes == CLASSES and rebuilt.config.truncation == 0.7


def _shapes_dataset(folder, n: int):
    """The demo shapes captioned by their shape alone: 3 classes that repeat."""
    write_demo_folder(folder, n=n, seed=0)
    rows = [json.loads(line) for line in (folder / "metadata.jsonl").read_text().splitlines()]
    for row in rows:
        row["text"] = next(s for s in ("circle", "square", "triangle") if s in row["text"])
    (folder / "metadata.jsonl").write_text("\n".join(json.dumps(r) for r in rows))


def make_run(tmp_path, params: dict, *, resume: bool = False, name: str = "run") -> RunDir:
    dataset = tmp_path / "shapes"
    if not dataset.exists():
        _shapes_dataset(dataset, 24)
    run_dir = RunDir(tmp_path / name)
    run_dir.write_job(JobConfig(job_id=f"job_{name}", kind="gan", params=params, dataset_path=str(dataset),
                                output_dir=str(tmp_path / f"{name}-out"), device="cpu", resume=resume))  # fmt: skip
    return run_dir


def test_a_conditional_run_resumes_exactly_and_its_artifact_knows_its_classes(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    tiny = {"batch_size": 8, "ngf": 8, "ndf": 8, "nz": 16, "quality_samples": 16, "save_every": 3,
            "eval_every": 0, "log_every": 1, "conditional": "on",
            "lr_schedule": "constant"}  # fmt: skip  (the 3-step half stands in for a kill)
    straight = make_run(tmp_path, {**tiny, "max_steps": 6}, name="straight")
    run(resolve_params(GanTrainConfig, {**tiny, "max_steps": 6}), straight)
    split = make_run(tmp_path, {**tiny, "max_steps": 3}, name="split")
    run(resolve_params(GanTrainConfig, {**tiny, "max_steps": 3}), split)
    resumed = make_run(tmp_path, {**tiny, "max_steps": 6}, name="split", resume=True)
    run(resolve_params(GanTrainConfig, {**tiny, "max_steps": 6}), resumed)

    from safetensors.torch import load_file

    a = load_file(str(tmp_path / "straight-out" / "generator.safetensors"))
    b = load_file(str(tmp_path / "split-out" / "generator.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    model = json.loads((tmp_path / "straight-out" / "config.json").read_text())["model"]
    assert model["classes"] == ["circle", "square", "triangle"] and model["truncation"] == GanTrainConfig.truncation == 0.3
    engine = GanEngine(tmp_path / "straight-out").load()
    assert {i.label for i in engine.generate(num_outputs=8, seed=0).images} <= {"circle", "square", "triangle"}


def test_the_linear_schedule_holds_the_rate_for_half_the_run_then_falls_to_zero():
    from engines.gan.train import learning_rate_at

    linear = GanTrainConfig(learning_rate=1e-3)  # the default
    assert linear.lr_schedule == "linear"
    rates = [learning_rate_at(linear, step, 100) for step in range(1, 101)]
    assert rates[:51] == [1e-3] * 51 and rates[75] == pytest.approx(0.5e-3, rel=0.05)
    assert rates[-1] == pytest.approx(2e-5) and all(a >= b for a, b in zip(rates[:-1], rates[1:], strict=True))
    constant = GanTrainConfig(learning_rate=1e-3, lr_schedule="constant")
    assert {learning_rate_at(constant, step, 100) for step in range(1, 101)} == {1e-3}
    with pytest.raises(ValueError, match="'lr_schedule'"):
        resolve_params(GanTrainConfig, {"lr_schedule": "cosine"})
