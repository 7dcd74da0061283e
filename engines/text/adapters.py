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


# -- mixing, merging -----------------------------------------------------------------------------
def mix_adapters(
    base_location: str, sources: list[tuple[Path, float]], out_dir: Path, *, base_id: str
) -> dict[str, Any]:
    """Weighted mix of LoRA adapters of one base into a new adapter folder (PEFT format, alone).

    `linear` when every rank is equal and every weight positive (the new adapter keeps that rank);
    otherwise `cat`, which stacks the adapters (rank = sum of ranks) and is exact.
    """
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    if len(sources) < 2:
        raise AdapterError("Mixing needs at least two adapters.")
    base = AutoModelForCausalLM.from_pretrained(base_location, dtype=torch.float32)
    names = [f"a{i}" for i in range(len(sources))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = PeftModel.from_pretrained(base, str(sources[0][0]), adapter_name=names[0])
        for name, (folder, _) in zip(names[1:], sources[1:], strict=True):
            model.load_adapter(str(folder), adapter_name=name)
    weights = [float(w) for _, w in sources]
    ranks = {model.peft_config[n].r for n in names}
    combination = "linear" if len(ranks) == 1 and all(w > 0 for w in weights) else "cat"
    try:
        model.add_weighted_adapter(names, weights, _MIX_NAME, combination_type=combination)
    except (ValueError, TypeError) as exc:
        raise AdapterError(f"These adapters cannot be mixed: {exc}") from exc
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
    return {"combination_type": combination, "rank": int(model.peft_config[_MIX_NAME].r)}


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
def export_zip(folder: Path, zip_path: Path, *, root_name: str | None = None) -> Path:
    """Zip the regular files of a model or adapter folder (links are skipped), under `root_name/`."""
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
    os.replace(tmp, zip_path)
    return zip_path


def _replace_dir(src: Path, dst: Path) -> None:
    if dst.exists():
        shutil.rmtree(dst)
    os.replace(src, dst)
