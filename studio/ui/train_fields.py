"""A job kind's parameter form, described from its trainer's config dataclass: one field per
dataclass field, its widget chosen by the type (whole number, number, slider, checkbox, choice,
text, list), its help text the field's `# comment`, its default the dataclass's; plus the presets
each kind offers. No Gradio here: `train_form` turns these into components, tests read them as is.
"""

from __future__ import annotations

import dataclasses
import json
import re
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal, Union

from engines.training.params import field_docs, resolve_params

# The fields a creator changes most; the rest go under "Advanced".
BASIC = ("method", "max_steps", "epochs", "vae_steps", "unet_steps", "learning_rate", "batch_size",
         "block_size", "resolution", "lora_rank", "save_every", "quantization", "precision", "sparsity",
         "adapter", "instance_prompt", "unet_size")
# Shares in [0, 1) shown as sliders: (minimum, maximum, step), within what the trainers accept.
SLIDERS = {"lora_dropout": (0.0, 0.95, 0.01), "eval_fraction": (0.0, 0.85, 0.05),
           "cfg_dropout": (0.0, 0.95, 0.01), "sparsity": (0.0, 0.95, 0.05), "beta1": (0.0, 0.99, 0.01),
           "truncation": (0.0, 1.0, 0.05)}
# Text fields whose trainer accepts only a few words (checked in its __post_init__, typed `str`).
CHOICES: dict[tuple[str, str], tuple[str, ...]] = {
    ("text-feedback", "method"): ("auto", "kto", "dpo"),
    ("export", "quantization"): ("none", "int8", "int4"),
    ("export", "precision"): ("fp32", "bf16", "fp16"),
    ("image-export", "precision"): ("fp16", "bf16", "fp32"),
    ("gan", "upsample"): ("resize", "transpose"),
    ("gan", "conditional"): ("auto", "on", "off"),
    ("gan", "lr_schedule"): ("constant", "linear"),
    ("gan", "conditioning"): ("classes", "words"),
    ("speech-finetune", "lr_scheduler"): ("constant", "linear", "cosine"),
}
PRESET_NAMES = ("quick", "balanced", "quality")
# quick: a first look in minutes; balanced: the trainer's own defaults; quality: longer, larger.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "selftest": {"quick": {"max_steps": 20, "save_every": 0},
                 "quality": {"max_steps": 200, "hidden_size": 64}},
    "gan": {"quick": {"max_steps": 300, "save_every": 100, "eval_every": 100},
            "quality": {"conditioning": "words", "max_steps": 8000, "save_every": 500, "eval_every": 500}},
    "text-lora": {"quick": {"max_steps": 60, "block_size": 128, "save_every": 20},
                  "quality": {"epochs": 5.0, "lora_rank": 16, "lora_alpha": 32.0, "lr_scheduler": "cosine",
                              "warmup_steps": 20}},
    "text-feedback": {"quick": {"max_steps": 30, "save_every": 10},
                      "quality": {"max_steps": 150, "lora_rank": 16, "lora_alpha": 32, "save_every": 50}},
    "reward": {"quick": {"max_steps": 60, "save_every": 20},
               "quality": {"max_steps": 300, "save_every": 100}},
    "image-lora": {"quick": {"max_steps": 200, "save_every": 50},
                   "quality": {"max_steps": 1500, "lora_rank": 16, "lora_alpha": 16.0, "lr_scheduler": "cosine",
                               "warmup_steps": 50, "save_every": 250}},
    "image-scratch": {"quick": {"vae_steps": 300, "unet_steps": 1000, "save_every": 250},
                      "quality": {"vae_steps": 2000, "unet_steps": 12000, "unet_size": "small",
                                  "save_every": 1000}},
    "image-export": {"quick": {"check_steps": 1, "check_size": 32},
                     "quality": {"check_steps": 8, "check_size": 128}},
    "speech-finetune": {"quick": {"max_steps": 120, "save_every": 40},
                        "quality": {"max_steps": 800, "save_every": 200, "lr_scheduler": "cosine"}},
    "export": {"quick": {"speed_reps": 1, "max_eval_examples": 16},
               "quality": {"speed_reps": 5, "max_eval_examples": 256}},
}


