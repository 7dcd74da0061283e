"""Operations on PEFT text adapters: check an imported folder, mix adapters, zip, merge into the base.

An adapter folder is the standard PEFT layout — `adapter_config.json` + `adapter_model.safetensors`
(+ an optional `README.md` model card). Only safetensors are read: a pickled `adapter_model.bin`
could run code when loaded, so it is refused with a note on converting it.

Nothing here imports the studio: callers pass folders and model ids, and get `AdapterError`
(a ValueError with a message for the user) when an adapter does not fit.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import shutil
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"
CARD_FILE = "README.md"
ADAPTER_FILES = (CONFIG_FILE, WEIGHTS_FILE, CARD_FILE)
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
CONVERT_HINT = (
    "Convert it to safetensors first: load it with peft and save it again, e.g. "
    "`PeftModel.from_pretrained(base, folder).save_pretrained(out, safe_serialization=True)`."
)
_MIX_NAME = "mixed"


class AdapterError(ValueError):
    """An adapter folder that cannot be used; the message says why and what to do."""


@dataclass
class AdapterInfo:
    peft_type: str
    rank: int
    alpha: float
    target_modules: list[str]
    base_model_name: str | None  # as recorded in adapter_config.json
    num_tensors: int
    size_bytes: int
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "peft_type": self.peft_type, "rank": self.rank, "alpha": self.alpha,
            "target_modules": self.target_modules, "base_model_name": self.base_model_name,
            "num_tensors": self.num_tensors, "size_bytes": self.size_bytes,
        }  # fmt: skip


# -- checking ------------------------------------------------------------------------------------
def pickle_message(name: str) -> str:
    return f"'{name}' holds pickled weights, which the studio never loads (they can run code). {CONVERT_HINT}"


def check_adapter_folder(folder: Path, base_id: str, base_location: str) -> AdapterInfo:
    """Check that `folder` is a safetensors LoRA adapter that fits the base model, without loading
    the base's weights: the base is built on the meta device and the adapter's tensors are matched
    against it by name and shape (exactly what loading would check)."""
    import torch
    from accelerate import init_empty_weights
    from peft import PeftConfig, get_peft_model, set_peft_model_state_dict
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModelForCausalLM

    # 1. The files: safetensors weights and a config, never pickles.
    folder = Path(folder)
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        pickled = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES)
        if pickled:
            raise AdapterError(pickle_message(pickled[0]))
        raise AdapterError(
            f"The adapter has no {WEIGHTS_FILE}. A PEFT adapter folder holds {CONFIG_FILE} and {WEIGHTS_FILE}."
        )
    if not (folder / CONFIG_FILE).is_file():
        raise AdapterError(f"The adapter has no {CONFIG_FILE}; export it again with peft's save_pretrained.")
    try:
        raw = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AdapterError(f"{CONFIG_FILE} is not valid JSON ({exc}).") from exc
    if not isinstance(raw, dict):
        raise AdapterError(f"{CONFIG_FILE} must hold a JSON object.")
    if str(raw.get("peft_type", "")).upper() != "LORA":
        raise AdapterError(
            f"Only LoRA adapters are supported; this one is {raw.get('peft_type') or 'of no known type'}."
        )
    try:
        config = PeftConfig.from_pretrained(str(folder))
    except Exception as exc:  # peft raises TypeError/ValueError for unknown or bad fields
        raise AdapterError(f"{CONFIG_FILE} is not a valid LoRA config: {exc}") from exc
    try:
        tensors = load_file(str(weights), device="cpu")  # adapters are small; this also proves the bytes read
    except (SafetensorError, OSError, ValueError) as exc:
        raise AdapterError(f"{WEIGHTS_FILE} is not a readable safetensors file ({exc}).") from exc

    # 2. The recorded base model: a different model id is a mismatch; a local path is only a note.
    notes = []
    named = raw.get("base_model_name_or_path") or None
    if named and not _same_model(str(named), base_id, base_location):
        if _looks_like_id(str(named)):
            raise AdapterError(
                f"This adapter was trained on '{named}', not on '{base_id}'. Import it with that base model."
            )
        notes.append(f"The adapter names its base as '{named}'; it was checked against '{base_id}'.")

    # 3. Names and shapes against the base, built without weights.
    try:
        with warnings.catch_warnings(), init_empty_weights():
            warnings.simplefilter("ignore")
            base = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(base_location))
            model = get_peft_model(base, config)
    except ValueError as exc:  # e.g. "Target modules {...} not found in the base model"
        raise AdapterError(f"The adapter does not fit '{base_id}': {exc}") from exc
    try:
        result = set_peft_model_state_dict(model, tensors, low_cpu_mem_usage=True)
    except RuntimeError as exc:
        first = next(
            (line.strip() for line in str(exc).splitlines() if "size mismatch" in line), str(exc)[:300]
        )
        raise AdapterError(f"The adapter's weights do not fit '{base_id}': {first}") from exc
    missing = [k for k in result.missing_keys if "lora_" in k]
    if result.unexpected_keys or missing:
        bad = (result.unexpected_keys or missing)[0]
        raise AdapterError(
            f"The adapter's weights do not match '{base_id}' ({len(result.unexpected_keys)} unexpected, "
            f"{len(missing)} missing; e.g. '{bad}')."
        )
    del model, base
    targets = config.target_modules
    return AdapterInfo(
        peft_type="LORA",
        rank=int(config.r),
        alpha=float(config.lora_alpha),
        target_modules=sorted(targets) if isinstance(targets, set | list | tuple) else [str(targets)],
        base_model_name=named,
        num_tensors=len(tensors),
        size_bytes=sum(t.numel() * t.element_size() for t in tensors.values() if isinstance(t, torch.Tensor)),
        warnings=notes,
    )


def _same_model(named: str, base_id: str, base_location: str) -> bool:
    """'openai-community/gpt2' fits 'gpt2'; 'starter/gpt2-tiny' fits its folder '…/gpt2-tiny'."""
    if named in (base_id, base_location):
        return True
    tail = lambda s: re.split(r"[\\/]", s.rstrip("/\\"))[-1].lower()  # noqa: E731
    return tail(named) == tail(base_id) or tail(named) == tail(base_location)


def _looks_like_id(name: str) -> bool:
    """A hub-style id ('org/name' or 'name'), as opposed to a folder on someone's machine."""
    return bool(re.fullmatch(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?", name)) and not name.startswith(".")


# -- mixing --------------------------------------------------------------------------------------
# The combination types of peft 0.21's `LoraModel.add_weighted_adapter` (peft/tuners/lora/model.py).
MIX_TYPES = ("linear", "cat", "svd", "ties", "ties_svd", "dare_linear", "dare_ties", "dare_linear_svd",
             "dare_ties_svd", "magnitude_prune", "magnitude_prune_svd")  # fmt: skip
SAME_RANK_TYPES = ("linear", "ties", "dare_linear", "dare_ties", "magnitude_prune")  # peft refuses mixed ranks
DENSITY_TYPES = tuple(t for t in MIX_TYPES if t.startswith(("ties", "dare", "magnitude_prune")))
SIGN_TYPES = ("ties", "ties_svd", "dare_ties", "dare_ties_svd")  # they elect a sign per weight
SIGN_METHODS = ("total", "frequency")
RANDOM_TYPES = tuple(t for t in MIX_TYPES if t.startswith("dare"))  # drop weights at random


class MixOptionError(AdapterError):
    """A mix option that peft would refuse or misuse; `code` names what is wrong."""

    def __init__(self, message: str, code: str = "invalid_field"):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class MixOptions:
    """How adapters combine: one of peft's combination types and its knobs."""

    combination_type: str = "auto"  # auto: linear when ranks match and weights are positive, else cat
    density: float | None = None  # ties/dare/magnitude_prune: share of each adapter's weights kept, (0, 1]
    majority_sign_method: str | None = None  # ties types: "total" (peft's default) or "frequency"
    seed: int = 0  # dare types drop weights at random: a fixed seed makes a request give the same adapter

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"combination_type": self.combination_type}
        if self.density is not None:
            out["density"] = self.density
        if self.majority_sign_method is not None:
            out["majority_sign_method"] = self.majority_sign_method
        if self.combination_type in RANDOM_TYPES:
            out["seed"] = self.seed
        return out


def adapter_rank(folder: Path) -> int:
    """The largest rank in an adapter folder's config (what peft allocates for it when mixing)."""
    config = json.loads((Path(folder) / CONFIG_FILE).read_text(encoding="utf-8"))
    return max([int(config.get("r", 8)), *(int(r) for r in (config.get("rank_pattern") or {}).values())])


def resolve_mix(options: MixOptions, ranks: list[int], weights: list[float]) -> MixOptions:
    """`options` checked against peft's rules, with `auto` and the default sign method filled in.

    Raised before any weights load, so a refused mix costs nothing."""
    kind = options.combination_type
    if kind == "auto":
        kind = "linear" if len(set(ranks)) == 1 and all(w > 0 for w in weights) else "cat"
    if kind not in MIX_TYPES:
        raise MixOptionError(f"Unknown combination_type '{str(kind)[:40]}'. Choose one of: auto, "
                             f"{', '.join(MIX_TYPES)}.", "unknown_combination_type")  # fmt: skip
    if kind in SAME_RANK_TYPES and len(set(ranks)) > 1:
        raise MixOptionError(
            f"'{kind}' combines adapters of one rank; these have ranks {', '.join(map(str, ranks))}. "
            "Use cat (exact; the ranks add up) or svd, or ties_svd / dare_ties_svd / dare_linear_svd / "
            "magnitude_prune_svd, which take any ranks.", "rank_mismatch")  # fmt: skip
    density = options.density
    if density is not None and not (isinstance(density, int | float) and 0 < density <= 1):
        raise MixOptionError(f"density must be above 0 and at most 1 (the share of weights kept); got {density}.")
    if kind in DENSITY_TYPES and density is None:
        raise MixOptionError(f"'{kind}' prunes each adapter first: give density, the share of its weights "
                             "kept (0 < density ≤ 1), e.g. 0.5.")  # fmt: skip
    if kind not in DENSITY_TYPES and density is not None:
        raise MixOptionError(f"density is for {', '.join(DENSITY_TYPES)}; '{kind}' keeps every weight.")
    sign = options.majority_sign_method
    if sign is not None and kind not in SIGN_TYPES:
        raise MixOptionError(f"majority_sign_method is for {', '.join(SIGN_TYPES)}, not '{kind}'.")
    if sign is not None and sign not in SIGN_METHODS:
        raise MixOptionError(f"majority_sign_method is 'total' or 'frequency', not '{str(sign)[:40]}'.")
    if kind in SIGN_TYPES and sign is None:
        sign = "total"
    return MixOptions(kind, None if density is None else float(density), sign, options.seed)


def mix_adapters(
    base_location: str, sources: list[tuple[Path, float]], out_dir: Path, *, base_id: str,
    options: MixOptions | None = None, eval_dataset: Path | None = None,
) -> dict[str, Any]:
    """Weighted combination of LoRA adapters of one base into a new adapter folder (PEFT format, alone).

    With `eval_dataset` (a text dataset folder), the mix and each parent are scored on its held-out
    rows: `perplexity` = {"merged", "parents" (in the order of `sources`), "examples", "tokens"}."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    # 1. The options against peft's rules, before any weights load.
    if len(sources) < 2:
        raise AdapterError("Mixing needs at least two adapters.")
    weights = [float(w) for _, w in sources]
    options = resolve_mix(options or MixOptions(), [adapter_rank(f) for f, _ in sources], weights)

    # 2. The base (and the held-out text, cut to its context), every adapter under its own name.
    base = AutoModelForCausalLM.from_pretrained(base_location, dtype=torch.float32)
    tokenizer, examples = _eval_examples(base, base_location, eval_dataset) if eval_dataset else (None, [])
    names = [f"a{i}" for i in range(len(sources))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = PeftModel.from_pretrained(base, str(sources[0][0]), adapter_name=names[0])
        for name, (folder, _) in zip(names[1:], sources[1:], strict=True):
            model.load_adapter(str(folder), adapter_name=name)

    # 3. Combine; dare_* prune at random, so seeded without touching the caller's RNG.
    try:
        with warnings.catch_warnings(), torch.random.fork_rng(devices=[]):
            warnings.simplefilter("ignore")  # peft warns that density 1 prunes nothing
            torch.manual_seed(options.seed)
            model.add_weighted_adapter(
                names, weights, _MIX_NAME, combination_type=options.combination_type,
                density=options.density, majority_sign_method=options.majority_sign_method or "total",
            )  # fmt: skip
    except (ValueError, TypeError, RuntimeError) as exc:
        raise AdapterError(f"These adapters cannot be mixed: {exc}") from exc

    # 4. Held-out perplexity of the mix beside each parent's, on the same examples.
    scores = None
    if tokenizer is not None:
        scores = _perplexities(model, [*names, _MIX_NAME], examples, tokenizer.pad_token_id)

    # 5. Save the new adapter alone, under the base's model id.
    model.peft_config[_MIX_NAME].base_model_name_or_path = base_location  # where peft may look while saving
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(f".tmp-{out_dir.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp), selected_adapters=[_MIX_NAME], safe_serialization=True)
    saved = (
        tmp / _MIX_NAME if (tmp / _MIX_NAME / CONFIG_FILE).is_file() else tmp
    )  # peft nests non-default names
    record_base_model(saved, base_id)
    _replace_dir(saved, out_dir)
    shutil.rmtree(tmp, ignore_errors=True)
    result = {**options.to_dict(), "rank": int(model.peft_config[_MIX_NAME].r)}
    if scores is not None:
        result["perplexity"] = {"merged": scores["ppl"][-1], "parents": scores["ppl"][:-1],
                                "examples": len(examples), "tokens": scores["tokens"]}  # fmt: skip
    return result


def _eval_examples(base: Any, base_location: str, dataset: Path) -> tuple[Any, list]:
    """(tokenizer, examples): the rows a default `text-lora` job holds out of this dataset — so a
    parent trained on it is scored on text it never saw — tokenized the way that job scores them."""
    from transformers import AutoTokenizer

    from engines.text.train import TextLoraConfig, context_length
    from engines.text.train_data import build_examples, read_rows, split_rows

    defaults = TextLoraConfig()
    try:
        rows, fmt = read_rows(Path(dataset))
    except (OSError, ValueError) as exc:
        raise AdapterError(f"The evaluation dataset cannot be read: {exc}") from exc
    train_rows, held_rows = split_rows(rows, defaults.eval_fraction, defaults.seed)
    tokenizer = AutoTokenizer.from_pretrained(base_location)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    block = min(defaults.block_size, context_length(base))
    examples = build_examples(held_rows or train_rows, fmt, tokenizer, block)
    if not examples:
        raise AdapterError("The evaluation dataset gives no text to score (are its completions empty?).")
    return tokenizer, examples


def _perplexities(model: Any, names: list[str], examples: list, pad_id: int) -> dict[str, Any]:
    """Perplexity of each named adapter on the examples, with the text-lora trainer's scoring."""
    import torch

    from engines.text.train import evaluate, perplexity

    scores, tokens = [], 0
    for name in names:
        model.set_adapter(name)
        loss, tokens = evaluate(model, examples, pad_id, batch_size=8, device=torch.device("cpu"))
        scores.append(round(perplexity(loss), 4))
    return {"ppl": scores, "tokens": tokens}


# -- merging -------------------------------------------------------------------------------------
def merge_adapter(
    base_location: str, adapter_folder: Path, out_dir: Path, *, card: str | None = None,
    dtype: str = "fp32",
) -> Path:
    """The base with the adapter folded into its weights, saved as a full model (safetensors + tokenizer).

    `dtype` (fp32 | bf16 | fp16, see engines/precision.py) is the precision of the saved weights: the
    merge itself always runs in fp32, and the result is cast once at the end."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from engines.precision import DTYPE_NAMES, normalize

    choice = normalize(dtype)
    if choice == "auto":
        raise AdapterError("Pick the precision to export in: fp32, bf16 or fp16 (not auto).")
    base = AutoModelForCausalLM.from_pretrained(base_location, dtype=torch.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        merged = PeftModel.from_pretrained(base, str(adapter_folder)).merge_and_unload()
    merged = merged.to(getattr(torch, DTYPE_NAMES[choice]))  # config.json records the dtype too
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(f".tmp-{out_dir.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    merged.save_pretrained(str(tmp), safe_serialization=True)
    AutoTokenizer.from_pretrained(base_location).save_pretrained(str(tmp))
    if card:
        (tmp / CARD_FILE).write_text(card, encoding="utf-8")
    _replace_dir(tmp, out_dir)
    return out_dir


def record_base_model(folder: Path, base_id: str) -> None:
    """Write the base's model id (not this machine's folder) into a saved adapter's config.

    Done after saving: peft would otherwise try to read the base's config from that id."""
    path = Path(folder) / CONFIG_FILE
    config = json.loads(path.read_text(encoding="utf-8"))
    config["base_model_name_or_path"] = base_id
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


# -- zips ----------------------------------------------------------------------------------------
def export_zip(folder: Path, zip_path: Path, *, root_name: str | None = None,
               extra: dict[str, str] | None = None) -> Path:
    """Zip the regular files of a model or adapter folder (links are skipped), under `root_name/`,
    plus `extra` files (name → text) written beside them."""
    folder, zip_path = Path(folder), Path(zip_path)
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = zip_path.with_name(f".{zip_path.name}.tmp")
    with zipfile.ZipFile(tmp, "w") as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_symlink() or not path.is_file() or path.name.startswith(".tmp"):
                continue
            rel = path.relative_to(folder).as_posix()
            arcname = posixpath.join(root_name, rel) if root_name else rel
            # Weights barely compress; storing them keeps export fast.
            method = zipfile.ZIP_STORED if path.suffix == ".safetensors" else zipfile.ZIP_DEFLATED
            zf.write(path, arcname, compress_type=method)
        for name, text in (extra or {}).items():
            zf.writestr(posixpath.join(root_name, name) if root_name else name, text)
    os.replace(tmp, zip_path)
    return zip_path


def _replace_dir(src: Path, dst: Path) -> None:
    if dst.exists():
        shutil.rmtree(dst)
    os.replace(src, dst)
