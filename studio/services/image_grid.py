"""X/Y/Z plot: one image form, up to three axes of values, one image per combination.

Each cell is an ordinary image output (stored and ratable like any other, through the same path as
POST /image/generate); the answer adds one labelled picture of all cells. The whole grid is admitted
once — the largest cell's size and steps, and the number of cells (`RequestLimits.image_grid_cells`
for non-admins, `MAX_GRID_CELLS` for everyone) — so a grid takes one fair turn at the gate.

Axes (A1111's names in brackets are accepted too):
  seed · steps · guidance_scale (cfg_scale) · scheduler (sampler) · lora_scale (the first LoRA's
  scale) · prompt_sr (prompt S/R: the first value is the search term, each value replaces it in the
  prompt and the negative prompt; the first cell keeps the prompt as written).
Without a seed axis every cell uses one seed (the form's, else a fresh one), so cells differ only
by their axes.
"""

from __future__ import annotations

import base64
import io
import itertools
import random
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from studio.services.auth import User
from studio.services.errors import Invalid
from studio.services.image import ImageGenerateParams, ImageService
from studio.services.limits import Admission
from studio.store import new_id

MAX_GRID_CELLS = 64  # admins too: a grid is one request holding the gate
MAX_AXIS_VALUES = 16
AXES = ("seed", "steps", "guidance_scale", "scheduler", "lora_scale", "prompt_sr")
ALIASES = {"cfg_scale": "guidance_scale", "cfg": "guidance_scale", "sampler": "scheduler",
           "prompt s/r": "prompt_sr", "prompt_s/r": "prompt_sr", "prompt": "prompt_sr", "lora": "lora_scale"}
LABELS = {"seed": "Seed", "steps": "Steps", "guidance_scale": "CFG", "scheduler": "Sampler",
          "lora_scale": "LoRA", "prompt_sr": "Prompt"}


