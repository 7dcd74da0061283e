"""Blind A/B comparisons of text, image or speech versions: two versions answer the same prompt with
the same seed; people vote; a Bradley–Terry model ranks the versions of each kind (ties count half)
with bootstrap confidence intervals.

A version is a model plus, per kind, its `adapter` (text), `lora` (image) or `voice` (speech).

Blindness is this service's rule, not a door's: it decides at random which version is shown as
`a`, and an arena output says which version made it only once its comparison is voted (the vote's
answer reveals both; `OutputService.get` hides the version of an arena output until then, and an
arena image's PNG names no model)."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from studio.services.auth import User
from studio.services.errors import Conflict, Invalid, NotFound
from studio.services.image import ImageGenerateParams, ImageService
from studio.services.limits import Admission
from studio.services.outputs import OutputService
from studio.services.speech import SpeechGenerateParams, SpeechService
from studio.services.text import TextGenerateParams, TextService
from studio.services.versions import parse_version, version_label
from studio.store import Store, new_id
from studio.store import comparisons as table

WINNERS = ("a", "b", "tie", "both_bad")
KINDS = ("text", "image", "speech")
VARIANT = {"text": "adapter", "image": "lora", "speech": "voice"}  # a version = model + this, per kind
KIND_FIELDS = {"text": {"max_new_tokens"}, "speech": {"speed"},
               "image": {"negative_prompt", "steps", "width", "height", "guidance_scale"}}  # fmt: skip


class Side(BaseModel):
    """One version: a model and, for its kind, an adapter (text), a LoRA (image) or a voice (speech)."""

    model_config = ConfigDict(extra="forbid")
    model: str | None = None
    adapter: str | None = Field(None, description="text: a text adapter id")
    lora: str | None = Field(None, description="image: an image LoRA id")
    voice: str | None = Field(None, max_length=100, description="speech: one of the model's voices")


class CompareParams(BaseModel):
    """The form of POST /compare and of the Feedback tab's arena. The settings of a kind are shared by
    both sides; images are drawn at one size (by default the smaller of the two models' defaults), with
    each model's own steps and guidance unless they are given."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["text", "image", "speech"] = "text"
    prompt: str = Field(..., min_length=1, max_length=20_000, description="speech: the text to speak")
    a: Side
    b: Side
    seed: int | None = Field(None, ge=0, le=2**32 - 1)
    max_new_tokens: int = Field(64, ge=1, le=1024, description="text")
    negative_prompt: str = Field("", max_length=10_000, description="image")
    steps: int | None = Field(None, ge=1, le=150, description="image")
    width: int | None = Field(None, ge=8, le=4096, description="image: pixels, a multiple of 8")
    height: int | None = Field(None, ge=8, le=4096, description="image: pixels, a multiple of 8")
    guidance_scale: float | None = Field(None, ge=0, le=30, description="image")
    speed: float = Field(1.0, ge=0.5, le=2.0, description="speech: speaking rate")

    @model_validator(mode="after")
    def _fields_fit_the_kind(self) -> CompareParams:
        """A field of another kind is a mistake worth naming, not something to ignore."""
        for name in ("a", "b"):
            side = getattr(self, name)
            for field, kind in (("adapter", "text"), ("lora", "image"), ("voice", "speech")):
                if getattr(side, field) is not None and kind != self.kind:
                    raise ValueError(f"{name}.{field} is for {kind} comparisons; a {self.kind} side is "
                                     f"{{model, {VARIANT[self.kind]}}}.")  # fmt: skip
        for kind, fields in KIND_FIELDS.items():
            stray = sorted(fields & self.model_fields_set) if kind != self.kind else []
            if stray:
                raise ValueError(f"{', '.join(stray)}: only for {kind} comparisons, not {self.kind}.")
        return self


def bradley_terry(pairs: list[tuple[str, str, float]], iters: int = 200) -> dict[str, float]:
    """Scores from (i, j, wins of i over j in [0, 1]) with the MM algorithm; geometric mean 1.
    A tiny symmetric prior (one half-win each way against a virtual opponent) keeps unbeaten or
    winless versions finite."""
    items = sorted({p for i, j, _ in pairs for p in (i, j)})
    if not items:
        return {}
    idx = {name: k for k, name in enumerate(items)}
    n = len(items)
    wins = np.full(n, 0.5)  # prior
    games = np.zeros((n, n))
    for i, j, w in pairs:
        a, b = idx[i], idx[j]
        wins[a] += w
        wins[b] += 1 - w
        games[a, b] += 1
        games[b, a] += 1
    p = np.ones(n)
    for _ in range(iters):
        denom = (games / (p[:, None] + p[None, :])).sum(axis=1) + 1.0 / (p + 1.0)  # + virtual opponent
        p = wins / denom
        p /= np.exp(np.log(p).mean())
    return {name: float(np.log(p[idx[name]])) for name in items}


class ArenaService:
    def __init__(self, store: Store, outputs: OutputService, text: TextService, admission: Admission, *,
                 image: ImageService, speech: SpeechService):  # fmt: skip
        self.store = store
        self.outputs = outputs
        self.text = text
        self.image = image
        self.speech = speech
        self.admission = admission
        self._random = random.SystemRandom()  # which side is shown first: nobody can predict it

    def compare(self, params: CompareParams, *, user: User) -> dict:
        comparison_id = new_id("cmp_")
        sides = [params.a, params.b]
        if params.kind == "image":
            # 1. One picture size for both sides, then each side's form against its model: the sizes
            #    admission weighs are the steps and pixels that will really run (as ImageService does)
            params = self._one_size(params)
            forms = [self._image_form(params, side, params.seed) for side in sides]
            labels = [self._image_label(f) for f in forms]
            sizes = [self.image.sizes(f) for f in forms]
            pair = {**max(sizes, key=lambda z: z["width"] * z["height"]),
                    "steps": max(z["steps"] for z in sizes), "num_outputs": 1}  # fmt: skip
        else:
            pair = ({"max_new_tokens": params.max_new_tokens} if params.kind == "text"
                    else {"text": params.prompt})  # fmt: skip
        # 2. One admission for the pair: the caller's limits, then a fair turn
        with self.admission.admit(user, params.kind, pair):
            # 3. Two different versions, checked before anything runs
            if params.kind == "text":
                labels = [self._text_label(side) for side in sides]
            elif params.kind == "speech":
                labels = [self._speech_label(side) for side in sides]
            if labels[0] == labels[1]:
                raise Invalid(f"a and b are the same version ({labels[0]}); pick two different models or "
                              f"{VARIANT[params.kind]}s.")  # fmt: skip
            # 4. The service, not the page, decides the order; both sides get the same seed
            if self._random.random() < 0.5:
                sides.reverse()
            seed = params.seed if params.seed is not None else self._random.randrange(2**31)
            ids = [self._generate(params, side, seed, user, comparison_id) for side in sides]
        table.create(self.store, comparison_id, kind=params.kind, prompt=params.prompt, a_output_id=ids[0],
                     b_output_id=ids[1], user=user.name)
        return {"id": comparison_id, "kind": params.kind, "seed": seed,
                "a": self.outputs.get(ids[0], user=user.name), "b": self.outputs.get(ids[1], user=user.name)}

    # -- per kind: the version a side names, and its output -------------------------------------
    def _text_label(self, side: Side) -> str:
        spec, adapter_row = self.text.resolve(side.model, side.adapter)
        return version_label(spec.id, adapter_row["id"] if adapter_row is not None else None)

    def _image_form(self, params: CompareParams, side: Side, seed: int | None) -> ImageGenerateParams:
        try:
            return ImageGenerateParams(prompt=params.prompt, negative_prompt=params.negative_prompt,
                                       model=side.model, lora=side.lora, steps=params.steps, width=params.width,
                                       height=params.height, guidance_scale=params.guidance_scale, seed=seed)  # fmt: skip
        except ValidationError as exc:
            raise Invalid(f"{exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}.") from exc

    def _one_size(self, params: CompareParams) -> CompareParams:
        """A picture's size would tell the versions apart: the size asked for, else the smaller of the two
        models' default sizes. Steps and guidance stay each model's own unless asked for."""
        if params.width is not None and params.height is not None:
            return params
        defaults = [self.image.defaults(self.image.resolve(s.model, s.lora)[0].id) for s in (params.a, params.b)]
        return params.model_copy(update={"width": params.width or min(d["width"] for d in defaults),
                                         "height": params.height or min(d["height"] for d in defaults)})  # fmt: skip

    def _image_label(self, form: ImageGenerateParams) -> str:
        spec, lora_row = self.image.resolve(form.model, form.lora)
        return version_label(spec.id, lora_row["id"] if lora_row is not None else None)

    def _speech_label(self, side: Side) -> str:
        spec = self.speech.resolve(side.model)
        if side.voice is not None:
            voices = self.speech.describe(spec.id)["voices"]
            if side.voice not in voices:
                raise Invalid(f"'{spec.id}' has no voice '{side.voice}'. Voices: {', '.join(voices) or 'one, unnamed'}.")
        return version_label(spec.id, side.voice)

    def _generate(self, params: CompareParams, side: Side, seed: int, user: User, comparison_id: str) -> str:
        """One side's output, stored as an arena output of this comparison; its id."""
        blind = {"arena": comparison_id}
        if params.kind == "text":
            gen = self.text.generate_admitted(
                TextGenerateParams(prompt=params.prompt, model=side.model, adapter=side.adapter,
                                   max_new_tokens=params.max_new_tokens, seed=seed),
                user=user, output_params=blind,
            )  # fmt: skip
        elif params.kind == "image":
            gen = self.image.generate_admitted(self._image_form(params, side, seed), user=user, output_params=blind)
            if not gen["outputs"]:
                raise Invalid("The content filter withheld an image of this comparison; try another prompt or seed.",
                              code="filtered")  # fmt: skip
        else:
            form = SpeechGenerateParams(text=params.prompt, model=side.model, voice=side.voice, speed=params.speed,
                                        seed=seed)  # fmt: skip
            gen = self.speech.generate_admitted(form, user=user, output_params=blind)
        return gen["outputs"][0]["id"]

    # -- votes and ranks ------------------------------------------------------------------------
    def _row(self, comparison_id: str):
        row = table.get(self.store, comparison_id)
        if row is None:
            raise NotFound(f"No comparison with id '{comparison_id}'.")
        return row

    def vote(self, comparison_id: str, winner: str, *, user: str) -> dict:
        if winner not in WINNERS:
            raise Invalid(f"winner must be one of {', '.join(WINNERS)}.")
        self._row(comparison_id)
        if not table.vote(self.store, comparison_id, winner):
            raise Conflict("This comparison already has a vote; start a new comparison.")
        row = self._row(comparison_id)
        kind = row["kind"]
        a, b = self.outputs.get(row["a_output_id"]), self.outputs.get(row["b_output_id"])
        return {"id": comparison_id, "kind": kind, "winner": winner,
                "a": {"model": a["model"], VARIANT[kind]: _variant(kind, a["adapter"], a["params"])},
                "b": {"model": b["model"], VARIANT[kind]: _variant(kind, b["adapter"], b["params"])}}

    def matches(self, kind: str = "text") -> list[tuple[str, str, str]]:
        rows = table.voted(self.store, kind)
        return [(version_label(r["am"], _variant(kind, r["aa"], json.loads(r["ap"]))),
                 version_label(r["bm"], _variant(kind, r["ba"], json.loads(r["bp"]))), r["winner"]) for r in rows]  # fmt: skip

    def leaderboard(self, kind: str = "text", *, bootstrap: int = 200, seed: int = 0) -> list[dict]:
        """Rows name the version's parts as the sides do: model + adapter, lora or voice."""
        if kind not in KINDS:
            raise Invalid(f"kind must be one of {', '.join(KINDS)}.")
        rows = leaderboard_from_matches(self.matches(kind), bootstrap=bootstrap, seed=seed)
        if kind != "text":
            rows = [{**{k: v for k, v in r.items() if k != "adapter"}, VARIANT[kind]: r["adapter"]} for r in rows]
        return rows


def _variant(kind: str, adapter: str | None, params: dict) -> str | None:
    """The part of an output's version beside its model: a speech output keeps its voice in params."""
    return params.get("voice") if kind == "speech" else adapter


def leaderboard_from_matches(matches: list[tuple[str, str, str]], *, bootstrap: int = 200,
                             seed: int = 0) -> list[dict]:
    """Rows sorted by Bradley–Terry score; `both_bad` votes count as games no one won (ignored)."""
    scored = [(a, b, {"a": 1.0, "b": 0.0, "tie": 0.5}[w]) for a, b, w in matches if w != "both_bad"]
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"wins": 0, "losses": 0, "ties": 0, "both_bad": 0})
    for a, b, w in matches:
        if w == "a":
            counts[a]["wins"] += 1
            counts[b]["losses"] += 1
        elif w == "b":
            counts[b]["wins"] += 1
            counts[a]["losses"] += 1
        else:
            key = "ties" if w == "tie" else "both_bad"
            counts[a][key] += 1
            counts[b][key] += 1
    scores = bradley_terry(scored)
    rng = np.random.default_rng(seed)
    samples: dict[str, list[float]] = defaultdict(list)
    if scored and bootstrap:
        for _ in range(bootstrap):
            picks = rng.integers(0, len(scored), len(scored))
            for name, s in bradley_terry([scored[k] for k in picks], iters=100).items():
                samples[name].append(s)
    rows = []
    for name in sorted(counts, key=lambda n: -scores.get(n, float("-inf"))):
        boot = samples.get(name)
        lo, hi = (float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))) if boot else (None, None)
        model, adapter = parse_version(name)
        rows.append({"version": name, "model": model, "adapter": adapter,
                     "score": round(scores.get(name, 0.0), 4), "ci_low": lo, "ci_high": hi,
                     "games": sum(counts[name].values()), **counts[name]})
    return rows
