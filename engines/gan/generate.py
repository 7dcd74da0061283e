"""Generating with a trained DCGAN: images from seeds, latent walks between two seeds, GIFs.

Reproducibility rules (the API promises them):
- image i of a request with seed s uses seed s + i, and its latent (and, for a conditional GAN, its
  class unless one is asked for) depends on that seed alone (`model.sample_inputs`), so any image
  can be made again on its own;
- the latent is scaled by the truncation ψ (the GAN's own default, or the request's);
- the generator runs in eval mode (batch norm uses its running statistics) on one latent at a
  time, so an image never depends on what else was in the batch;
- a latent walk's first and last latents *are* the two seeds' latents, so its end frames are
  pixel-identical to the two seeds' single images.
"""

from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from engines.gan.model import GanConfig, Generator, load_generator, sample_inputs


@dataclass
class GanImage:
    image: Image.Image  # RGB, resolution × resolution
    seed: int
    label: str | None = None  # the class drawn (conditional GANs)


@dataclass
class GanGenerationResult:
    images: list[GanImage]
    elapsed_s: float


@dataclass
class LatentWalkResult:
    frames: list[Image.Image]
    positions: list[float]  # t of each frame, 0 (seed_a) … 1 (seed_b)
    seed_a: int
    seed_b: int
    elapsed_s: float


def latent_for_seed(seed: int, nz: int) -> torch.Tensor:
    """The latent z (nz,) of one seed: N(0, 1) from a CPU generator, the same on every device."""
    g = torch.Generator(device="cpu").manual_seed(int(seed))
    return torch.randn(nz, generator=g)