class GridAxis(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(..., description=f"one of: {', '.join(AXES)}")
    values: list[str | int | float] = Field(..., min_length=1, max_length=MAX_AXIS_VALUES)


class ImageGridParams(BaseModel):
    """The form of POST /image/grid: an image form and its axes (x required, y and z optional)."""

    model_config = ConfigDict(extra="forbid")
    params: ImageGenerateParams
    x: GridAxis
    y: GridAxis | None = None
    z: GridAxis | None = None


def axis_name(name: str) -> str:
    key = ALIASES.get(name.strip().lower(), name.strip().lower())
    if key not in AXES:
        raise Invalid(f"axis '{name}': unknown. Choose one of: {', '.join(AXES)}.", code="unknown_axis")
    return key


def _apply(form: dict, axis: str, value: Any, search: str | None) -> dict:
    """The form with one axis set to `value` (a plain dict, validated later as a whole)."""
    form = dict(form)
    if axis == "prompt_sr":
        form["prompt"] = form["prompt"].replace(search, str(value))
        form["negative_prompt"] = form["negative_prompt"].replace(search, str(value))
    elif axis == "lora_scale":
        if form.get("lora"):
            form["lora_scale"] = value
        elif form.get("loras"):
            form["loras"] = [{**form["loras"][0], "scale": value}, *form["loras"][1:]]
        else:
            raise Invalid("axis lora_scale: the form names no LoRA; set `lora` (or `loras`) in params.")
    else:
        form[axis] = value
    return form


class ImageGridService:
    def __init__(self, image: ImageService, admission: Admission):
        self.image = image
        self.admission = admission

    def cells(self, body: ImageGridParams) -> list[tuple[dict, ImageGenerateParams]]:
        """[(axis values {x, y, z}, the cell's form)] in row-major order, every form validated."""
        if body.params.num_outputs != 1:
            raise Invalid("params.num_outputs: a grid draws one image per cell; leave it at 1.")
        axes = {k: a for k, a in (("x", body.x), ("y", body.y), ("z", body.z)) if a is not None}
        names = {k: axis_name(a.name) for k, a in axes.items()}
        if len(set(names.values())) < len(names):
            raise Invalid("axes: each axis needs its own parameter (the same one twice draws the same cells).")
        count = 1
        for a in axes.values():
            count *= len(a.values)
        if count > MAX_GRID_CELLS:
            raise Invalid(f"A grid has at most {MAX_GRID_CELLS} cells; this one has {count}. Use fewer values.")
        base = body.params.model_dump()
        if base["seed"] is None and "seed" not in names.values():
            base["seed"] = random.SystemRandom().randrange(2**31)  # one seed for every cell
        searches = {}
        for k, name in names.items():
            if name == "prompt_sr":
                search = str(axes[k].values[0])
                if not search or search not in base["prompt"]:
                    raise Invalid(f"axis {k} (prompt S/R): the first value, '{search}', must occur in the prompt.")
                searches[k] = search
        order = ["z", "y", "x"]  # x varies fastest
        present = [k for k in order if k in axes]
        out = []
        for combo in itertools.product(*(axes[k].values for k in present)):
            at = dict(zip(present, combo, strict=True))
            form = base
            for k in present:
                form = _apply(form, names[k], at[k], searches.get(k))
            try:
                params = ImageGenerateParams.model_validate(form)
            except ValidationError as exc:
                err = exc.errors()[0]
                where = ".".join(str(p) for p in err["loc"])
                shown = ", ".join(f"{k}={at[k]!r}" for k in present)
                raise Invalid(f"grid cell ({shown}): {where}: {err['msg']}. Change that axis value.") from exc
            out.append(({k: at.get(k) for k in ("x", "y", "z")}, params))
        return out

    def generate(self, body: ImageGridParams, *, user: User) -> dict:
        t0 = time.perf_counter()
        # 1. Every cell's form against its model, before anything runs
        cells = self.cells(body)
        sizes = [self.image.sizes(form) for _, form in cells]
        whole = {**max(sizes, key=lambda z: z["width"] * z["height"]), "steps": max(z["steps"] for z in sizes),
                 "num_outputs": 1, "grid_cells": len(cells)}
        grid_id = new_id("grid_")

        # 2. One admission for the grid, then each cell through the image service (stored outputs)
        rows, warnings = [], []
        with self.admission.admit(user, "image", whole):
            for at, form in cells:
                result = self.image.generate_admitted(form, user=user, output_params={"grid": grid_id})
                warnings.extend(w for w in result["warnings"] if w not in warnings)
                out = result["outputs"][0] if result["outputs"] else None
                rows.append({
                    "id": out["id"] if out else None, "url": out["url"] if out else None,
                    **at, "seed": out["seed"] if out else form.seed, "filtered": out is None,
                    **result["params"], "lora": result["lora"], "model": result["model"],
                })  # fmt: skip

        # 3. The labelled picture of all cells
        picture = self._picture(body, rows)
        buf = io.BytesIO()
        picture.save(buf, format="PNG")
        return {"id": grid_id, "grid": base64.b64encode(buf.getvalue()).decode(), "cells": rows,
                "axes": {k: {"name": axis_name(a.name), "values": a.values}
                         for k, a in (("x", body.x), ("y", body.y), ("z", body.z)) if a is not None},
                "elapsed_s": round(time.perf_counter() - t0, 4), "warnings": warnings}

    def _picture(self, body: ImageGridParams, rows: list[dict]):
        from engines.image.grid import labelled_grid

        def label(axis: GridAxis | None, value: Any) -> str:
            return "" if axis is None else f"{LABELS[axis_name(axis.name)]}: {value}"

        tiles = []
        for row in rows:
            image = None
            if row["id"] is not None:
                image = self.image.outputs.file(row["id"])[0]
            tiles.append(image)
        xs = [label(body.x, v) for v in body.x.values]
        ys = [label(body.y, v) for v in body.y.values] if body.y else [""]
        zs = [label(body.z, v) for v in body.z.values] if body.z else [""]
        return labelled_grid(tiles, xs, ys, zs)
