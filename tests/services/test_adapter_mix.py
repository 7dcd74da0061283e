"""Mixing text adapters with peft's combination types, scored on a held-out text dataset: two tiny
adapters trained on the starter GPT-2 (a few steps each), merged with `ties` and `dare_linear`."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from engines.starter import STARTER_TEXT
from engines.text.train import run
from studio.config import StudioConfig
from studio.services import Studio
from studio.services.datasets import IncomingFile
from studio.services.errors import Invalid, NotFound
from tests.engines.test_text_train import make_run, pattern_lines, random_adapter
from tests.services.test_adapters import files_of, leftovers

OTHER_WORDS = ["moon", "river", "stone", "song", "lamp", "cloud"]


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("adapter-mix") / "data"
    studio = Studio(StudioConfig(data_dir=data_dir, offline=True, device="cpu"))
    studio.models.registry.location(studio.models.resolve(STARTER_TEXT, "text"))  # build the starter once
    yield studio
    studio.close()


def upload_text(studio, tmp_path, name: str, lines: list[str]) -> str:
    path = tmp_path / f"{name}.txt"
    path.write_text("\n\n".join(lines), encoding="utf-8")
    return studio.datasets.create([IncomingFile(f"{name}.txt", path)], "text", name)["id"]


def train_adapter(studio, dataset_id: str, name: str, seed: int) -> tuple[dict, dict]:
    """A rank-4 LoRA from a 30-step text-lora run (default held-out split), imported as a text adapter."""
    run_dir, config = make_run(studio.data_dir, dataset_id, method="lora", lora_rank=4, lora_alpha=8,
                               max_steps=30, save_every=0, batch_size=4, learning_rate=2e-2, seed=seed)  # fmt: skip
    result = run(config, run_dir)
    row = studio.adapters.import_adapter(files_of(Path(result["artifact"]["path"])), STARTER_TEXT, name)
    return row, result["metrics"]


@pytest.fixture(scope="module")
def trained(studio, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mix-data")
    foxes = upload_text(studio, tmp, "foxes", pattern_lines(120))
    songs = upload_text(studio, tmp, "songs", [
        f"a {OTHER_WORDS[i % 6]} sings to the {OTHER_WORDS[(i * 5) % 6]} at night {i}." for i in range(120)
    ])  # fmt: skip
    a, metrics_a = train_adapter(studio, foxes, "foxes-lora", seed=0)
    b, _ = train_adapter(studio, songs, "songs-lora", seed=1)
    return {"foxes": foxes, "songs": songs, "a": a, "b": b, "metrics_a": metrics_a}


def snapshot(studio) -> tuple[list, list, list]:
    """What a refused mix must leave as it was: the rows, the adapter folders, the work folders."""
    folders = sorted(p.name for p in (studio.data_dir / "models" / "adapters").iterdir())
    return [a["id"] for a in studio.adapters.list()], folders, leftovers(studio)


@pytest.mark.parametrize("kind, options", [
    ("ties", {"density": 0.5, "majority_sign_method": "total"}),
    ("dare_linear", {"density": 0.7}),
])  # fmt: skip
def test_ties_and_dare_merges_load_in_plain_peft_and_score_beside_their_parents(studio, trained, kind, options):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    a, b = trained["a"], trained["b"]
    mixed = studio.adapters.mix([{"id": a["id"], "weight": 0.6}, {"id": b["id"], "weight": 0.4}],
                                combination_type=kind, eval_dataset_id=trained["foxes"], **options)  # fmt: skip
    meta = mixed["meta"]
    assert meta["combination_type"] == kind and meta["density"] == options["density"] and meta["rank"] == 4
    assert mixed["name"] == f"0.6×foxes-lora + 0.4×songs-lora ({kind})"

    # (b) its held-out perplexity beside its parents', in the answer and in the row's meta
    scores = mixed["perplexity"]
    assert scores == meta["perplexity"] == studio.adapters.get(mixed["id"])["meta"]["perplexity"]
    assert scores["dataset_id"] == trained["foxes"] and set(scores["parents"]) == {a["id"], b["id"]}
    assert all(math.isfinite(p) and p > 1 for p in [scores["merged"], *scores["parents"].values()])
    assert scores["merged"] not in scores["parents"].values()
    # the same held-out rows and scoring as the text-lora job that trained the foxes adapter
    assert scores["parents"][a["id"]] == pytest.approx(trained["metrics_a"]["perplexity_after"], rel=1e-3)
    assert scores["parents"][a["id"]] < scores["parents"][b["id"]]  # foxes text: the foxes adapter knows it
    print(f"\n{kind} {options}: merged {scores['merged']:.3f}, foxes-lora {scores['parents'][a['id']]:.3f}, "
          f"songs-lora {scores['parents'][b['id']]:.3f} ({scores['tokens']} held-out tokens)")

    # (a) plain peft loads the folder and generates
    starter = studio.data_dir / "models" / "starter" / "gpt2-tiny"
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(starter),
                                      studio.data_dir / "models" / "adapters" / mixed["id"]).eval()  # fmt: skip
    tokenizer = AutoTokenizer.from_pretrained(starter)
    ids = tokenizer("the red fox", return_tensors="pt").input_ids
    with torch.no_grad():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=6, do_sample=False,
                             pad_token_id=tokenizer.eos_token_id)  # fmt: skip
    assert out.shape[1] > ids.shape[1] and tokenizer.decode(out[0, ids.shape[1]:]).strip()


def test_dare_is_seeded_so_the_same_request_gives_the_same_adapter(studio, trained):
    from safetensors.torch import load_file

    pair = [trained["a"]["id"], trained["b"]["id"]]
    one, two = (studio.adapters.mix(pair, weights=[1, 1], combination_type="dare_ties", density=0.5)
                for _ in range(2))  # fmt: skip
    assert one["meta"]["majority_sign_method"] == "total" and one["meta"]["seed"] == 0
    assert one["perplexity"] is None and "perplexity" not in one["meta"]  # no dataset, no score
    tensors = [load_file(studio.data_dir / "models" / "adapters" / m["id"] / "adapter_model.safetensors")
               for m in (one, two)]  # fmt: skip
    assert all(torch.equal(tensors[0][k], tensors[1][k]) for k in tensors[0])


def test_svd_and_cat_take_adapters_of_different_ranks(studio, trained, tmp_path):
    folder = random_adapter(studio.data_dir, tmp_path / "wide", rank=8, seed=3)
    wide = studio.adapters.import_adapter(files_of(folder), STARTER_TEXT, "wide")
    pair = [trained["a"]["id"], wide["id"]]
    svd = studio.adapters.mix(pair, combination_type="ties_svd", density=0.8)
    assert svd["meta"]["combination_type"] == "ties_svd" and svd["meta"]["rank"] == 8
    assert {"combination_type": "cat", "rank": 12}.items() <= studio.adapters.mix(pair)["meta"].items()  # auto
    with pytest.raises(Invalid) as err:
        studio.adapters.mix(pair, combination_type="linear")
    assert err.value.code == "rank_mismatch" and "ranks 4, 8" in err.value.message
    assert "cat" in err.value.message and "svd" in err.value.message


@pytest.mark.parametrize("options, code, words", [
    ({"combination_type": "average"}, "unknown_combination_type", "dare_ties_svd"),
    ({"combination_type": "ties"}, "invalid_field", "give density"),
    ({"combination_type": "ties", "density": 0}, "invalid_field", "above 0 and at most 1"),
    ({"combination_type": "dare_linear", "density": 1.5}, "invalid_field", "above 0 and at most 1"),
    ({"combination_type": "magnitude_prune", "density": float("nan")}, "invalid_field", "number"),
    ({"combination_type": "linear", "density": 0.5}, "invalid_field", "keeps every weight"),
    ({"combination_type": "dare_linear", "density": 0.5, "majority_sign_method": "total"}, "invalid_field",
     "not 'dare_linear'"),
    ({"combination_type": "ties", "density": 0.5, "majority_sign_method": "most"}, "invalid_field", "frequency"),
    ({"weights": [0.5, 0.3, 0.2]}, "weights_mismatch", "3 numbers for 2 adapters"),
    ({"eval_dataset_id": 7}, "invalid_field", "text dataset"),
])  # fmt: skip
def test_bad_mix_requests_are_422_and_write_nothing(studio, trained, options, code, words):
    before = snapshot(studio)
    with pytest.raises(Invalid) as err:
        studio.adapters.mix([trained["a"]["id"], trained["b"]["id"]], **options)
    assert err.value.status == 422 and err.value.code == code and words in err.value.message, err.value.message
    assert snapshot(studio) == before


def test_weights_given_twice_or_an_unknown_dataset_are_refused(studio, trained):
    a, b = trained["a"]["id"], trained["b"]["id"]
    before = snapshot(studio)
    with pytest.raises(Invalid, match="not both"):
        studio.adapters.mix([{"id": a, "weight": 1}, {"id": b}], weights=[1, 2])
    with pytest.raises(NotFound):
        studio.adapters.mix([a, b], eval_dataset_id="ds_0000000000000000")
    assert snapshot(studio) == before
