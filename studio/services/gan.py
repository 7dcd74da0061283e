"""GAN generation: trained DCGANs (finished `gan` jobs) make images from seeds and latent walks;
every image (and walk GIF) is stored as an output before it is returned, so it can be rated.

Seeds: image i of a request with seed s uses seed s + i, so any image can be made again alone
(`num_outputs=1, seed=s+i`). A walk's first and last frames are the two seeds' single images.
A conditional GAN (trained on captions that repeat, as the demo shapes') draws each image's class
from its seed unless `label` names one; `truncation` ψ (z × ψ) defaults to the GAN's own.
Also here: exporting a trained GAN as a zip, and the procedural demo dataset.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import zipfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from engines.gan.demo_data import DEFAULT_COUNT as DEMO_COUNT
from engines.registry import ModelSpec, UnknownModel
from studio.services.auth import User
from studio.services.errors import Invalid, NotFound, only_admins
from studio.services.limits import Admission
from studio.services.models import ModelService
from studio.services.outputs import OutputService
from studio.store import Store
from studio.store import adapters as adapter_rows

MAX_SEED = 2**32 - 1
EXPORT_README = """# {name}

A DCGAN generator trained in AIGC Studio ({model_id}, {resolution}×{resolution} px).

- `generator.safetensors` — the generator's weights (batch-norm statistics included)
- `config.json`           — `model` is the architecture (GanConfig); the rest is how it was trained
- `dcgan.py`              — the network definition (plain PyTorch)

```python
import torch
from dcgan import load_generator

generator = load_generator(".")                      # eval mode
g = torch.Generator().manual_seed(42)
z = torch.randn(1, generator.config.nz, generator=g)  # the studio's latent for seed 42
label = None                                          # a conditional GAN's class, drawn next:
if generator.config.classes:                          # generator.config.classes names them
    label = torch.randint(len(generator.config.classes), (1,), generator=g)
image = generator(z, label)                           # (1, 3, {resolution}, {resolution}) in [-1, 1]
```

`generator(z, label)` scales z by the GAN's truncation ψ (`config.truncation`); pass
`truncation=1.0` for plain N(0, 1) latents.
"""


class GanGenerateParams(BaseModel):
    """The form of POST /gan/generate and of the GAN tab."""

    model_config = ConfigDict(extra="forbid")
    model: str = Field(
        ..., min_length=1, max_length=300, description="id of a trained GAN (GET /models → gan)"
    )
    num_outputs: int = Field(1, ge=1, le=16)
    seed: int | None = Field(None, ge=0, le=MAX_SEED, description="image i uses seed + i; empty: random")
    label: str | None = Field(
        None, max_length=500, description="a conditional GAN's class (GET /gan/{model} lists them); empty: from the seed"
    )
    truncation: float | None = Field(
        None, ge=0, le=1, description="ψ: the latent × ψ (lower: cleaner, less varied); empty: the GAN's default"
    )


class GanWalkParams(BaseModel):
    """The form of POST /gan/walk: frames along the great circle between two seeds' latents."""

    model_config = ConfigDict(extra="forbid")
    model: str = Field(..., min_length=1, max_length=300)
    seed_a: int = Field(..., ge=0, le=MAX_SEED)
    seed_b: int = Field(..., ge=0, le=MAX_SEED)
    frames: int = Field(8, ge=2, le=32)
    frame_ms: int = Field(100, ge=20, le=2000, description="GIF time per frame")
    label: str | None = Field(None, max_length=500, description="keep this class throughout; empty: blend the seeds'")
    truncation: float | None = Field(None, ge=0, le=1, description="ψ; empty: the GAN's default")


class DemoDatasetParams(BaseModel):
    """The form of POST /datasets/demo."""

    model_config = ConfigDict(extra="forbid")
    n: int = Field(DEMO_COUNT, ge=16, le=2000, description="number of 64×64 images (the default: every caption 3 times)")
    seed: int = Field(0, ge=0, le=MAX_SEED)
    name: str | None = Field(None, max_length=100)


