"""Text generation with a causal LM and, optionally, PEFT adapters switched without reloading."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class TextGenerationRequest:
    prompt: str
    max_new_tokens: int = 64  # new tokens per output
    temperature: float = 0.8  # 0 → greedy
    top_p: float = 0.95
    top_k: int = 50
    repetition_penalty: float = 1.0
    num_outputs: int = 1  # variations, generated in one batched call
    seed: int | None = None  # same seed + same settings → same text
    stop: list[str] = field(default_factory=list)  # generation ends at the first of these


@dataclass
class TextGenerationResult:
    texts: list[str]
    seed: int
    prompt_tokens: int
    new_tokens: list[int]  # per output
    warnings: list[str]
    elapsed_s: float
    stopped: bool = False  # ended early by a stop request


class _Controls:
    """StoppingCriteria + streamer in one: watches a stop event and stop strings, streams text."""

    def __init__(
        self,
        tokenizer,
        batch: int,
        stop_strings: list[str],
        stop_event: threading.Event | None,
        on_text: Callable[[list[str]], None] | None,
        prompt_len: int,
    ):
        self.tokenizer = tokenizer
        self.tokens: list[list[int]] = [[] for _ in range(batch)]
        self.stop_strings = [s for s in stop_strings if s]
        self.stop_event = stop_event
        self.on_text = on_text
        self.prompt_len = prompt_len
        self.done = [False] * batch
        self.stopped = False
        self._first = True

    # streamer protocol
    def put(self, value) -> None:
        if self._first:  # the prompt itself
            self._first = False
            return
        ids = value.reshape(len(self.tokens), -1).tolist()
        for i, new in enumerate(ids):
            self.tokens[i].extend(new)
        if self.on_text is not None:
            self.on_text(self.texts())

    def end(self) -> None:
        pass

    def texts(self) -> list[str]:
        return [self.tokenizer.decode(t, skip_special_tokens=True) for t in self.tokens]

    # stopping-criteria protocol
    def __call__(self, input_ids, scores, **kwargs):
        import torch

        if self.stop_event is not None and self.stop_event.is_set():
            self.stopped = True
            return torch.ones(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        if self.stop_strings:
            for i in range(input_ids.shape[0]):
                if not self.done[i]:
                    tail = self.tokenizer.decode(input_ids[i, self.prompt_len :], skip_special_tokens=True)
                    self.done[i] = any(s in tail for s in self.stop_strings)
        return torch.tensor(self.done, dtype=torch.bool, device=input_ids.device)


class TextEngine:
    """One base model + tokenizer, loaded once; adapters are attached to it by name."""

    def __init__(self, location: str | Path, device: str = "cpu", dtype: str = "float32"):
        self.location = str(location)
        self.device = device
        self.dtype = dtype
        self.model: Any = None  # PreTrainedModel, or PeftModel once an adapter is attached
        self.tokenizer: Any = None
        self.adapters: dict[str, str] = {}  # adapter name → folder
        self._lock = threading.Lock()  # one generation at a time per loaded model

    # -- loading --------------------------------------------------------------------------------
    def load(self) -> TextEngine:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if self.model is not None:
            return self
        self.tokenizer = AutoTokenizer.from_pretrained(self.location)
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tokenizer.padding_side = "left"  # batched generation continues from the right edge
        model = AutoModelForCausalLM.from_pretrained(
            self.location, dtype=getattr(torch, self.dtype), attn_implementation="sdpa"
        )
        self.model = model.to(self.device).eval()
        return self

    @property
    def context_length(self) -> int:
        cfg = self.base_model.config
        return int(getattr(cfg, "n_positions", None) or getattr(cfg, "max_position_embeddings", 1024))

    @property
    def base_model(self):
        return self.model.get_base_model() if self.adapters else self.model

    def add_adapter(self, name: str, folder: str | Path) -> None:
        """Attach a PEFT adapter (safetensors) to the loaded base model; no reload of the base."""
        from peft import PeftModel

        folder = str(folder)
        if self.adapters.get(name) == folder:
            return
        if not self.adapters:
            self.model = PeftModel.from_pretrained(self.model, folder, adapter_name=name, is_trainable=False)
        else:
            self.model.load_adapter(folder, adapter_name=name, is_trainable=False)
        self.model.eval()
        self.adapters[name] = folder

    def remove_adapter(self, name: str) -> None:
        if name in self.adapters:
            self.model.delete_adapter(name)
            del self.adapters[name]

    # -- generation -----------------------------------------------------------------------------
    def generate(
        self,
        request: TextGenerationRequest,
        *,
        adapter: str | None = None,
        on_text: Callable[[list[str]], None] | None = None,
        stop_event: threading.Event | None = None,
    ) -> TextGenerationResult:
        import torch

        # 1. Check inputs
        if request.num_outputs < 1:
            raise ValueError("num_outputs must be at least 1")
        if adapter is not None and adapter not in self.adapters:
            raise KeyError(f"adapter '{adapter}' is not attached")
        self.load()
        t0 = time.perf_counter()
        warnings: list[str] = []

        # 2. Tokenize; keep the end of an over-long prompt
        ctx = self.context_length
        max_new = min(request.max_new_tokens, ctx - 1)
        if max_new < request.max_new_tokens:
            warnings.append(f"max_new_tokens lowered to {max_new}: the model's context is {ctx} tokens.")
        ids = self.tokenizer(request.prompt, return_tensors="pt").input_ids[0]
        budget = ctx - max_new
        if ids.numel() > budget:
            warnings.append(
                f"The prompt has {ids.numel()} tokens; the model sees {ctx} at most, so only its last "
                f"{budget} tokens were used."
            )
            ids = ids[-budget:]
        if ids.numel() == 0:  # an empty prompt starts from the beginning-of-text token
            ids = torch.tensor([self.tokenizer.bos_token_id or self.tokenizer.eos_token_id])
        n = request.num_outputs
        input_ids = ids.unsqueeze(0).repeat(n, 1).to(self.device)  # (n, T)
        attention_mask = torch.ones_like(input_ids)

        # 3. Seed: an explicit seed reproduces; otherwise a fresh one is drawn and reported
        seed = request.seed if request.seed is not None else random.SystemRandom().randrange(2**31)
        do_sample = request.temperature > 0
        controls = _Controls(self.tokenizer, n, request.stop, stop_event, on_text, input_ids.shape[1])
        kwargs: dict[str, Any] = dict(
            max_new_tokens=max_new,
            do_sample=do_sample,
            repetition_penalty=request.repetition_penalty,
            pad_token_id=self.tokenizer.pad_token_id,
            streamer=controls,
            stopping_criteria=[controls],
        )
        if do_sample:
            kwargs.update(temperature=request.temperature, top_p=request.top_p, top_k=request.top_k)

        # 4. Generate, all variations in one batch
        with self._lock, torch.inference_mode():
            if self.adapters:
                if adapter is None:
                    ctx_mgr = self.model.disable_adapter()
                else:
                    self.model.set_adapter(adapter)
                    ctx_mgr = _nullcontext()
            else:
                ctx_mgr = _nullcontext()
            with ctx_mgr, torch.random.fork_rng(devices=[] if self.device == "cpu" else None):
                torch.manual_seed(seed)
                out = self.model.generate(input_ids=input_ids, attention_mask=attention_mask, **kwargs)

        # 5. Decode, cut at stop strings
        new = out[:, input_ids.shape[1] :]
        texts, counts = [], []
        for row in new:
            row = row[row != self.tokenizer.pad_token_id] if self.tokenizer.pad_token_id is not None else row
            text = self.tokenizer.decode(row, skip_special_tokens=True)
            for s in request.stop:
                if s and s in text:
                    text = text[: text.index(s)]
            texts.append(text)
            counts.append(int(row.numel()))
        return TextGenerationResult(
            texts=texts,
            seed=seed,
            prompt_tokens=int(ids.numel()),
            new_tokens=counts,
            warnings=warnings,
            elapsed_s=time.perf_counter() - t0,
            stopped=controls.stopped,
        )


class _nullcontext:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False
