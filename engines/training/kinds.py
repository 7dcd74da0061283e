"""The job kinds: kind → trainer module, and what the studio reads from a trainer module (its
config class, for forms and checks; its `run`)."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engines.training.run_dir import RunDir

# job kind → trainer module. The module exposes CONFIG_CLASS and run(config, run_dir).
TRAINERS: dict[str, str] = {
    "selftest": "engines.selftest.train",
    "gan": "engines.gan.train",
    "text-lora": "engines.text.train",
    "text-feedback": "engines.text.feedback_train",
    "reward": "engines.text.reward_train",
    "image-lora": "engines.image.train",
    "export": "engines.text.export",
}


@dataclass(frozen=True)
class TrainerSpec:
    kind: str
    module: str  # run as `accelerate launch -m <module> --run-dir DIR`
    config_cls: type
    run: Callable[[Any, RunDir], dict[str, Any]]

    @property
    def doc(self) -> str:
        return inspect.cleandoc(self.config_cls.__doc__ or "").split("\n\n")[0]


def trainer_spec(kind: str) -> TrainerSpec:
    """KeyError for an unknown kind; ImportError/AttributeError for a broken trainer module."""
    module_name = TRAINERS[kind]
    module = importlib.import_module(module_name)
    return TrainerSpec(kind=kind, module=module_name, config_cls=module.CONFIG_CLASS, run=module.run)
