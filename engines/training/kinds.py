"""The job kinds: kind → trainer module, and what the studio reads from a trainer module (its
config class, for forms and checks; its `run`; and, where it has one, its `check_dataset`)."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engines.training.run_dir import RunDir

# job kind → trainer module. The module exposes CONFIG_CLASS and run(config, run_dir); optionally
# check_dataset(dataset_path | None), which raises ValueError for data the trainer cannot use — the
# studio calls it before a job starts (a 422 instead of a failed job).
TRAINERS: dict[str, str] = {
    "selftest": "engines.selftest.train",
    "gan": "engines.gan.train",
    "text-lora": "engines.text.train",
    "text-feedback": "engines.text.feedback_train",
    "reward": "engines.text.reward_train",
    "image-lora": "engines.image.train",
    "image-scratch": "engines.image.scratch",
    "export": "engines.text.export",
    "image-export": "engines.image.export",
    "speech-finetune": "engines.speech.train",
}


@dataclass(frozen=True)
class TrainerSpec:
    kind: str
    module: str  # run as `accelerate launch -m <module> --run-dir DIR`
    config_cls: type
    run: Callable[[Any, RunDir], dict[str, Any]]
    check_dataset: Callable[[Path | None], None] | None = None

    @property
    def doc(self) -> str:
        return inspect.cleandoc(self.config_cls.__doc__ or "").split("\n\n")[0]


def trainer_spec(kind: str) -> TrainerSpec:
    """KeyError for an unknown kind; ImportError/AttributeError for a broken trainer module."""
    module_name = TRAINERS[kind]
    module = importlib.import_module(module_name)
    return TrainerSpec(kind=kind, module=module_name, config_cls=module.CONFIG_CLASS, run=module.run,
                       check_dataset=getattr(module, "check_dataset", None))