def slerp(t: float, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between latents a and b (Gaussian latents live near a sphere).

    t = 0 and t = 1 return a and b themselves; nearly parallel vectors fall back to lerp.
    """
    if t <= 0:
        return a.clone()
    if t >= 1:
        return b.clone()
    a64, b64 = a.double(), b.double()
    cos = torch.dot(a64 / a64.norm(), b64 / b64.norm()).clamp(-1.0, 1.0)
    omega = torch.arccos(cos)
    if omega.abs() < 1e-4:
        out = (1 - t) * a64 + t * b64
    else:
        out = (torch.sin((1 - t) * omega) * a64 + torch.sin(t * omega) * b64) / torch.sin(omega)
    return out.to(a.dtype)


def to_pil(image: torch.Tensor) -> Image.Image:
    """(3, H, W) in [-1, 1] → an RGB image (round to nearest)."""
    arr = ((image.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)  # (3, H, W)
    return Image.fromarray(arr.permute(1, 2, 0).numpy())


def image_grid(images: torch.Tensor, nrow: int = 8, padding: int = 2, scale: int = 1) -> Image.Image:
    """(B, 3, H, W) in [-1, 1] → one PNG-ready grid image with `nrow` images per row."""
    b, _, h, w = images.shape
    ncol = math.ceil(b / nrow)
    grid = np.full((ncol * (h + padding) + padding, nrow * (w + padding) + padding, 3), 255, np.uint8)
    arr = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    arr = arr.permute(0, 2, 3, 1).numpy()  # (B, H, W, 3)
    for i in range(b):
        r, c = divmod(i, nrow)
        y, x = padding + r * (h + padding), padding + c * (w + padding)
        grid[y : y + h, x : x + w] = arr[i]
    img = Image.fromarray(grid)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)
    return img


def save_gif(
    frames: list[Image.Image],
    path: Path,
    *,
    duration_ms: int = 100,
    boomerang: bool = True,
    min_side: int = 128,
) -> Path:
    """An endlessly looping GIF; with `boomerang` it plays there and back. Small frames are upscaled
    (nearest neighbour) to at least `min_side` pixels so a 32-px walk is visible."""
    if not frames:
        raise ValueError("a GIF needs at least one frame.")
    scale = max(1, math.ceil(min_side / frames[0].width))
    shown = [f.resize((f.width * scale, f.height * scale), Image.Resampling.NEAREST) for f in frames]
    if boomerang and len(shown) > 2:
        shown = shown + shown[-2:0:-1]
    shown[0].save(
        path,
        format="GIF",
        save_all=True,
        append_images=shown[1:],
        duration=duration_ms,
        loop=0,
        optimize=False,
        disposal=1,
    )
    return Path(path)


class GanEngine:
    """A trained generator loaded from a folder with `config.json` + `generator.safetensors`."""

    def __init__(self, location: str | Path, device: str = "cpu"):
        self.location = Path(location)
        self.device = device
        self.generator: Generator | None = None
        self.info: dict = {}  # the rest of config.json (dataset, step, metrics …)
        self._lock = threading.Lock()

    def load(self) -> GanEngine:
        if not (self.location / "generator.safetensors").is_file():
            raise FileNotFoundError(f"No generator.safetensors in {self.location}.")
        self.info = json.loads((self.location / "config.json").read_text(encoding="utf-8"))
        self.generator = load_generator(self.location, device=self.device)
        return self

    @property
    def config(self) -> GanConfig:
        return self._loaded().config

    def _loaded(self) -> Generator:
        if self.generator is None:
            raise RuntimeError("GanEngine.load() first.")
        return self.generator

    def size_bytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self._loaded().state_dict().values())

    @property
    def classes(self) -> list[str]:
        return self.config.classes

    def class_index(self, label: str) -> int:
        """The index of a class name; ValueError naming the classes when it is not one."""
        try:
            return self.classes.index(label)
        except ValueError:
            if not self.classes:
                raise ValueError("This GAN was trained without classes: leave the class empty.") from None
            shown = ", ".join(repr(c) for c in self.classes[:12]) + (" …" if len(self.classes) > 12 else "")
            raise ValueError(f"Unknown class {label!r}; this GAN knows {len(self.classes)}: {shown}.") from None

    @torch.inference_mode()
    def render(
        self, z: torch.Tensor, label: torch.Tensor | None = None, truncation: float | None = None
    ) -> Image.Image:
        """One latent (nz,) [+ a class index or (classes,) weights] → one image, alone in its batch,
        batch norm in eval mode; truncation None: the GAN's default."""
        generator = self._loaded()
        labels = None if label is None else label.reshape(1, *label.shape).to(self.device)
        with self._lock:  # eval() is a module flag: keep it set while any thread renders
            generator.eval()
            out = generator(z.reshape(1, -1).to(self.device), labels, truncation)  # (1, 3, R, R)
        return to_pil(out[0])

    def _inputs(self, seed: int, label: str | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        z, drawn = sample_inputs(seed, self.config)
        if label is not None:
            drawn = torch.tensor(self.class_index(label))
        return z, drawn

    def generate(
        self, num_outputs: int = 1, seed: int = 0, label: str | None = None, truncation: float | None = None
    ) -> GanGenerationResult:
        """Images for seeds seed, seed + 1, …, seed + num_outputs - 1 (all of class `label` if given)."""
        if not 1 <= num_outputs <= 256:
            raise ValueError(f"num_outputs must be between 1 and 256, not {num_outputs}.")
        t0 = time.perf_counter()
        images = []
        for i in range(num_outputs):
            z, drawn = self._inputs(seed + i, label)
            name = None if drawn is None else self.classes[int(drawn)]
            images.append(GanImage(self.render(z, drawn, truncation), seed + i, name))
        return GanGenerationResult(images, time.perf_counter() - t0)

    def walk(
        self, seed_a: int, seed_b: int, frames: int = 8, label: str | None = None, truncation: float | None = None
    ) -> LatentWalkResult:
        """`frames` images along the great circle from seed_a's latent to seed_b's (both ends included);
        a conditional GAN also blends seed_a's class into seed_b's (or keeps `label` throughout)."""
        if not 2 <= frames <= 256:
            raise ValueError(f"frames must be between 2 and 256, not {frames}.")
        t0 = time.perf_counter()
        (za, ca), (zb, cb) = self._inputs(seed_a, label), self._inputs(seed_b, label)
        positions = [i / (frames - 1) for i in range(frames)]
        images = []
        for t in positions:
            blend = None
            if ca is not None:
                n = len(self.classes)
                one_a, one_b = torch.nn.functional.one_hot(ca, n).float(), torch.nn.functional.one_hot(cb, n).float()
                blend = one_a if t <= 0 else one_b if t >= 1 else (1 - t) * one_a + t * one_b
            images.append(self.render(slerp(t, za, zb), blend, truncation))
        return LatentWalkResult(images, positions, seed_a, seed_b, time.perf_counter() - t0)
