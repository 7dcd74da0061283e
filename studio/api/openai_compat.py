"""The OpenAI dialect at /v1, so the field's clients (the `openai` SDK, Open WebUI, SillyTavern…)
can use the studio: models, chat completions (streamed as server-sent events), completions,
speech and images. A thin door like the REST API: it translates the dialect, calls the same
services (admission, outputs and ratings included) and answers errors in OpenAI's shape.

Model names are the studio's ids; a text adapter is `<base model>+<adapter id>` (as listed by
GET /v1/models); `default` leaves the text version to the studio (its default, or a live
experiment's arm). Every output is stored before it is returned; its id comes back in the
`X-Studio-Output-Id` header (comma-separated, one per output) and as `output_id` in each choice
or image, so it can be rated with POST /api/v1/feedback."""

from __future__ import annotations

import base64
import json
import logging
import time
from typing import Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from studio.api.deps import require_user
from studio.api.streaming import DONE, ERROR, BackgroundCall
from studio.services import Studio
from studio.services.auth import User
from studio.services.errors import Invalid, NotFound, StudioError
from studio.services.image import ImageGenerateParams
from studio.services.speech import SpeechGenerateParams
from studio.services.text import ChatMessage, TextGenerateParams
from studio.services.versions import parse_version, version_label
from studio.store import new_id

log = logging.getLogger("studio.api.openai")
OUTPUT_HEADER = "X-Studio-Output-Id"

# Names OpenAI's own clients send by default; they mean "the studio's default model / voice".
STOCK_IMAGE_MODELS = {"dall-e-2", "dall-e-3", "gpt-image-1", "gpt-image-1-mini"}
STOCK_SPEECH_MODELS = {"tts-1", "tts-1-hd", "gpt-4o-mini-tts"}
STOCK_VOICES = {"alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer", "verse"}
ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
               404: "not_found_error", 409: "invalid_request_error", 413: "invalid_request_error",
               415: "invalid_request_error", 422: "invalid_request_error", 429: "rate_limit_error",
               507: "server_error"}


STREAMED = {200: {"description": "JSON, or server-sent events with `stream: true`",
                  "content": {"application/json": {}, "text/event-stream": {}}}}


def openai_error(status: int, message: str, code: str | None = None, param: str | None = None,
                 headers: dict | None = None) -> JSONResponse:
    body = {"error": {"message": message, "type": ERROR_TYPES.get(status, "server_error"), "param": param,
                      "code": code}}
    if status == 401:
        headers = {"WWW-Authenticate": 'Bearer realm="AIGC Studio"', **(headers or {})}
    return JSONResponse(body, status_code=status, headers=headers)


