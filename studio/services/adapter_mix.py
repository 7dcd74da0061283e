"""The form of a mix (POST /adapters/mix and the Models tab's mix form), checked before any work:
which adapters with which weights, peft's combination type and its knobs, and the text dataset
whose held-out rows score the result beside its parents.

`AdapterService.mix` uses it; what peft itself allows (types, ranks, density, sign methods) is
checked by `engines.text.adapters.resolve_mix`, so the rules live next to the call they guard."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from engines.text.adapters import DENSITY_TYPES, MIX_TYPES, SIGN_METHODS, SIGN_TYPES, MixOptions
from studio.services.errors import Invalid

__all__ = ["DENSITY_TYPES", "MIX_TYPES", "SIGN_METHODS", "SIGN_TYPES", "MixForm", "read_mix_form"]  # doors read the types here
MAX_MIX_SOURCES = 8
MAX_MIX_WEIGHT = 10.0


@dataclass(frozen=True)
class MixForm:
    ids: list[str]
    weights: list[float]
    options: MixOptions
    eval_dataset_id: str | None


def read_mix_form(
    sources: Any, weights: Any = None, *, combination_type: Any = "auto", density: Any = None,
    majority_sign_method: Any = None, eval_dataset_id: Any = None,
) -> MixForm:
    """Adapters as `[{id, weight?}, …]` or `[id, …]`, weights on each or as one `weights` list (not both)."""
    # 1. The adapters and their weights.
    if not isinstance(sources, list) or not 2 <= len(sources) <= MAX_MIX_SOURCES:
        raise Invalid(f"Mixing takes 2 to {MAX_MIX_SOURCES} adapters: [{{id, weight}}, …].")
    ids, own = [], []
    for item in sources:
        if isinstance(item, str):
            item = {"id": item}
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise Invalid("Each adapter to mix is {id, weight} (or just its id).")
        ids.append(item["id"])
        own.append(item.get("weight"))
    if weights is not None:
        if any(w is not None for w in own):
            raise Invalid("Give the weights either on each adapter or as `weights`, not both.")
        if not isinstance(weights, list) or len(weights) != len(ids):
            count = len(weights) if isinstance(weights, list) else "no list of"
            raise Invalid(f"weights: {count} numbers for {len(ids)} adapters; give one per adapter, in order.",
                          code="weights_mismatch")  # fmt: skip
        own = list(weights)
    checked = [_weight(adapter_id, 1.0 if w is None else w) for adapter_id, w in zip(ids, own, strict=True)]
    if len(set(ids)) != len(ids):
        raise Invalid("Each adapter can appear only once in a mix; change its weight instead.")

    # 2. The combination's knobs (their meaning is checked against peft once the ranks are known).
    if not isinstance(combination_type, str) or not combination_type:
        raise Invalid("combination_type is a name such as linear, cat, svd or ties.")
    if density is not None and (isinstance(density, bool) or not isinstance(density, int | float)
                                or not math.isfinite(density)):  # fmt: skip
        raise Invalid("density must be a number above 0 and at most 1.")
    if majority_sign_method is not None and not isinstance(majority_sign_method, str):
        raise Invalid("majority_sign_method is 'total' or 'frequency'.")
    if eval_dataset_id is not None and not isinstance(eval_dataset_id, str):
        raise Invalid("eval_dataset_id is the id of a text dataset (GET /datasets).")
    options = MixOptions(combination_type.strip().lower(), density, majority_sign_method)
    return MixForm(ids, checked, options, eval_dataset_id or None)


def _weight(adapter_id: str, weight: Any) -> float:
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not math.isfinite(weight):
        raise Invalid(f"The weight of '{adapter_id[:80]}' must be a number.")
    if weight == 0 or abs(weight) > MAX_MIX_WEIGHT:
        raise Invalid(f"The weight of '{adapter_id[:80]}' must be non-zero and within ±{MAX_MIX_WEIGHT:g}.")
    return float(weight)


def default_name(names: list[str], form: MixForm) -> str:
    """'0.7×A + 0.3×B', with the combination type when it was chosen."""
    joined = " + ".join(f"{w:g}×{n}" for n, w in zip(names, form.weights, strict=True))
    kind = form.options.combination_type
    return joined if kind == "auto" else f"{joined} ({kind})"


def one_base(rows: list[Any]) -> str:
    """The one base model of the adapter rows to mix (only text adapters of one base mix)."""
    for row in rows:
        if row["type"] != "text_adapter":
            raise Invalid(f"'{row['name']}' is a {row['type'].replace('_', ' ')}; only text adapters mix.")
    bases = sorted({r["base_model"] for r in rows})
    if len(bases) > 1:
        raise Invalid(f"Only adapters of one base model mix; these are of {', '.join(bases)}.",
                      code="base_model_mismatch")  # fmt: skip
    return bases[0]


def perplexity_by_id(scores: dict[str, Any], rows: list[Any], dataset_id: str | None) -> dict[str, Any]:
    """The engine lists the parents' perplexities in order; the answer keys them by adapter id."""
    return {"merged": scores["merged"], "parents": {r["id"]: p for r, p in zip(rows, scores["parents"], strict=True)},
            "dataset_id": dataset_id, "examples": scores["examples"], "tokens": scores["tokens"]}  # fmt: skip
