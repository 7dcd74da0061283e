"""Text generation with a causal LM and, optionally, PEFT adapters switched without reloading.

Chat: `chat_prompt(messages)` renders a conversation with the tokenizer's own chat template
(transformers' `apply_chat_template`); models without one (GPT-2, the starter) get
`DEFAULT_CHAT_TEMPLATE`, a plain "User: … / Assistant:" transcript, and generation stops where the
model would start the user's next line."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engines.text.token_probs import TextScore, TokenLogprob, generated_logprobs, score_text

# A Jinja chat template for models whose tokenizer has none: a plain transcript a base LM continues.
DEFAULT_CHAT_TEMPLATE = (
    "{% for m in messages %}"
    "{% if m['role'] == 'system' %}{{ m['content'] }}\n\n"
    "{% elif m['role'] == 'user' %}User: {{ m['content'] }}\n"
    "{% else %}Assistant: {{ m['content'] }}\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}"
)
DEFAULT_CHAT_STOP = ["\nUser:", "\nAssistant:"]  # the transcript's next turn: the reply ends there


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
    min_new_tokens: int = 0  # end-of-text is not sampled before this many tokens (benchmarks fix the length)
    logprobs: int | None = None  # report each new token's log-probability and this many alternatives


@dataclass
class TextGenerationResult:
    texts: list[str]
    seed: int
    prompt_tokens: int
    new_tokens: list[int]  # per output
    warnings: list[str]
    elapsed_s: float
    stopped: bool = False  # ended early by a stop request
    finish_reasons: list[str] = field(default_factory=list)  # per output: "stop" (end or stop string) | "length"
    logprobs: list[list[TokenLogprob]] | None = None  # per output, per new token (when asked)


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
        """What can be shown so far: each text cut at a stop string, without a tail that may still
        become one or a half-decoded character — always a prefix of the final text."""
        return [_streamable(self.tokenizer.decode(t, skip_special_tokens=True), self.stop_strings)
                for t in self.tokens]

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


def _streamable(text: str, stops: list[str]) -> str:
    for stop in stops:
        if stop in text:
            text = text[: text.index(stop)]
    for stop in stops:  # a tail that is the start of a stop string waits for the next token
        for k in range(min(len(stop) - 1, len(text)), 0, -1):
            if text.endswith(stop[:k]):
                text = text[:-k]
                break
    return text.rstrip("\ufffd")


class TextEngine:
    """One base model + tokenizer, loaded once; adapters are attached to it by name.

    `dtype` is a precision choice (`auto`, `fp32`, `bf16`, `fp16`, or a torch dtype name); `auto`
    resolves at load time, once the model's size is known (see engines/precision.py). After
    `load()`, `self.dtype` is the dtype the model runs in (e.g. "bfloat16") and `self.precision`
    the choice it came from."""

    def __init__(self, location: str | Path, device: str = "cpu", dtype: str = "float32"):
        self.location = str(location)
        self.device = device
        self.precision = dtype  # what was asked for
        self.dtype = dtype  # what runs: resolved by load()
        self.model: Any = None  # PreTrainedModel, or PeftModel once an adapter is attached
        self.tokenizer: Any = None
        self.adapters: dict[str, str] = {}  # adapter name → folder
        self.num_params = 0
        self.packed_layers = 0  # linear layers running on prepacked bf16 weights (CPU fast path)
        self.quality: Any = None  # int8 only: the load-time QualityCheck (perplexity fp32 vs int8)
        self.threads: int | None = None  # intra-op threads while generating (None: leave as is)
        self._lock = threading.Lock()  # one generation at a time per loaded model

    # -- loading --------------------------------------------------------------------------------
    def load(self) -> TextEngine:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from engines.precision import dtype_name, normalize, pack_linear_layers, resolve_precision
        from engines.registry import TINY_MODEL_PARAMS

        if self.model is not None:
            return self
        self.tokenizer = AutoTokenizer.from_pretrained(self.location)
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tokenizer.padding_side = "left"  # batched generation continues from the right edge
        # On a CPU `auto` depends on the model's size: load in fp32, count, then convert.
        size_matters = self.precision == "auto" and self.device == "cpu"
        wanted = None if size_matters else resolve_precision(self.precision, self.device)
        model = AutoModelForCausalLM.from_pretrained(
            self.location, dtype=wanted or torch.float32, attn_implementation="sdpa"
        )
        self.num_params = sum(p.numel() for p in model.parameters())
        dtype = wanted or resolve_precision("auto", self.device, num_params=self.num_params)
        model = model.to(device=self.device, dtype=dtype).eval()
        if self.device == "cpu":
            if dtype == torch.bfloat16:
                self.packed_layers = pack_linear_layers(model)
            if self.num_params < TINY_MODEL_PARAMS:
                self.threads = 1  # tiny matrices: a second thread costs more than it saves
        if normalize(self.precision) == "int8":
            self.quality = self._quantize_int8(model)
        self.dtype = dtype_name(dtype)
        self.model = model
        return self

    def _quantize_int8(self, model):
        """Weight-only int8, guarded: held-out perplexity within the bound of fp32's, else refuse."""
        from engines.quantize import Int8Refused, int8_available, int8_quality_check, restore_linear_layers

        why_not = int8_available(self.device)
        if why_not:
            raise Int8Refused(why_not)
        check = int8_quality_check(model, self.tokenizer)
        if not check.passed:
            restore_linear_layers(model)
            raise Int8Refused(check.reason())
        return check

    def size_bytes(self) -> int:
        """Memory the loaded model holds: weights + adapters + prepacked copies."""
        from engines.memory import module_bytes
        from engines.precision import packed_bytes
        from engines.quantize import int8_bytes

        if self.model is None:
            return 0
        return module_bytes(self.model) + packed_bytes(self.model) + int8_bytes(self.model)

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

    # -- chat ---------------------------------------------------------------------------------------
    def chat_prompt(self, messages: list[dict[str, str]], *, continue_final: bool = False) -> tuple[str, list[str]]:
        """(prompt, stop strings) for a conversation of {"role", "content"} messages.
        `continue_final`: the prompt ends inside the last (assistant) message, so generation extends it
        instead of starting a new turn."""
        self.load()
        turn = {"continue_final_message": True} if continue_final else {"add_generation_prompt": True}
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(messages, tokenize=False, **turn), []
        prompt = self.tokenizer.apply_chat_template(
            messages, chat_template=DEFAULT_CHAT_TEMPLATE, tokenize=False, **turn
        )
        return prompt, list(DEFAULT_CHAT_STOP)

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

        from engines.precision import cpu_threads

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
            min_new_tokens=min(request.min_new_tokens, max_new),
            do_sample=do_sample,
            repetition_penalty=request.repetition_penalty,
            pad_token_id=self.tokenizer.pad_token_id,
        )
        # The streamer and the stopping check run once per token: only hook them in when needed.
        if on_text is not None:
            kwargs["streamer"] = controls
        if stop_event is not None or controls.stop_strings:
            kwargs["stopping_criteria"] = [controls]
        if do_sample:
            kwargs.update(temperature=request.temperature, top_p=request.top_p, top_k=request.top_k)
        if request.logprobs is not None:  # the model's own distribution, before sampling settings
            kwargs.update(output_logits=True, return_dict_in_generate=True)

        # 4. Generate, all variations in one batch
        with self._lock, torch.inference_mode(), cpu_threads(self.threads):
            with self._adapter(adapter), torch.random.fork_rng(devices=[] if self.device == "cpu" else None):
                torch.manual_seed(seed)
                if n > 1 and input_ids.shape[1] > 1:  # variations share one prompt: read it once
                    kwargs["past_key_values"] = self._prompt_cache(input_ids[:1, :-1], n)
                out = self.model.generate(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        logits = None
        if request.logprobs is not None:
            out, logits = out.sequences, out.logits

        # 5. Decode, cut at stop strings
        new = out[:, input_ids.shape[1] :]
        texts, counts, reasons = [], [], []
        eos = self.tokenizer.eos_token_id
        for row in new:
            ended = eos is not None and bool((row == eos).any())
            row = row[row != self.tokenizer.pad_token_id] if self.tokenizer.pad_token_id is not None else row
            text = self.tokenizer.decode(row, skip_special_tokens=True)
            for s in request.stop:
                if s and s in text:
                    text = text[: text.index(s)]
                    ended = True
            texts.append(text)
            counts.append(int(row.numel()))
            reasons.append("stop" if ended or row.numel() < max_new else "length")
        return TextGenerationResult(
            texts=texts,
            seed=seed,
            prompt_tokens=int(ids.numel()),
            new_tokens=counts,
            warnings=warnings,
            elapsed_s=time.perf_counter() - t0,
            stopped=controls.stopped,
            finish_reasons=reasons,
            logprobs=None if logits is None else generated_logprobs(self.tokenizer, new, logits, counts,
                                                                  request.logprobs, texts),
        )

    def _adapter(self, adapter: str | None):
        """Run under `adapter` (None: the base model, with any attached adapter switched off)."""
        if self.adapters and adapter is None:
            return self.model.disable_adapter()
        if self.adapters:
            self.model.set_adapter(adapter)
        return _nullcontext()

    def score(self, text: str, *, adapter: str | None = None) -> TextScore:
        """Perplexity of `text` under the model (with `adapter`), read in blocks of its context."""
        import torch

        from engines.precision import cpu_threads

        if adapter is not None and adapter not in self.adapters:
            raise KeyError(f"adapter '{adapter}' is not attached")
        self.load()
        with self._lock, torch.inference_mode(), cpu_threads(self.threads), self._adapter(adapter):
            return score_text(self.model, self.tokenizer, text, block_size=self.context_length)

    def _prompt_cache(self, prefix, n: int):
        """The KV cache of `prefix` (1, T-1), computed once and repeated for n rows; generate then reads
        only the prompt's last token per row instead of the whole prompt n times. None → no sharing."""
        import torch
        from transformers import DynamicCache

        try:
            cache = DynamicCache(config=self.base_model.config)
            self.model(input_ids=prefix, attention_mask=torch.ones_like(prefix), past_key_values=cache, use_cache=True)
            cache.batch_repeat_interleave(n)  # (1, heads, T-1, d) → (n, heads, T-1, d) per layer
        except (TypeError, ValueError, AttributeError, NotImplementedError):  # a model whose cache can't be shared
            return None
        return cache


class _nullcontext:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False
