"""Text generation: resolve model + adapter, run the engine, store every output before returning."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from studio.services.auth import User
from studio.services.errors import Invalid, NotFound, StudioError
from studio.services.experiments import ExperimentService
from studio.services.limits import Admission
from studio.services.models import ModelService
from studio.services.outputs import OutputService
from studio.store import Store
from studio.store import adapters as adapter_rows

log = logging.getLogger(__name__)


class Version(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str | None = Field(None, max_length=300)
    adapter: str | None = Field(None, max_length=64)


class TextGenerateParams(BaseModel):
    """The form of POST /text/generate and of the Text tab."""

    model_config = ConfigDict(extra="forbid")
    prompt: str = Field(..., max_length=100_000)
    model: str | None = None
    adapter: str | None = None
    max_new_tokens: int = Field(64, ge=1, le=2048)
    temperature: float = Field(0.8, ge=0, le=5)
    top_p: float = Field(0.95, gt=0, le=1)
    top_k: int = Field(50, ge=0, le=1000)
    repetition_penalty: float = Field(1.0, ge=0.5, le=3)
    num_outputs: int = Field(1, ge=1, le=16)
    seed: int | None = Field(None, ge=0, le=2**32 - 1)
    stop: list[str] = Field(default_factory=list, max_length=8)
    logprobs: int | None = Field(None, ge=0, le=20, description="report each new token's log-probability "
                                 "and this many most likely alternatives, under the model's own distribution "
                                 "(before temperature, top-k, top-p and the repetition penalty), as each "
                                 "output's `tokens` (also named `logprobs`)")
    best_of: int | None = Field(None, ge=2, le=16, description="make this many candidates and answer them best "
                                "first, as judged by `reward_model` (each candidate is stored)")
    reward_model: str | None = Field(None, max_length=64, description="id of a trained reward model (GET /models "
                                     "→ reward_models)")
    ensemble: list[Version] | None = Field(None, max_length=4, description="best_of: candidates from these "
                                           "versions in turn (default: the request's own model/adapter)")


SCORE_MAX_TOKENS = 8192  # a longer text is refused: scoring reads it all in one request


class TextScoreParams(BaseModel):
    """The form of POST /text/perplexity and of the Text tab's "Score a text"."""

    model_config = ConfigDict(extra="forbid")
    text: str = Field(..., min_length=1, max_length=100_000, description="the text to score")
    model: str | None = Field(None, max_length=300)
    adapter: str | None = Field(None, max_length=64)


class ChatMessage(BaseModel):
    """One turn of a conversation (the OpenAI shape)."""

    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "user", "assistant"]
    content: str = Field(..., max_length=100_000)