# -- request shapes (OpenAI's; fields the studio does not use are accepted and ignored) ---------------
class ContentPart(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str
    text: str | None = None


class ChatIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None

    def plain(self) -> ChatMessage:
        if isinstance(self.content, list):
            text = "".join(p.text or "" for p in self.content if p.type == "text")
        else:
            text = self.content or ""
        role = {"developer": "system", "tool": "user"}.get(self.role, self.role)
        return ChatMessage(role=role, content=text)


class Sampling(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str = Field(..., max_length=300)
    n: int = Field(1, ge=1, le=16)
    seed: int | None = Field(None, ge=0, le=2**32 - 1)
    temperature: float = Field(1.0, ge=0, le=2)
    top_p: float = Field(1.0, gt=0, le=1)
    max_tokens: int | None = Field(None, ge=1, le=2048)
    stop: str | list[str] | None = None
    stream: bool = False

    def params(self, max_new_tokens: int | None, logprobs: int | None) -> dict:
        stop = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        return dict(max_new_tokens=max_new_tokens or 128, temperature=self.temperature, top_p=self.top_p,
                    top_k=0, num_outputs=self.n, seed=self.seed, stop=stop[:8], logprobs=logprobs)


class ChatCompletionIn(Sampling):
    messages: list[ChatIn] = Field(..., min_length=1, max_length=500)
    max_completion_tokens: int | None = Field(None, ge=1, le=2048)
    logprobs: bool = False
    top_logprobs: int | None = Field(None, ge=0, le=20)


class CompletionIn(Sampling):
    prompt: str | list[str] = Field(..., description="one prompt")
    logprobs: int | None = Field(None, ge=0, le=20)
    echo: bool = False
    max_tokens: int | None = Field(16, ge=1, le=2048)


class SpeechIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str = Field(..., max_length=300)
    input: str = Field(..., min_length=1, max_length=20_000)
    voice: str = Field("default", max_length=100)
    response_format: Literal["mp3", "opus", "aac", "flac", "wav", "pcm"] = "wav"
    speed: float = Field(1.0, ge=0.25, le=4.0)


class ImagesIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    prompt: str = Field(..., max_length=10_000)
    model: str | None = Field(None, max_length=300)
    n: int = Field(1, ge=1, le=8)
    size: str | None = Field(None, max_length=20, description='"WxH", e.g. "64x64", or "auto"')
    response_format: Literal["url", "b64_json"] = "url"


# -- translating ----------------------------------------------------------------------------------
DEFAULT_MODEL = "default"  # leaves the version to the studio: its default, or a live experiment's arm


def text_model(name: str) -> tuple[str | None, str | None]:
    """`model`, `model+adapter` or `default` → (model, adapter); (None, None) pins nothing."""
    if name in ("", DEFAULT_MODEL):
        return None, None
    return parse_version(name)


def _logprob_entry(t: dict) -> dict:
    return {"token": t["token"], "logprob": t["logprob"], "bytes": list(t["token"].encode()),
            "top_logprobs": [{"token": a["token"], "logprob": a["logprob"], "bytes": list(a["token"].encode())}
                             for a in t["top"]]}


def _completion_logprobs(tokens: list[dict]) -> dict:
    offsets, pos = [], 0
    for t in tokens:
        offsets.append(pos)
        pos += len(t["token"])
    return {"tokens": [t["token"] for t in tokens], "token_logprobs": [t["logprob"] for t in tokens],
            "top_logprobs": [{a["token"]: a["logprob"] for a in t["top"]} for t in tokens], "text_offset": offsets}


def _usage(result: dict) -> dict:
    completion = sum(o["new_tokens"] for o in result["outputs"])
    return {"prompt_tokens": result["prompt_tokens"], "completion_tokens": completion,
            "total_tokens": result["prompt_tokens"] + completion}


def _model_label(result: dict) -> str:
    return version_label(result["model"], result["adapter"])


def create_openai_api(studio: Studio) -> FastAPI:
    api = FastAPI(title="AIGC Studio — OpenAI-compatible API", openapi_url="/openapi.json", docs_url=None,
                  redoc_url=None)
    api.state.studio = studio

    @api.exception_handler(StudioError)
    async def _studio_error(request: Request, exc: StudioError):
        return openai_error(exc.status, exc.message, exc.code, headers=getattr(exc, "headers", None))

    @api.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        param = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or None
        return openai_error(400, f"{param or 'body'}: {first.get('msg', 'invalid')}.", "invalid_field", param)

    @api.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        message = f"No route {request.method} {request.url.path}." if exc.status_code in (404, 405) else str(exc.detail)
        return openai_error(exc.status_code, message)

    @api.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("Unhandled error on %s %s", request.method, request.url.path)
        return openai_error(500, "Something went wrong inside the studio; see the server log.", "internal_error")

    api.include_router(_router(studio), dependencies=[Depends(require_user)])
    return api


def _router(studio: Studio) -> APIRouter:
    r = APIRouter()

    @r.get("/models")
    def models() -> dict:
        listed = studio.models.list_models()
        ids = [DEFAULT_MODEL] + [m["id"] for kind in ("text", "image", "speech") for m in listed[kind]]
        ids += [version_label(a["base_model"], a["id"]) for a in listed["text_adapters"]]
        return {"object": "list", "data": [{"id": i, "object": "model", "created": 0, "owned_by": "aigc-studio"}
                                           for i in ids]}

    async def _text(body: Sampling, user: User, prompt: str | list[ChatMessage], max_new: int | None,
                    logprobs: int | None, shape) -> Response:
        """Run a chat or completion, whole or streamed; `shape(result|texts, final)` makes the JSON."""
        model, adapter = text_model(body.model)
        try:
            params = TextGenerateParams(prompt="", model=model, adapter=adapter, **body.params(max_new, logprobs))
        except ValueError as exc:
            raise Invalid(f"Check the request: {exc}") from exc
        ids = [new_id("out_") for _ in range(body.n)]
        headers = {OUTPUT_HEADER: ",".join(ids)}

        def call(emit, stop_event=None):
            kw = dict(user=user, output_ids=ids, on_text=emit if body.stream else None, stop_event=stop_event)
            if isinstance(prompt, str):
                return studio.text.generate(params.model_copy(update={"prompt": prompt}), **kw)
            return studio.text.chat(prompt, params, **kw)

        if not body.stream:
            result = await run_in_threadpool(call, None)
            return JSONResponse(shape(result, True), headers=headers)
        job = BackgroundCall(call)
        first = await job.next()
        if first[0] == ERROR:  # refused before anything was generated: a plain error answer
            raise first[1]

        async def sse():
            sent = [""] * body.n
            async for kind, value in job.events(first):
                if kind == ERROR:
                    exc = value if isinstance(value, StudioError) else StudioError("Generation failed.")
                    yield f"data: {json.dumps({'error': {'message': exc.message, 'code': exc.code}})}\n\n"
                    return
                texts = [o["text"] for o in value["outputs"]] if kind == DONE else value
                deltas = []
                for i, text in enumerate(texts):
                    if len(text) > len(sent[i]) and text.startswith(sent[i]):
                        deltas.append((i, text[len(sent[i]):]))
                        sent[i] = text
                if deltas or kind == DONE:
                    yield f"data: {json.dumps(shape({'deltas': deltas}, False))}\n\n"
                if kind == DONE:
                    yield f"data: {json.dumps(shape(value, True, streamed=True))}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(sse(), media_type="text/event-stream", headers=headers)

    @r.post("/chat/completions", responses=STREAMED)
    async def chat_completions(body: ChatCompletionIn, user: User = Depends(require_user)) -> Response:
        cid, created = "chatcmpl-" + new_id(""), int(time.time())
        top = (body.top_logprobs or 0) if body.logprobs else None

        def shape(result: dict, final: bool, streamed: bool = False) -> dict:
            if not final:  # a streamed chunk
                return {"id": cid, "object": "chat.completion.chunk", "created": created, "model": body.model,
                        "choices": [{"index": i, "delta": {"role": "assistant", "content": d},
                                     "finish_reason": None} for i, d in result["deltas"]]}
            choices = []
            for i, o in enumerate(result["outputs"]):
                lp = {"content": [_logprob_entry(t) for t in o["logprobs"]]} if "logprobs" in o else None
                choice = {"index": i, "finish_reason": o["finish_reason"], "logprobs": lp, "output_id": o["id"]}
                if streamed:
                    choice["delta"] = {}
                else:
                    choice["message"] = {"role": "assistant", "content": o["text"], "refusal": None}
                choices.append(choice)
            return {"id": cid, "object": "chat.completion.chunk" if streamed else "chat.completion",
                    "created": created, "model": _model_label(result), "choices": choices,
                    "usage": _usage(result), "system_fingerprint": None}

        messages = [m.plain() for m in body.messages]
        return await _text(body, user, messages, body.max_completion_tokens or body.max_tokens, top, shape)

    @r.post("/completions", responses=STREAMED)
    async def completions(body: CompletionIn, user: User = Depends(require_user)) -> Response:
        prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
        if len(prompts) != 1:
            raise Invalid("prompt: send one prompt per request.")
        cid, created = "cmpl-" + new_id(""), int(time.time())
        echo = prompts[0] if body.echo else ""

        def shape(result: dict, final: bool, streamed: bool = False) -> dict:
            if not final:
                return {"id": cid, "object": "text_completion", "created": created, "model": body.model,
                        "choices": [{"index": i, "text": d, "logprobs": None, "finish_reason": None}
                                    for i, d in result["deltas"]]}
            choices = [{"index": i, "text": "" if streamed else echo + o["text"], "finish_reason": o["finish_reason"],
                        "logprobs": _completion_logprobs(o["logprobs"]) if "logprobs" in o else None,
                        "output_id": o["id"]} for i, o in enumerate(result["outputs"])]
            return {"id": cid, "object": "text_completion", "created": created, "model": _model_label(result),
                    "choices": choices, "usage": _usage(result)}

        return await _text(body, user, prompts[0], body.max_tokens, body.logprobs, shape)

    @r.post("/audio/speech", response_class=Response,
            responses={200: {"content": {"audio/wav": {}, "audio/flac": {}}}})
    async def speech(body: SpeechIn, user: User = Depends(require_user)) -> Response:
        if body.response_format not in ("wav", "flac"):
            raise Invalid(f"response_format: the studio writes wav or flac, not {body.response_format}.",
                          code="unsupported_format")
        model = None if body.model in STOCK_SPEECH_MODELS else body.model
        voice = None
        if body.voice != "default" and body.voice not in STOCK_VOICES:
            voices = (await run_in_threadpool(studio.speech.describe, model))["voices"]
            if body.voice not in voices:
                raise NotFound(f"voice: '{body.voice}' is not a voice of this model. Use 'default'"
                               + (f" or one of: {', '.join(voices)}." if voices else "."), code="unknown_voice")
            voice = body.voice
        params = SpeechGenerateParams(text=body.input, model=model, voice=voice, format=body.response_format,
                                      speed=min(2.0, max(0.5, body.speed)))
        result = await run_in_threadpool(studio.speech.generate, params, user=user)
        out = result["outputs"][0]
        path, _, media_type = studio.outputs.file(out["id"])
        return Response(path.read_bytes(), media_type=media_type, headers={OUTPUT_HEADER: out["id"]})

    @r.post("/images/generations")
    async def images(body: ImagesIn, request: Request, user: User = Depends(require_user)) -> Response:
        model = None if body.model in STOCK_IMAGE_MODELS else body.model
        width = height = None
        if body.size and body.size != "auto":
            try:
                width, height = (int(v) for v in body.size.lower().split("x"))
            except ValueError as exc:
                raise Invalid(f"size: write it as WIDTHxHEIGHT, e.g. 512x512, not '{body.size}'.",
                              code="invalid_size") from exc
            width, height = await run_in_threadpool(studio.image.fit_size, model, width, height)
        params = ImageGenerateParams(prompt=body.prompt, model=model, num_outputs=body.n, width=width, height=height)
        result = await run_in_threadpool(studio.image.generate, params, user=user)
        data = []
        base = str(request.base_url).rstrip("/").removesuffix("/v1")
        for o in result["outputs"]:
            item: dict[str, Any] = {"revised_prompt": None, "output_id": o["id"]}
            if body.response_format == "b64_json":
                path, _, _ = studio.outputs.file(o["id"])
                item["b64_json"] = base64.b64encode(path.read_bytes()).decode()
            else:
                item["url"] = base + o["url"]
            data.append(item)
        headers = {OUTPUT_HEADER: ",".join(o["id"] for o in result["outputs"])}
        return JSONResponse({"created": int(time.time()), "data": data}, headers=headers)

    return r