class GanService:
    def __init__(self, models: ModelService, outputs: OutputService, store: Store, admission: Admission):
        self.models = models
        self.outputs = outputs
        self.store = store
        self.admission = admission

    @property
    def data_dir(self) -> Path:
        return self.models.config.data_dir

    # -- which GANs exist ------------------------------------------------------------------------
    def list_models(self) -> list[dict[str, Any]]:
        """Trained GANs, newest first: {id, name, base_model, job_id, created_at, metrics}."""
        return [
            {
                "id": r["id"],
                "name": r["name"],
                "base_model": r["base_model"],
                "job_id": r["job_id"],
                "created_at": r["created_at"],
                "metrics": (json.loads(r["meta"] or "{}")).get("metrics", {}),
            }
            for r in adapter_rows.of_types(self.store, "gan")
        ]

    def describe(self, model: str) -> dict[str, Any]:
        """{id, name, resolution, classes, truncation, metrics} of one GAN, read from its config.json
        (nothing is loaded)."""
        spec = self.resolve(model)
        data = json.loads((self._folder(spec) / "config.json").read_text(encoding="utf-8"))
        arch = data.get("model", {})
        return {
            "id": spec.id,
            "name": spec.meta.get("name") or data.get("name"),
            "resolution": arch.get("resolution"),
            "classes": list(arch.get("classes") or []),
            "truncation": float(arch.get("truncation", 1.0)),
            "metrics": data.get("metrics", {}),
        }

    def resolve(self, model: str) -> ModelSpec:
        try:
            return self.models.resolve(model, "gan")
        except UnknownModel as exc:
            known = [f"{m['id']} ({m['name']})" for m in self.list_models()]
            listed = (
                ", ".join(known)
                if known
                else ("none yet — train one with a `gan` job (the demo dataset works: POST /datasets/demo)")
            )
            raise NotFound(
                f"Unknown GAN '{exc.model_id}'. Trained GANs: {listed}.", code="unknown_model"
            ) from exc

    def engine(self, spec: ModelSpec):
        from engines.gan.generate import GanEngine

        folder = self._folder(spec)
        return self.models.memory.get(
            f"gan:{spec.id}",
            lambda: GanEngine(folder, device=self.models.device).load(),
            size_bytes=lambda e: e.size_bytes(),
        )

    def is_loaded(self, model: str) -> bool:
        return self.models.memory.is_loaded(f"gan:{self.resolve(model).id}")

    def _folder(self, spec: ModelSpec) -> Path:
        folder = Path(spec.location).resolve()
        if (
            not folder.is_relative_to(self.data_dir.resolve())
            or not (folder / "generator.safetensors").is_file()
        ):
            raise NotFound(f"The files of GAN '{spec.id}' are gone ({folder.name}). Train it again.")
        return folder

    # -- generating ------------------------------------------------------------------------------
    def generate(self, params: GanGenerateParams, *, user: User) -> dict[str, Any]:
        with self.admission.admit(user, "gan", {"num_outputs": params.num_outputs}):
            return self._generate_admitted(params, user)

    def _generate_admitted(self, params: GanGenerateParams, user: User) -> dict[str, Any]:
        # 1. Resolve and load; 2. generate seeds seed … seed + n - 1; 3. store each PNG, then answer
        spec = self.resolve(params.model)
        self.admission.require()
        engine = self.engine(spec)
        seed = params.seed if params.seed is not None else secrets.randbelow(2**31)
        try:
            result = engine.generate(params.num_outputs, seed, label=params.label, truncation=params.truncation)
        except ValueError as exc:  # a class this GAN does not know
            raise Invalid(str(exc)) from exc
        res = engine.config.resolution
        psi = engine.config.truncation if params.truncation is None else params.truncation
        outputs = []
        for item in result.images:
            text = f"DCGAN, Seed: {item.seed}, Size: {res}x{res}, Truncation: {psi:g}, Model: {spec.id}"
            if item.label is not None:
                text += f", Class: {item.label}"
            row = self._store_png(
                item.image,
                text,
                spec,
                user=user.name,
                seed=item.seed,
                params={"num_outputs": params.num_outputs, "resolution": res, "truncation": psi,
                        **({"label": item.label} if item.label is not None else {})},  # fmt: skip
                prompt=item.label or "",
            )
            outputs.append({"id": row["id"], "url": row["url"], "seed": item.seed, "label": item.label})
        return {
            "outputs": outputs,
            "model": spec.id,
            "elapsed_s": round(result.elapsed_s, 4),
            "name": spec.meta.get("name"),
            "resolution": res,
            "truncation": psi,
        }

    def walk(self, params: GanWalkParams, *, user: User) -> dict[str, Any]:
        """Frames from seed_a to seed_b (each an output) and an animated GIF of them (one more output)."""
        with self.admission.admit(user, "gan", {"frames": params.frames}):
            return self._walk_admitted(params, user)

    def _walk_admitted(self, params: GanWalkParams, user: User) -> dict[str, Any]:
        from engines.gan.generate import save_gif

        spec = self.resolve(params.model)
        self.admission.require()
        engine = self.engine(spec)
        try:
            result = engine.walk(params.seed_a, params.seed_b, params.frames, params.label, params.truncation)
        except ValueError as exc:
            raise Invalid(str(exc)) from exc
        res = engine.config.resolution
        walk = {"seed_a": params.seed_a, "seed_b": params.seed_b, "frames": params.frames,
                **({"label": params.label} if params.label is not None else {}),
                **({"truncation": params.truncation} if params.truncation is not None else {})}  # fmt: skip
        frames = []
        for i, (image, t) in enumerate(zip(result.frames, result.positions, strict=True)):
            seed = params.seed_a if t == 0 else params.seed_b if t == 1 else None
            text = f"DCGAN latent walk, Seeds: {params.seed_a}->{params.seed_b}, t: {t:.4f}, Size: {res}x{res}, Model: {spec.id}"
            row = self._store_png(
                image,
                text,
                spec,
                user=user.name,
                seed=seed,
                params={"walk": walk, "frame": i, "t": round(t, 6), "resolution": res},
            )
            frames.append({"id": row["id"], "url": row["url"], "t": round(t, 6), "seed": seed})
        gif_id, gif_path = self.outputs.new_file_path(".gif")
        save_gif(result.frames, gif_path, duration_ms=params.frame_ms)
        try:
            gif = self.outputs.record(
                kind="gan",
                prompt="",
                params={"walk": walk, "gif": True, "frame_ms": params.frame_ms},
                model=spec.id,
                adapter=None,
                seed=None,
                user=user.name,
                file=gif_path,
                output_id=gif_id,
            )
        except BaseException:
            gif_path.unlink(missing_ok=True)
            raise
        return {
            "frames": frames,
            "gif": {"id": gif["id"], "url": gif["url"]},
            "model": spec.id,
            "elapsed_s": round(result.elapsed_s, 4),
        }

    def _store_png(
        self, image, text: str, spec: ModelSpec, *, user: str, seed: int | None, params: dict, prompt: str = ""
    ) -> dict:
        from PIL.PngImagePlugin import PngInfo

        output_id, path = self.outputs.new_file_path(".png")
        info = PngInfo()
        info.add_text("parameters", text)
        image.save(path, format="PNG", pnginfo=info)
        try:
            return self.outputs.record(
                kind="gan",
                prompt=prompt,
                params=params,
                model=spec.id,
                adapter=None,
                seed=seed,
                user=user,
                file=path,
                output_id=output_id,
            )
        except BaseException:
            path.unlink(missing_ok=True)
            raise

    def recent(self, limit: int = 24, user: str | None = None) -> list[dict]:
        return self.outputs.recent("gan", limit=limit, user=user)

    # -- export ----------------------------------------------------------------------------------
    def export(self, model: str) -> Path:
        """A zip of generator.safetensors + config.json + dcgan.py + README.md (built once, kept beside it)."""
        from engines.gan import model as dcgan

        spec = self.resolve(model)
        folder = self._folder(spec)
        target = folder / f"{spec.id}.zip"
        if target.is_file() and target.stat().st_mtime >= (folder / "generator.safetensors").stat().st_mtime:
            return target
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        readme = EXPORT_README.format(
            name=spec.meta.get("name") or spec.id,
            model_id=spec.id,
            resolution=config.get("model", {}).get("resolution", "?"),
        )
        tmp = folder / f".{spec.id}.zip.{secrets.token_hex(4)}.tmp"
        try:
            with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                zf.write(folder / "generator.safetensors", "generator.safetensors")
                zf.write(folder / "config.json", "config.json")
                zf.write(dcgan.__file__, "dcgan.py")
                zf.writestr("README.md", readme)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        return target

    # -- the demo dataset ------------------------------------------------------------------------
    def create_demo_dataset(
        self, datasets: Any, n: int = DEMO_COUNT, seed: int = 0, name: str | None = None, user: Any = None
    ) -> dict[str, Any]:
        """Draw the procedural shapes and register them as an ordinary image dataset (admins only)."""
        from engines.gan.demo_data import write_demo_folder
        from studio.services.datasets import IncomingFile
        from studio.services.scratch import Scratch

        if user is not None and not getattr(user, "is_admin", False):
            raise only_admins(user, "create datasets")
        try:
            params = DemoDatasetParams(n=n, seed=seed, name=name)  # the same checks as the API's
        except ValidationError as exc:
            first = exc.errors()[0]
            raise Invalid(f"{'.'.join(map(str, first['loc']))}: {first['msg']}.") from exc
        work = Scratch(self.data_dir, self.models.config.shared_data_dir).folder("upload-demo")  # swept at start if we crash
        try:
            files = write_demo_folder(work, n=params.n, seed=params.seed)
            incoming = [IncomingFile(name=p.name, path=p) for p in files]
            title = params.name or f"Demo shapes ({params.n} images, seed {params.seed})"
            return datasets.create(incoming, "image", title)
        finally:
            shutil.rmtree(work, ignore_errors=True)
