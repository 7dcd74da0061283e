"""The `text-lora` trainer and the adapter operations, in-process on the starter GPT-2 (no studio)."""

from __future__ import annotations

import json
import random
import zipfile
from pathlib import Path

import pytest
import torch

from engines.registry import ModelSpec
from engines.starter import STARTER_TEXT, ensure_starter
from engines.text.adapters import (
    AdapterError,
    check_adapter_folder,
    export_zip,
    merge_adapter,
    mix_adapters,
)
from engines.text.train import TextLoraConfig, resolve_method, run
from engines.text.train_data import micro_batch_indices, pack_documents, prompt_completion_example, split_rows
from engines.training import JobConfig, RunDir, latest_checkpoint, resolve_params

COLORS = ["red", "brown", "grey", "white", "black", "quick"]
ANIMALS = ["fox", "cat", "wolf", "hare", "owl", "bird"]


def pattern_lines(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [
        f"the {rng.choice(COLORS)} {rng.choice(ANIMALS)} jumps over the lazy dog number {rng.randrange(100)}."
        for _ in range(n)
    ]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """A data dir laid out like the studio's: models/starter/…, datasets/<id>/data.jsonl."""
    root = tmp_path_factory.mktemp("text-train") / "data"
    ensure_starter(STARTER_TEXT, root / "models")
    write_dataset(root, "ds_docs", [{"text": t} for t in pattern_lines(120)], "foxes")
    pairs = [{"prompt": f"Q: colour of fox {i}?\nA:", "completion": f" red {i % 7}"} for i in range(40)]
    write_dataset(root, "ds_pairs", pairs, "pairs")
    return root


def write_dataset(root: Path, ds_id: str, rows: list[dict], name: str) -> Path:
    folder = root / "datasets" / ds_id
    folder.mkdir(parents=True)
    (folder / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (folder / "manifest.json").write_text(json.dumps({"name": name}), encoding="utf-8")
    return folder


def base_folder(data_dir: Path) -> Path:
    return data_dir / "models" / "starter" / "gpt2-tiny"


_counter = iter(range(10**6))


def make_run(data_dir: Path, dataset: str = "ds_docs", *, job_id: str | None = None, resume: bool = False,
             **params) -> tuple[RunDir, TextLoraConfig]:  # fmt: skip
    job_id = job_id or f"job_{next(_counter):016x}"
    run_dir = RunDir(data_dir / "runs" / job_id)
    run_dir.write_job(
        JobConfig(
            job_id=job_id, kind="text-lora", params=params, base_model=STARTER_TEXT, dataset_id=dataset,
            dataset_path=str(data_dir / "datasets" / dataset), resume=resume,
            output_dir=str(data_dir / "models" / "trained" / job_id), models_root=str(data_dir / "models"),
            device="cpu", offline=True,
        )
    )  # fmt: skip
    return run_dir, resolve_params(TextLoraConfig, params)


class StopAfter:
    """A stop signal that is raised once the trainer has logged `step` events (as SIGTERM would)."""

    def __init__(self, run_dir: RunDir, step: int):
        self.run_dir, self.step = run_dir, step

    @property
    def requested(self) -> bool:
        return len(self.run_dir.events()) >= self.step


# -- data and params ---------------------------------------------------------------------------
def test_documents_are_packed_with_eos_and_prompts_carry_no_loss():
    blocks = pack_documents([[1, 2, 3], [4, 5], [6, 7, 8]], eos_id=0, block_size=4)
    assert [ids for ids, _ in blocks] == [[1, 2, 3, 0], [4, 5, 0, 6]]  # the ragged tail [7, 8, 0] is cut
    assert all(ids == labels for ids, labels in blocks)

    ids, labels = prompt_completion_example([10, 11, 12], [20, 21], eos_id=0, block_size=16)
    assert ids == [10, 11, 12, 20, 21, 0]
    assert labels == [-100, -100, -100, 20, 21, 0]
    assert prompt_completion_example([1] * 10, [2, 3], eos_id=0, block_size=8) is None  # no completion fits


def test_split_is_seeded_and_by_row_and_batches_depend_only_on_the_step():
    rows = list(range(50))
    train, held = split_rows(rows, 0.1, seed=3)
    assert len(held) == 5 and sorted(train + held) == rows
    assert split_rows(rows, 0.1, seed=3) == (train, held) and split_rows(rows, 0.1, seed=4) != (train, held)
    assert split_rows([7], 0.5, seed=0) == ([7], [])  # one row: nothing to hold out
    assert micro_batch_indices(20, 8, 0, 5) == micro_batch_indices(20, 8, 0, 5)
    epoch = [i for m in range(3) for i in micro_batch_indices(20, 8, 0, m)]
    assert sorted(epoch) == list(range(20))  # one epoch sees every example once


def test_method_defaults_to_full_on_starter_models_and_params_are_checked():
    starter = ModelSpec(STARTER_TEXT, "text", "starter", "")
    assert resolve_method("auto", starter) == "full"
    assert resolve_method(None, ModelSpec("openai-community/gpt2", "text", "hub", "openai-community/gpt2")) == "lora"
    assert resolve_method("lora", starter) == "lora"
    for bad in ({"eval_fraction": 1.0}, {"lora_rank": 0}, {"method": "qlora"}, {"block_size": 4}):
        with pytest.raises(ValueError):
            resolve_params(TextLoraConfig, bad)


# -- runs --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lora_run(data_dir):
    run_dir, config = make_run(data_dir, method="lora", max_steps=4, save_every=2, block_size=32,
                               batch_size=4, learning_rate=5e-3)  # fmt: skip
    return run_dir, run(config, run_dir)


def test_a_lora_run_saves_a_peft_adapter_that_plain_peft_loads(data_dir, lora_run):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    run_dir, result = lora_run
    artifact, metrics = result["artifact"], result["metrics"]
    assert artifact["type"] == "text_adapter" and artifact["base_model"] == STARTER_TEXT
    assert (
        metrics["method"] == "lora" and metrics["perplexity_before"] > 0 and metrics["perplexity_after"] > 0
    )
    folder = Path(artifact["path"])
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md",
        "adapter_config.json",
        "adapter_model.safetensors",
    ]
    assert json.loads((folder / "adapter_config.json").read_text())["base_model_name_or_path"] == STARTER_TEXT
    card = (folder / "README.md").read_text()
    assert STARTER_TEXT in card and "foxes" in card and "lora_rank" in card and "perplexity_after" in card

    base = AutoModelForCausalLM.from_pretrained(base_folder(data_dir))
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        plain = base(ids).logits
        model = PeftModel.from_pretrained(base, folder).eval()
        adapted = model(ids).logits
    assert not torch.allclose(plain, adapted)  # the adapter changes the output

    events = run_dir.events()
    assert [e["step"] for e in events] == [1, 2, 3, 4]
    assert all({"loss", "lr", "tokens_per_s", "total_steps"} <= set(e) for e in events)
    assert [e["step"] for e in events if "sample_text" in e] == [2, 4]
    assert all(e["sample_text"].startswith("the ") for e in events if "sample_text" in e)
    assert latest_checkpoint(run_dir)[0] == 4


def test_stop_then_resume_continues_exactly_like_an_uninterrupted_run(data_dir):
    params = dict(method="full", max_steps=6, save_every=0, block_size=32, batch_size=4, seed=1)
    straight_dir, config = make_run(data_dir, **params)
    straight = run(config, straight_dir)

    stopped_dir, config = make_run(data_dir, **params)
    stopped_dir.stop = StopAfter(stopped_dir, 3)
    assert run(config, stopped_dir)["status"] == "cancelled"
    assert latest_checkpoint(stopped_dir)[0] == 3  # saved where it stopped
    resumed_dir, config = make_run(data_dir, job_id=stopped_dir.path.name, resume=True, **params)
    resumed = run(config, resumed_dir)

    assert [e["step"] for e in resumed_dir.events()] == [1, 2, 3, 4, 5, 6]
    assert [e["loss"] for e in resumed_dir.events()] == [e["loss"] for e in straight_dir.events()]
    assert resumed["metrics"]["eval_loss"] == straight["metrics"]["eval_loss"]
    assert resumed["metrics"]["perplexity_before"] == straight["metrics"]["perplexity_before"]
    from safetensors.torch import load_file

    a = load_file(Path(straight["artifact"]["path"]) / "model.safetensors")
    b = load_file(Path(resumed["artifact"]["path"]) / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_prompt_completion_rows_train_on_the_completion(data_dir):
    run_dir, config = make_run(data_dir, "ds_pairs", method="lora", max_steps=2, save_every=0, batch_size=8)
    result = run(config, run_dir)
    assert result["metrics"]["eval_tokens"] > 0 and result["artifact"]["type"] == "text_adapter"
    assert run_dir.events()[-1]["sample_text"].startswith("Q: colour of fox")


# -- adapter operations ------------------------------------------------------------------------
def random_adapter(
    data_dir: Path, out: Path, *, rank: int = 4, seed: int = 0, n_embd: int | None = None
) -> Path:
    """A LoRA adapter with random (non-zero) weights, on the starter or on a differently shaped GPT-2."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    if n_embd is None:
        base = AutoModelForCausalLM.from_pretrained(base_folder(data_dir))
    else:
        base = GPT2LMHeadModel(
            GPT2Config(
                vocab_size=1024,
                n_positions=64,
                n_embd=n_embd,
                n_layer=2,
                n_head=2,
                bos_token_id=0,
                eos_token_id=0,
            )
        )
    lora = LoraConfig(r=rank, lora_alpha=rank, target_modules=["c_attn"], fan_in_fan_out=True,
                      init_lora_weights=False, task_type="CAUSAL_LM")  # fmt: skip
    get_peft_model(base, lora).save_pretrained(out, safe_serialization=True)
    config = json.loads((out / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = STARTER_TEXT
    (out / "adapter_config.json").write_text(json.dumps(config))
    return out


def test_check_accepts_a_fitting_adapter_and_refuses_pickles_and_other_bases(data_dir, tmp_path):
    base = str(base_folder(data_dir))
    good = random_adapter(data_dir, tmp_path / "good")
    info = check_adapter_folder(good, STARTER_TEXT, base)
    assert info.rank == 4 and info.target_modules == ["c_attn"] and info.num_tensors == 4

    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "adapter_config.json").write_text((good / "adapter_config.json").read_text())
    torch.save({"x": torch.zeros(1)}, pickled / "adapter_model.bin")
    with pytest.raises(AdapterError, match="safe_serialization=True"):
        check_adapter_folder(pickled, STARTER_TEXT, base)

    narrow = random_adapter(data_dir, tmp_path / "narrow", n_embd=32)  # same names, other shapes
    with pytest.raises(AdapterError, match="do not fit"):
        check_adapter_folder(narrow, STARTER_TEXT, base)
    config = json.loads((good / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = "meta-llama/Llama-3.2-1B"
    (good / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(AdapterError, match="Llama-3.2-1B"):
        check_adapter_folder(good, STARTER_TEXT, base)


def test_mix_merge_and_zip_give_loadable_results(data_dir, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = str(base_folder(data_dir))
    a = random_adapter(data_dir, tmp_path / "a", rank=4, seed=1)
    b = random_adapter(data_dir, tmp_path / "b", rank=4, seed=2)
    c = random_adapter(data_dir, tmp_path / "c", rank=8, seed=3)
    same = mix_adapters(base, [(a, 0.5), (b, 0.5)], tmp_path / "ab", base_id=STARTER_TEXT)
    mixed = mix_adapters(base, [(a, 1.0), (c, 0.5)], tmp_path / "ac", base_id=STARTER_TEXT)
    assert same == {"combination_type": "linear", "rank": 4}
    assert mixed == {"combination_type": "cat", "rank": 12}
    assert sorted(p.name for p in (tmp_path / "ac").iterdir()) == [
        "adapter_config.json",
        "adapter_model.safetensors",
    ]
    check_adapter_folder(tmp_path / "ac", STARTER_TEXT, base)

    # `cat` is exact: the mixed update is 1.0·ΔA + 0.5·ΔC.
    ids = torch.tensor([[3, 4, 5, 6, 7]])
    with torch.no_grad():
        plain = AutoModelForCausalLM.from_pretrained(base)(ids).logits
        logits = {
            name: PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), tmp_path / name)(
                ids
            ).logits
            for name in ("a", "c", "ac")
        }
    assert not torch.allclose(logits["ac"], plain)

    # Merging folds the adapter into the weights: same logits without peft.
    merge_adapter(base, a, tmp_path / "merged", card="# merged")
    with torch.no_grad():
        merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged")(ids).logits
    assert torch.allclose(merged, logits["a"], atol=1e-4)
    assert (tmp_path / "merged" / "tokenizer.json").is_file() and (
        tmp_path / "merged" / "README.md"
    ).is_file()

    zip_path = export_zip(tmp_path / "ab", tmp_path / "out" / "ab.zip", root_name="ab")
    assert sorted(zipfile.ZipFile(zip_path).namelist()) == [
        "ab/adapter_config.json",
        "ab/adapter_model.safetensors",
    ]
