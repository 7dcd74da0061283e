"""A text model served elsewhere, by any OpenAI-compatible server (vLLM, TGI, llama.cpp's server,
Ollama, another studio's `/v1`): the same `generate` / `chat_prompt` as `TextEngine`, so the studio
streams, stores and rates its outputs like a local model's. Spoken through the `openai` client.

What a remote model cannot do here: adapters (they attach to local weights), and log-probabilities
or perplexity (servers differ in what they report) — those are refused with the reason."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from engines.text.generate import (
    DEFAULT_CHAT_STOP,
    DEFAULT_CHAT_TEMPLATE,
    TextGenerationRequest,
    TextGenerationResult,
)


class RemoteError(RuntimeError):
    """The server could not be reached or refused the request; `status` is its HTTP status if any."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class RemoteServer:
    base_url: str  # the server's OpenAI API root, e.g. http://gpu-box:8000/v1
    model: str  # the model name the server knows
    api_key: str = ""  # sent as a bearer token when set


class RemoteTextEngine:
    timeout_s = 120.0

    def __init__(self, server: RemoteServer):
        from openai import OpenAI

        self.server = server
        self.client = OpenAI(base_url=server.base_url, api_key=server.api_key or "none", timeout=self.timeout_s,
                             max_retries=0)
        self.tokenizer = None  # nothing to tokenize with here: the server counts its own tokens
        self.adapters: dict[str, str] = {}
        self._lock = threading.Lock()

    def load(self) -> RemoteTextEngine:
        return self

    def size_bytes(self) -> int:
        return 0  # no weights in this process

    def add_adapter(self, name: str, folder) -> None:
        raise ValueError("adapters attach to local weights; a remote model takes none")

    def chat_prompt(self, messages: list[dict[str, str]], *, continue_final: bool = False) -> tuple[str, list[str]]:
        """The plain "User: … / Assistant:" transcript (any completions server continues it)."""
        from jinja2 import Template

        prompt = Template(DEFAULT_CHAT_TEMPLATE).render(messages=messages, add_generation_prompt=not continue_final)
        if continue_final and prompt.endswith("\n"):
            prompt = prompt[:-1]
        return prompt, list(DEFAULT_CHAT_STOP)

    def generate(self, request: TextGenerationRequest, *, adapter: str | None = None,
                 on_text: Callable[[list[str]], None] | None = None,
                 stop_event: threading.Event | None = None) -> TextGenerationResult:
        import openai

        if adapter is not None:
            raise ValueError("adapters attach to local weights; a remote model takes none")
        if request.logprobs is not None:
            raise ValueError("log-probabilities are reported for local models only")
        t0 = time.perf_counter()
        seed = request.seed if request.seed is not None else random.randrange(2**31)  # reported, to repeat it
        n = request.num_outputs
        texts, chunks, reasons = [""] * n, [0] * n, ["length"] * n
        extra = {}
        if request.top_k:
            extra["top_k"] = request.top_k
        if request.repetition_penalty != 1.0:
            extra["repetition_penalty"] = request.repetition_penalty
        stopped, prompt_tokens = False, 0
        try:
            stream = self.client.completions.create(
                model=self.server.model, prompt=request.prompt, max_tokens=request.max_new_tokens,
                temperature=request.temperature, top_p=request.top_p, n=n, seed=seed,
                stop=request.stop[:4] or None, stream=True, extra_body=extra or None,
                extra_headers=None if self.server.api_key else {"Authorization": openai.Omit()})  # no key: no header
            with stream:
                for chunk in stream:
                    for choice in chunk.choices:
                        i = choice.index if 0 <= choice.index < n else 0
                        texts[i] += choice.text or ""
                        chunks[i] += 1 if choice.text else 0
                        if choice.finish_reason:
                            reasons[i] = "length" if choice.finish_reason == "length" else "stop"
                    if getattr(chunk, "usage", None):
                        prompt_tokens = chunk.usage.prompt_tokens or 0
                    if on_text is not None:
                        on_text(list(texts))
                    if stop_event is not None and stop_event.is_set():
                        stopped = True
                        break
        except openai.APIStatusError as exc:
            raise RemoteError(f"{self.server.base_url} answered {exc.status_code}: {_message(exc)}",
                              exc.status_code) from exc
        except openai.APIError as exc:  # connection refused, timeout, a broken stream
            raise RemoteError(f"{self.server.base_url} could not be reached: {exc}") from exc
        for stop in request.stop[4:]:  # servers take at most four stop strings; the rest are cut here
            texts = [t.split(stop)[0] for t in texts]
        return TextGenerationResult(
            texts=texts, seed=seed, prompt_tokens=prompt_tokens,
            new_tokens=chunks, warnings=[], elapsed_s=time.perf_counter() - t0, stopped=stopped,
            finish_reasons=reasons)


def _message(exc) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
    return str(exc)[:300]
