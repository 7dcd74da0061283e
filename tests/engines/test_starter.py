"""Tests for engines.starter: deterministic, offline, atomic tiny starter models."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from engines import starter
from engines.starter import (
    STARTER_IDS,
    STARTER_IMAGE,
    STARTER_SPEECH,
    STARTER_TEXT,
    build_starter,
    ensure_starter,
    is_built,
    starter_path,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
ALL_IDS = (STARTER_TEXT, STARTER_IMAGE, STARTER_SPEECH)


@pytest.fixture(scope="module")
def models_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models root with all three starters built once via ensure_starter."""
    root = tmp_path_factory.mktemp("models")
    for model_id in ALL_IDS:
        assert not is_built(model_id, root)
        assert ensure_starter(model_id, root) == starter_path(model_id, root)
        assert is_built(model_id, root)
    return root


@pytest.fixture(scope="module")
def rebuilt_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """All three starters built again in a separate Python process (catches per-process hash seeds)."""
    root = tmp_path_factory.mktemp("rebuilt")
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from engines.starter import STARTER_IDS, build_starter\n"
        "for mid in STARTER_IDS.values():\n"
        "    build_starter(mid, Path(sys.argv[1]) / mid.split('/')[1])\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    subprocess.run([sys.executable, "-c", code, str(root)], cwd=REPO_ROOT, env=env, check=True, timeout=300)
    return root


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_ids_and_paths(tmp_path: Path) -> None:
    assert STARTER_IDS == {"text": STARTER_TEXT, "image": STARTER_IMAGE, "speech": STARTER_SPEECH}
    assert STARTER_TEXT == "starter/gpt2-tiny"
    assert starter_path(STARTER_TEXT, tmp_path) == tmp_path / "starter" / "gpt2-tiny"
    assert starter_path(STARTER_IMAGE, tmp_path) == tmp_path / "starter" / "sd-tiny"
    assert starter_path(STARTER_SPEECH, tmp_path) == tmp_path / "starter" / "vits-tiny"


@pytest.mark.parametrize("bad", ["starter/nope", "gpt2", "", "starter/", "starter/gpt2-tiny/.."])
def test_unknown_id_raises(tmp_path: Path, bad: str) -> None:
    with pytest.raises((KeyError, ValueError)):
        starter_path(bad, tmp_path)
    with pytest.raises((KeyError, ValueError)):
        is_built(bad, tmp_path)
    with pytest.raises((KeyError, ValueError)):
        ensure_starter(bad, tmp_path)
    with pytest.raises((KeyError, ValueError)):
        build_starter(bad, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("model_id", ALL_IDS)
def test_marker_and_size(models_root: Path, model_id: str) -> None:
    folder = starter_path(model_id, models_root)
    meta = json.loads((folder / "starter.json").read_text())
    assert meta["id"] == model_id
    assert meta["aigc_studio_starter"] is True
    assert "random weights" in meta["description"]
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    assert size < 12 * 1024 * 1024
    assert not list(folder.rglob("*.bin")), "weights must be safetensors only"
    assert list(folder.rglob("*.safetensors"))


@pytest.mark.parametrize("model_id", ALL_IDS)
def test_deterministic_across_processes(models_root: Path, rebuilt_root: Path, model_id: str) -> None:
    from safetensors.torch import load_file

    a = starter_path(model_id, models_root)
    b = rebuilt_root / a.name
    assert _files(a) == _files(b)
    weights = [f for f in _files(a) if f.endswith(".safetensors")]
    assert weights
    for rel in weights:
        ta, tb = load_file(a / rel), load_file(b / rel)
        assert ta.keys() == tb.keys()
        for key in ta:
            assert torch.equal(ta[key], tb[key]), f"{rel}:{key} differs"
    for rel in _files(a):  # tokenizer files, configs and everything else: byte-identical
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), f"{rel} differs"


def test_build_leaves_global_rng_alone(tmp_path: Path) -> None:
    torch.manual_seed(42)
    state = torch.get_rng_state()
    build_starter(STARTER_SPEECH, tmp_path / "vits")
    assert torch.equal(torch.get_rng_state(), state)


def test_ensure_builds_once_and_reuses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real_build = starter.build_starter

    def counting_build(model_id: str, out_dir: Path) -> None:
        calls.append(model_id)
        real_build(model_id, out_dir)

    monkeypatch.setattr(starter, "build_starter", counting_build)
    assert not is_built(STARTER_SPEECH, tmp_path)
    folder = ensure_starter(STARTER_SPEECH, tmp_path)
    assert is_built(STARTER_SPEECH, tmp_path)
    mtime = (folder / "model.safetensors").stat().st_mtime_ns
    assert ensure_starter(STARTER_SPEECH, tmp_path) == folder
    assert (folder / "model.safetensors").stat().st_mtime_ns == mtime
    assert calls == [STARTER_SPEECH]
    leftovers = [p.name for p in folder.parent.iterdir() if p.name.startswith(".tmp-")]
    assert leftovers == []