class TextService:
    def __init__(self, models: ModelService, outputs: OutputService, store: Store, admission: Admission,
                 experiments: ExperimentService | None = None):
        self.models = models
        self.outputs = outputs
        self.store = store
        self.admission = admission
        self.experiments = experiments  # a running experiment serves requests that pin no version

    @staticmethod
    def sizes(params: TextGenerateParams) -> dict:
        """What admission weighs of a request (best-of-n makes n candidates)."""
        return {"max_new_tokens": params.max_new_tokens, "num_outputs": params.best_of or params.num_outputs}

    def check(self, params: TextGenerateParams, *, user: User) -> None:
        """The errors `generate` would raise for this form's size and versions, without loading anything."""
        self.admission.check(user, "text", self.sizes(params))
        self.resolve(params.model, params.adapter)

    def adapter_row(self, adapter_id: str):
        row = adapter_rows.get(self.store, adapter_id, "text_adapter")
        if row is None:
            known = adapter_rows.ids_of_type(self.store, "text_adapter")
            raise NotFound(f"No text adapter '{adapter_id}'. Available: {', '.join(known) or 'none yet'}.")
        return row

    def resolve(self, model: str | None, adapter: str | None):
        """(spec, adapter row or None) of a text version; 404/422 with the choices or the fix."""
        return self.models.resolve_version("text", model, adapter, self.adapter_row, "Adapter")

    def warm_default(self) -> None:
        """Load the default text model ahead of the first request when it is a shipped trained starter
        (small and on disk: the first answer then pays no import or load). Anything else loads on use."""
        try:
            spec, adapter = self.resolve(None, None)
            if spec.is_starter and not spec.is_random_starter and adapter is None:
                from engines.text import TextGenerationRequest

                # two tokens: the first run of each layer sets up its kernels, not the user's
                self.engine(spec).generate(TextGenerationRequest(prompt="Once", max_new_tokens=2, seed=0))
        except Exception:  # a warm-up never breaks the studio: the first request loads and reports
            log.debug("text warm-up skipped", exc_info=True)

    def is_loaded(self, model: str | None) -> bool:
        spec = self.models.resolve(model, "text")
        return self.models.memory.is_loaded(f"text:{spec.id}")

    @property
    def precision(self) -> str:
        """The precision setting for text models (auto | fp32 | bf16 | fp16 | int8)."""
        return self.models.precision_of("text")

    def engine(self, spec):
        if spec.source == "remote":
            return self.remote_engine(spec)
        from engines.text import TextEngine

        location = self.models.registry.location(spec)
        precision = self.precision

        def load():
            from engines.quantize import Int8Refused

            try:
                return TextEngine(location, device=self.models.device, dtype=precision).load()
            except Int8Refused as exc:  # the int8 quality guard or the device said no: tell the user why
                raise Invalid(f"Text precision int8 refused for {spec.id}: {exc}") from exc

        return self.models.loaded_in("text", f"text:{spec.id}", load, size_bytes=lambda e: e.size_bytes())

    def remote_engine(self, spec):
        """A `remote/<name>` model: a client of its server (nothing loads here, nothing to cache)."""
        import os

        from engines.text.remote import RemoteServer, RemoteTextEngine

        name = spec.id.removeprefix("remote/")
        key = os.environ.get("STUDIO_REMOTE_KEY_" + name.upper().replace("-", "_"), "")
        return RemoteTextEngine(RemoteServer(spec.location, spec.meta["served_as"], key))

    @staticmethod
    def refuse_remote(spec, *, adapter=None, logprobs=None, scoring: bool = False) -> None:
        """What a remote model cannot do here, refused before any work, with the reason."""
        if spec.source != "remote":
            return
        if adapter is not None:
            raise Invalid(f"adapter: {spec.id} is served elsewhere; adapters attach to local models only.")
        if logprobs is not None:
            raise Invalid(f"logprobs: {spec.id} is served elsewhere; token probabilities are reported for "
                          "local models only.")
        if scoring:
            raise Invalid(f"model: {spec.id} is served elsewhere; perplexity is scored with local models only.")

    def generate(self, params: TextGenerateParams, *, user: User, **options) -> dict:
        """Admitted (limits + a fair turn), then `generate_admitted` with the same options — or, with
        `best_of`, n candidates judged by a reward model."""
        if params.best_of:
            from studio.services.best_of import best_of_n

            judge = self.reward_engine(params.reward_model)  # a missing judge fails before any work
            with self.admission.admit(user, "text", self.sizes(params)):
                return best_of_n(self, judge, params, user=user, **options)
        with self.admission.admit(user, "text", self.sizes(params)):
            return self.generate_admitted(params, user=user, **options)

    def perplexity(self, params: TextScoreParams, *, user: User) -> dict:
        """How surprised the model (+ adapter) is by a text: its perplexity, through the same admission
        as generation. The model's own distribution, as `logprobs` reports it."""
        import time

        if not params.text.strip():
            raise Invalid("text: paste some text to score; it is empty.")
        spec, adapter_row = self.resolve(params.model, params.adapter)
        self.refuse_remote(spec, scoring=True)
        with self.admission.admit(user, "text", {"num_outputs": 1, "score_text": params.text}):
            self.admission.require()
            t0 = time.perf_counter()
            engine = self.engine(spec)
            tokens = len(engine.tokenizer(params.text, return_attention_mask=False)["input_ids"])
            if tokens > SCORE_MAX_TOKENS:
                raise Invalid(f"text: {tokens} tokens is too long to score; paste at most {SCORE_MAX_TOKENS} "
                              "tokens (a few pages).")
            if tokens < 2:
                raise Invalid("text: a text of one token has nothing to score; paste at least two words.")
            adapter_name = None
            if adapter_row is not None:
                adapter_name = adapter_row["id"]
                engine.add_adapter(adapter_name, self.models.config.data_dir / adapter_row["path"])
            score = engine.score(params.text, adapter=adapter_name)
        return {"perplexity": round(score.perplexity, 4), "tokens": score.tokens,
                "scored_tokens": score.scored_tokens, "mean_logprob": round(score.mean_logprob, 6),
                "model": spec.id, "adapter": adapter_name, "starter": spec.is_starter,
                "elapsed_s": round(time.perf_counter() - t0, 4)}

    @staticmethod
    def _run(engine, request, adapter_name, on_text, stop_event):
        from engines.text.remote import RemoteError

        try:
            return engine.generate(request, adapter=adapter_name, on_text=on_text, stop_event=stop_event)
        except RemoteError as exc:  # the remote server's failure, said as such (502: a bad gateway)
            raise StudioError(f"The remote text model's server failed: {exc}", code="remote_failed",
                              status=502) from exc

    def reward_engine(self, reward_model: str | None):
        """The loaded judge for best-of-n: a `reward_model` artifact."""
        from engines.text.reward import RewardEngine

        if not reward_model:
            raise Invalid("reward_model: best_of needs a reward model to judge the candidates (train one with a "
                          "`reward` job; GET /models → reward_models).")
        row = adapter_rows.get(self.store, reward_model, "reward_model")
        if row is None:
            raise NotFound(f"No reward model '{reward_model}'.", code="unknown_reward_model")
        folder = self.models.config.data_dir / row["path"]
        return self.models.memory.get(f"reward:{reward_model}",
                                      lambda: RewardEngine(folder, device=self.models.device).load(),
                                      size_bytes=lambda e: e.size_bytes())

    def chat(self, messages: list[ChatMessage], params: TextGenerateParams, *, user: User, **options) -> dict:
        """The next assistant turn: the conversation rendered with the model's chat template (a plain
        transcript for models without one); `params.prompt` is not used. Each reply is an output whose
        prompt is the rendered conversation. `continue_final=True` extends the last message, which must be
        the assistant's, instead of starting a new turn."""
        if not messages:
            raise Invalid("messages: give at least one message.")
        if options.get("continue_final") and messages[-1].role != "assistant":
            raise Invalid("messages: to continue a reply, the last message must be the assistant's.")
        return self.generate(params, user=user, messages=messages, **options)

    def generate_admitted(self, params: TextGenerateParams, *, user: User,
                          on_text: Callable[[list[str]], None] | None = None,
                          stop_event: threading.Event | None = None, output_params: dict | None = None,
                          messages: list[ChatMessage] | None = None, output_ids: list[str] | None = None,
                          continue_final: bool = False) -> dict:
        """For callers that already hold admission for this work (the arena admits a pair once).
        `output_ids`: ids to store the outputs under (a door that names them before they exist)."""
        from engines.text import TextGenerationRequest

        # 1. Model (+ adapter), loaded under admission; a running experiment picks it when none is pinned
        assignment = None
        if params.model is None and params.adapter is None and self.experiments is not None:
            assignment = self.experiments.assign("text", user.name)
            if assignment is not None:
                params = params.model_copy(update={"model": assignment.model, "adapter": assignment.adapter})
        spec, adapter_row = self.resolve(params.model, params.adapter)
        self.refuse_remote(spec, adapter=adapter_row, logprobs=params.logprobs)
        self.admission.require()
        engine = self.engine(spec)
        adapter_name = None
        if adapter_row is not None:
            adapter_name = adapter_row["id"]
            engine.add_adapter(adapter_name, self.models.config.data_dir / adapter_row["path"])

        # 2. The prompt: as given, or the conversation in the model's chat format
        prompt, stop = params.prompt, list(params.stop)
        stored_params = params.model_dump(exclude={"prompt", "model", "adapter", "seed"}) | (output_params or {})
        if messages is not None:
            prompt, template_stop = engine.chat_prompt([m.model_dump() for m in messages],
                                                       continue_final=continue_final)
            stop += template_stop
            stored_params["messages"] = [m.model_dump() for m in messages]

        # 3. Generate, then store every output before answering
        request = TextGenerationRequest(
            prompt=prompt, max_new_tokens=params.max_new_tokens, temperature=params.temperature,
            top_p=params.top_p, top_k=params.top_k, repetition_penalty=params.repetition_penalty,
            num_outputs=params.num_outputs, seed=params.seed, stop=stop, logprobs=params.logprobs,
        )
        result = self._run(engine, request, adapter_name, on_text, stop_event)
        outputs = []
        for i, text in enumerate(result.texts):
            row = self.outputs.record(kind="text", prompt=prompt, params=stored_params, model=spec.id,
                                      adapter=adapter_name, seed=result.seed, user=user.name, text=text,
                                      output_id=output_ids[i] if output_ids else None)
            out = {"id": row["id"], "text": text, "seed": result.seed,
                   "finish_reason": result.finish_reasons[i], "new_tokens": result.new_tokens[i]}
            if result.logprobs is not None:  # `tokens`, and `logprobs`: its older name, the same list
                out["tokens"] = out["logprobs"] = [{"token": t.token, "logprob": t.logprob,
                                                    "top": [{"token": k, "logprob": v} for k, v in t.top]}
                                                   for t in result.logprobs[i]]
            outputs.append(out)
        if assignment is not None:
            self.experiments.record(assignment, [o["id"] for o in outputs])
        return {
            "outputs": outputs,
            "model": spec.id,
            "adapter": adapter_name,
            "elapsed_s": round(result.elapsed_s, 4),
            "warnings": result.warnings,
            "stopped": result.stopped,
            "starter": spec.is_starter,
            "random_weights": spec.is_random_starter,  # a starter that makes noise until trained
            "prompt_tokens": result.prompt_tokens,
        }
