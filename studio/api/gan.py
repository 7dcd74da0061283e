"""GAN routes: generate from a trained DCGAN, latent walks, export, and the demo dataset.

Every image (and walk GIF) is stored as an output with an id that can be rated (POST /feedback).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse

from studio.api.datasets import DatasetSummary
from studio.api.deps import get_studio, require_admin, require_user
from studio.services import Studio
from studio.services.auth import User
from studio.services.gan import DemoDatasetParams, GanGenerateParams, GanWalkParams

router = APIRouter(tags=["gan"])


@router.post("/gan/generate")
async def generate_gan(
    body: GanGenerateParams, studio: Studio = Depends(get_studio), user: User = Depends(require_user)
) -> dict:
    """`num_outputs` images from a trained GAN with seeds `seed, seed+1, …` (same seed → same pixels).

    A conditional GAN draws each image's class from its seed, or uses `label` (one of its classes:
    GET /gan/{model}); `truncation` ψ defaults to the GAN's own.
    → `{"outputs": [{"id", "url", "seed", "label"}], "model", "elapsed_s", "resolution", "truncation"}`.
    An unknown `model` is a 404 whose message lists the trained GANs; an unknown `label` a 422 naming
    the classes.
    """
    return await run_in_threadpool(studio.gan.generate, body, user=user)


@router.post("/gan/walk")
async def latent_walk(
    body: GanWalkParams, studio: Studio = Depends(get_studio), user: User = Depends(require_user)
) -> dict:
    """`frames` images along a spherical interpolation from `seed_a`'s latent to `seed_b`'s, plus a GIF.

    The first and last frames are pixel-identical to the two seeds' single images.
    → `{"frames": [{"id", "url", "t", "seed"}], "gif": {"id", "url"}, "model", "elapsed_s"}`.
    """
    return await run_in_threadpool(studio.gan.walk, body, user=user)


@router.get("/gan/{model}")
async def describe_gan(model: str, studio: Studio = Depends(get_studio)) -> dict:
    """One trained GAN: `{"id", "name", "resolution", "classes", "truncation", "metrics"}` — `classes`
    are a conditional GAN's labels (its training captions; empty: unconditional)."""
    return await run_in_threadpool(studio.gan.describe, model)


@router.get("/gan/{model}/export", response_class=FileResponse)
async def export_gan(model: str, studio: Studio = Depends(get_studio)) -> FileResponse:
    """A zip: `generator.safetensors`, `config.json`, `dcgan.py` (the network in plain PyTorch), `README.md`."""
    path = await run_in_threadpool(studio.gan.export, model)
    return FileResponse(path, media_type="application/zip", filename=path.name)


@router.post(
    "/datasets/demo",
    status_code=201,
    response_model=DatasetSummary,
    tags=["datasets"],
    dependencies=[Depends(require_admin)],
)
async def create_demo_dataset(
    body: DemoDatasetParams | None = None, studio: Studio = Depends(get_studio)
) -> dict:
    """Draw the procedural demo set (coloured shapes, 64×64 PNGs) and store it as an image dataset.

    → the dataset summary, as POST /datasets. Train a GAN on it: POST /jobs `{"kind": "gan", "dataset_id": …}`.
    """
    body = body or DemoDatasetParams()
    return await run_in_threadpool(
        studio.gan.create_demo_dataset, studio.datasets, n=body.n, seed=body.seed, name=body.name
    )