def test_interrupted_build_is_not_accepted(tmp_path: Path) -> None:
    parent = tmp_path / "starter"
    # A crash mid-build leaves a temp folder, possibly with everything but the marker.
    stale = parent / ".tmp-vits-tiny-crashed"
    build_starter(STARTER_SPEECH, stale)
    (stale / "starter.json").unlink()
    # A half-copied final folder without marker, and one with marker but missing weights.
    final = starter_path(STARTER_SPEECH, tmp_path)
    final.mkdir(parents=True)
    (final / "config.json").write_text("{}")
    assert not is_built(STARTER_SPEECH, tmp_path)
    (final / "starter.json").write_text(json.dumps({"id": STARTER_SPEECH, "aigc_studio_starter": True}))
    assert not is_built(STARTER_SPEECH, tmp_path)

    folder = ensure_starter(STARTER_SPEECH, tmp_path)
    assert folder == final
    assert is_built(STARTER_SPEECH, tmp_path)
    assert not stale.exists(), "crash leftovers are cleaned up"


def test_interrupted_builder_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_build(model_id: str, out_dir: Path) -> None:
        (out_dir / "config.json").write_text("{}")
        raise RuntimeError("boom")

    monkeypatch.setattr(starter, "build_starter", failing_build)
    with pytest.raises(RuntimeError):
        ensure_starter(STARTER_SPEECH, tmp_path)
    assert not is_built(STARTER_SPEECH, tmp_path)
    assert not starter_path(STARTER_SPEECH, tmp_path).exists()
    assert [p.name for p in (tmp_path / "starter").iterdir() if not p.name.endswith(".lock")] == []


def test_concurrent_ensure_builds_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real_build = starter.build_starter

    def counting_build(model_id: str, out_dir: Path) -> None:
        calls.append(model_id)
        real_build(model_id, out_dir)

    monkeypatch.setattr(starter, "build_starter", counting_build)
    results: list[Path] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            results.append(ensure_starter(STARTER_SPEECH, tmp_path))
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert results == [starter_path(STARTER_SPEECH, tmp_path)] * 3
    assert calls == [STARTER_SPEECH]
    assert is_built(STARTER_SPEECH, tmp_path)


def test_text_loads_and_generates(models_root: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer, GPT2LMHeadModel

    folder = starter_path(STARTER_TEXT, models_root)
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    assert isinstance(model, GPT2LMHeadModel)
    assert 512 <= len(tok) <= model.config.vocab_size
    assert tok.eos_token == tok.bos_token == tok.pad_token == "<|endoftext|>"
    assert tok.model_max_length == model.config.n_positions == 256
    text = "The little robot played music in the workshop."
    enc = tok(text, return_tensors="pt")
    assert tok.decode(enc.input_ids[0]) == text
    out = model.generate(**enc, max_new_tokens=5, do_sample=False, pad_token_id=tok.eos_token_id)
    assert out.shape[1] > enc.input_ids.shape[1]
    assert isinstance(tok.decode(out[0][enc.input_ids.shape[1] :]), str)


def test_image_loads_and_generates(models_root: Path) -> None:
    import numpy as np
    from diffusers import StableDiffusionPipeline
    from transformers import CLIPTokenizer

    folder = starter_path(STARTER_IMAGE, models_root)
    pipe = StableDiffusionPipeline.from_pretrained(folder)
    assert pipe.safety_checker is None and pipe.feature_extractor is None
    assert isinstance(pipe.tokenizer, CLIPTokenizer)
    assert pipe.tokenizer.model_max_length == 77
    ids = pipe.tokenizer(
        "A red square", padding="max_length", max_length=77, truncation=True, return_tensors="pt"
    ).input_ids
    assert ids.shape == (1, 77)
    assert pipe.tokenizer.convert_ids_to_tokens(ids[0, :4].tolist()) == [
        "<|startoftext|>",
        "a</w>",
        "red</w>",
        "square</w>",
    ]
    pipe.set_progress_bar_config(disable=True)

    def run() -> np.ndarray:
        image = pipe(
            "a red square",
            num_inference_steps=2,
            height=64,
            width=64,
            generator=torch.Generator().manual_seed(0),
        ).images[0]
        assert image.size == (64, 64)
        return np.asarray(image)

    first, second = run(), run()
    assert np.array_equal(first, second)


def test_speech_loads_and_speaks(models_root: Path) -> None:
    from transformers import AutoTokenizer, VitsModel, VitsTokenizer

    folder = starter_path(STARTER_SPEECH, models_root)
    tok = AutoTokenizer.from_pretrained(folder)
    assert isinstance(tok, VitsTokenizer)
    model = VitsModel.from_pretrained(folder)
    assert model.config.sampling_rate == 16000
    enc = tok("Hello, World!", return_tensors="pt")
    assert tok.decode(enc.input_ids[0]) == "hello, world!"
    with torch.no_grad():
        torch.manual_seed(7)
        first = model(**enc).waveform
        torch.manual_seed(7)
        second = model(**enc).waveform
    assert first.ndim == 2 and first.shape[0] == 1 and first.shape[1] > 0
    assert torch.equal(first, second)
    assert first.abs().max() < 1.0


def test_builds_of_different_starters_take_turns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two tabs opening at once build two starters: one at a time (torch's RNG and the first
    `import transformers` are process-wide), so both builds succeed and stay deterministic."""
    inside, overlaps = [0], []

    def slow_builder(out_dir: Path) -> None:
        inside[0] += 1
        overlaps.append(inside[0])
        threading.Event().wait(0.2)
        inside[0] -= 1

    monkeypatch.setitem(starter._BUILDERS, STARTER_SPEECH, slow_builder)
    monkeypatch.setitem(starter._BUILDERS, STARTER_TEXT, slow_builder)
    threads = [threading.Thread(target=build_starter, args=(m, tmp_path / m.replace("/", "-")))
               for m in (STARTER_SPEECH, STARTER_TEXT)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert overlaps == [1, 1]