@dataclass(frozen=True)
class FormField:
    name: str
    widget: Literal["int", "float", "slider", "bool", "choice", "text", "list", "json"]
    default: Any
    doc: str = ""
    optional: bool = False  # None allowed: an empty box means the trainer's own choice
    choices: tuple[Any, ...] = ()
    bounds: tuple[float, float, float] | None = None  # slider (minimum, maximum, step)
    basic: bool = False

    @property
    def label(self) -> str:
        return self.name.replace("_", " ").capitalize()

    @property
    def info(self) -> str:
        doc = re.sub(r"\bNone\b", "empty", self.doc) if self.optional else self.doc
        return doc + (" One per line." if self.widget == "list" else "")

    @property
    def boxed_number(self) -> bool:
        """An optional number is a text box: a number box cannot be left empty (it shows 0)."""
        return self.optional and self.widget in ("int", "float")

    def to_widget(self, value: Any) -> Any:
        """The parameter's value as its widget holds it."""
        if (self.widget in ("text", "list", "json") or self.boxed_number) and value is None:
            return ""
        if self.boxed_number:
            return str(value)
        if self.widget == "list":
            return "\n".join(str(v) for v in value)
        if self.widget == "json":
            return json.dumps(value)
        return value

    def from_widget(self, value: Any) -> Any:
        """The widget's value as a parameter (an empty optional box: None, the trainer's choice)."""
        if self.boxed_number:
            text = str(value if value is not None else "").strip()
            if not text:
                return None
            try:
                return int(text) if self.widget == "int" else float(text)
            except ValueError:
                return text  # the config check names the field and what it must be
        if self.widget == "list":
            items = [line.strip() for line in str(value or "").splitlines() if line.strip()]
            return None if self.optional and not items else items
        if self.widget in ("text", "json"):
            text = str(value or "")
            if self.optional and not text.strip():
                return None
            if self.widget == "json":
                try:
                    return json.loads(text)
                except json.JSONDecodeError:
                    return text  # the config check names the field and what it must be
            return text
        if self.widget == "int" and isinstance(value, float) and value.is_integer():
            return int(value)
        return value


def form_fields(kind: str, config_cls: type) -> list[FormField]:
    """The form of a kind, in the dataclass's order."""
    hints = typing.get_type_hints(config_cls)
    docs = field_docs(config_cls)
    defaults = dataclasses.asdict(config_cls())
    out = []
    for f in dataclasses.fields(config_cls):
        if not f.init:
            continue
        tp, optional = _unwrap_optional(hints.get(f.name, Any))
        widget, choices = _widget(tp)
        if (kind, f.name) in CHOICES:
            widget, choices = "choice", CHOICES[(kind, f.name)]
        bounds = SLIDERS.get(f.name) if widget == "float" and not optional else None
        out.append(FormField(name=f.name, widget="slider" if bounds else widget, default=defaults[f.name],
                             doc=docs.get(f.name, ""), optional=optional, choices=choices, bounds=bounds,
                             basic=f.name in BASIC))
    return out


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    if typing.get_origin(tp) in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) < len(typing.get_args(tp)):
            return (args[0] if len(args) == 1 else Union[tuple(args)]), True  # noqa: UP007
    return tp, False


def _widget(tp: Any) -> tuple[str, tuple[Any, ...]]:
    if tp is bool:
        return "bool", ()
    if tp is int:
        return "int", ()
    if tp is float:
        return "float", ()
    if tp is str:
        return "text", ()
    if typing.get_origin(tp) is Literal:
        return "choice", typing.get_args(tp)
    if typing.get_origin(tp) is list and typing.get_args(tp) == (str,):
        return "list", ()
    return "json", ()


# -- a form's values ↔ a job's params ------------------------------------------------------------
def widget_values(fields: list[FormField], params: dict[str, Any]) -> list[Any]:
    """What each field's widget shows for `params` (a missing name: its default)."""
    return [f.to_widget(params.get(f.name, f.default)) for f in fields]


def form_params(fields: list[FormField], values: list[Any]) -> dict[str, Any]:
    """The params a form's widget values stand for (every field, as the JSON view shows them)."""
    return {f.name: f.from_widget(v) for f, v in zip(fields, values, strict=True)}


def defaults_of(fields: list[FormField]) -> dict[str, Any]:
    return {f.name: f.default for f in fields}


def preset_params(kind: str, fields: list[FormField], preset: str) -> dict[str, Any]:
    """The trainer's defaults with the preset's changes; unknown presets are the defaults."""
    return {**defaults_of(fields), **PRESETS.get(kind, {}).get(preset, {})}


def normalised(config_cls: type, params: dict[str, Any]) -> dict[str, Any]:
    """Every field's value after the trainer's checks (ValueError names what is wrong)."""
    return dataclasses.asdict(resolve_params(config_cls, params))


def parse_json(text: str | None) -> dict[str, Any]:
    """The JSON view's object; ValueError with a one-line message for anything else."""
    try:
        value = json.loads(text or "{}")
    except json.JSONDecodeError as exc:
        raise ValueError(f"The JSON is not valid: {exc.msg} (line {exc.lineno}, column {exc.colno}).") from None
    if not isinstance(value, dict):
        raise ValueError('The JSON must be an object of parameters, e.g. {"max_steps": 100}.')
    return value


def chosen_params(form: dict[str, Any], json_text: str | None, last_edit: str | None) -> dict[str, Any]:
    """What a start uses: the JSON view when it was edited last (its update of the form may not have
    come back before the click), else the form. ValueError when that JSON does not parse."""
    return parse_json(json_text) if last_edit == "json" else form
