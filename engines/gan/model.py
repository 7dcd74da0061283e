"""DCGAN (Radford, Metz & Chintala, 2015) in plain PyTorch, for 32, 64 and 128 px RGB images.

    Generator      z (B, nz, 1, 1) → ConvT 4×4 → [ConvT ↑2 · BN · ReLU] × n → ConvT ↑2 · Tanh → (B, 3, R, R)
    Discriminator  (B, 3, R, R) → Conv ↓2 · LeakyReLU(0.2) → [Conv ↓2 · BN · LeakyReLU(0.2)] × n → Conv 4×4 → logit

With `upsample="resize"` each ↑2 ConvT 4×4 is a nearest-neighbour ↑2 then a Conv 3×3 (replicate-padded) instead
(Odena, Dumoulin & Olah 2016, "Deconvolution and checkerboard artifacts"): a transposed convolution
with stride 2 paints overlapping 4×4 stamps, and flat areas come out with a checkerboard of noise
unless the weights cancel exactly — the look that keeps a plain background from ever being plain.

Conditional (Mirza & Osindero 2014; the projection discriminator of Miyato & Koyama 2018): with
`classes` (a dataset's distinct captions) G reads z concatenated with the class's condition vector,
and D adds ⟨W · condition, Σ features⟩ to its logit. The condition is the class one-hot
(`conditioning="classes"`, the default) or its words at their places ("words": "1:red", "2:circle",
… — captions that share a word share that input, so what "triangle" looks like is learnt from every
triangle caption at once, not once per caption). A class-conditional GAN does not have to stretch one
Gaussian over every colour pair at once, and its in-between samples (two-tone backgrounds, mixed
blobs) go away. `truncation` ψ scales z when sampling (BigGAN's truncation trick): ψ < 1 trades
variety for cleaner images; training always uses ψ = 1.

Depth (`depth=2`, what the studio trains by default; 1 is the paper's network): one more 3×3 convolution
(· BN · activation) at every resolution in both networks. G draws its full-size image with a width-ngf
layer and then a 3×3 convolution to RGB, instead of going straight from the last ↑2 to colours; D
starts with a 3×3 convolution at full size before its first ↓2. On the demo shapes this doubles
the share of clean images (a plain background, one sharp object) at the same number of steps, for
2.6× the step time (measured in docs/gan.md).

n = log2(R / 8): 2 blocks at 32 px, 3 at 64 px (the paper's network), 4 at 128 px. Widths double
towards the 4×4 end (ngf·2ⁿ … ngf). The discriminator returns raw logits; the trainer uses
`BCEWithLogitsLoss`, which is the paper's sigmoid + BCE, computed stably.

This file needs only torch: it is copied into every exported GAN (as `dcgan.py`) so the
generator can be rebuilt from `config.json` + `generator.safetensors` anywhere.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

RESOLUTIONS = (32, 64, 128)
UPSAMPLES = ("transpose", "resize")
MAX_CLASSES = 1000
MAX_DEPTH = 4


@dataclass
class GanConfig:
    """The architecture: everything needed to rebuild the networks (saved with every checkpoint)."""

    resolution: int = 64  # output images are resolution × resolution pixels: 32, 64 or 128
    nz: int = 100  # size of the latent vector z
    ngf: int = 64  # generator width: channels of its last hidden layer (×2 per block towards z)
    ndf: int = 64  # discriminator width: channels of its first layer (×2 per block)
    channels: int = 3  # image channels (RGB)
    upsample: str = "transpose"  # the generator's ↑2: "transpose" (the paper's ConvT 4×4) or "resize" (nearest + Conv 3×3)
    classes: list[str] = field(default_factory=list)  # class names (captions) of a conditional GAN; empty: unconditional
    truncation: float = 1.0  # ψ: sampling scales z by this unless told otherwise (1: plain N(0, 1))
    conditioning: str = "classes"  # a class's condition vector: "classes" (one-hot) or "words" (its words at their places)
    depth: int = 1  # convolutions per resolution in each network: 1 is the paper's DCGAN; 2 adds a 3×3 one at each (see above)

    def __post_init__(self) -> None:
        self.classes = [str(c) for c in self.classes]
        if len(self.classes) > MAX_CLASSES or len(set(self.classes)) != len(self.classes):
            raise ValueError(f"classes must be at most {MAX_CLASSES} distinct names.")
        if not 0 <= self.truncation <= 1:
            raise ValueError(f"truncation must be between 0 and 1, not {self.truncation}.")
        if self.conditioning not in ("words", "classes"):
            raise ValueError(f"conditioning must be 'words' or 'classes', not {self.conditioning!r}.")
        if not 1 <= self.depth <= MAX_DEPTH:
            raise ValueError(f"depth must be between 1 and {MAX_DEPTH}, not {self.depth}.")
        if self.resolution not in RESOLUTIONS:
            raise ValueError(
                f"resolution must be one of {', '.join(map(str, RESOLUTIONS))}, not {self.resolution}."
            )
        if self.upsample not in UPSAMPLES:
            raise ValueError(f"upsample must be 'transpose' or 'resize', not {self.upsample!r}.")
        for name in ("nz", "ngf", "ndf", "channels"):
            value = getattr(self, name)
            if not 1 <= value <= 1024:
                raise ValueError(f"'{name}' must be between 1 and 1024, not {value}.")

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def features(self) -> list[str]:
        """The names of the condition vector's entries (empty: unconditional)."""
        if self.conditioning == "classes":
            return list(self.classes)
        return sorted({f for c in self.classes for f in caption_words(c)})

    def class_matrix(self) -> torch.Tensor:
        """(classes, features): row i is class i's condition vector (0/1)."""
        index = {f: j for j, f in enumerate(self.features)}
        m = torch.zeros(self.num_classes, len(index))
        for i, c in enumerate(self.classes):
            for f in ([c] if self.conditioning == "classes" else caption_words(c)):
                m[i, index[f]] = 1.0
        return m

    @property
    def num_blocks(self) -> int:
        """Hidden up/down blocks between the 4×4 end and the first/last full-width layer."""
        return int(math.log2(self.resolution)) - 3

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GanConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})  # saved before "upsample": the paper's


def caption_words(caption: str) -> list[str]:
    """A caption's words at their places: "a red circle" → ["0:a", "1:red", "2:circle"]."""
    return [f"{i}:{w}" for i, w in enumerate(re.findall(r"\w+", caption.lower()))]


class Generator(nn.Module):
    def __init__(self, config: GanConfig):
        super().__init__()
        self.config = config
        n, ngf = config.num_blocks, config.ngf
        width = ngf * 2**n
        layers: list[nn.Module] = [  # (B, nz [+ classes], 1, 1) → (B, width, 4, 4)
            nn.ConvTranspose2d(config.nz + len(config.features), width, 4, 1, 0, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(True),
        ]
        for _ in range(n):  # each block doubles the size and halves the width
            layers += [*_up(width, width // 2, config.upsample), nn.BatchNorm2d(width // 2), nn.ReLU(True)]
            width //= 2
            layers += _more(width, config.depth - 1, nn.ReLU(True))
        if config.depth > 1:  # at full size: width channels, then the colours
            layers += [*_up(width, width, config.upsample), nn.BatchNorm2d(width), nn.ReLU(True)]
            layers += _more(width, config.depth - 2, nn.ReLU(True))
            layers += [nn.Conv2d(width, config.channels, 3, 1, 1, bias=False, padding_mode="replicate"), nn.Tanh()]
        else:
            layers += [*_up(width, config.channels, config.upsample), nn.Tanh()]  # (B, 3, R, R)
        self.main = nn.Sequential(*layers)
        self.register_buffer("class_matrix", config.class_matrix(), persistent=False)  # rebuilt from the config

    def forward(
        self, z: torch.Tensor, labels: torch.Tensor | None = None, truncation: float | None = None
    ) -> torch.Tensor:
        """z (B, nz) or (B, nz, 1, 1); labels (B,) class indices or (B, classes) weights (a
        conditional GAN needs them); truncation ψ (None: the config's)."""
        z = z.flatten(1) * (self.config.truncation if truncation is None else truncation)
        if self.config.num_classes:
            if labels is None:
                raise ValueError("this GAN is conditional: pass labels (class indices) with z.")
            z = torch.cat([z, condition(self.class_matrix, labels).to(z.dtype)], dim=1)
        return self.main(z[:, :, None, None])  # (B, 3, R, R) in [-1, 1]


def _more(width: int, count: int, act: nn.Module) -> list[nn.Module]:
    """`count` more 3×3 convolutions at the same size and width, each · BN · `act` (replicate-padded,
    as `_up`'s: a flat map stays flat up to the edge)."""
    out: list[nn.Module] = []
    for _ in range(max(0, count)):
        conv = nn.Conv2d(width, width, 3, 1, 1, bias=False, padding_mode="replicate")
        out += [conv, nn.BatchNorm2d(width), act]
    return out


def _up(c_in: int, c_out: int, upsample: str) -> list[nn.Module]:
    """Double the size: (B, c_in, H, W) → (B, c_out, 2H, 2W)."""
    if upsample == "resize":
        # replicate padding: a flat map stays flat up to the edge (zero padding darkens a frame
        # around every image that the generator would have to learn to cancel)
        conv = nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False, padding_mode="replicate")
        return [nn.Upsample(scale_factor=2, mode="nearest"), conv]
    return [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False)]


class Discriminator(nn.Module):
    def __init__(self, config: GanConfig):
        super().__init__()
        self.config = config
        n, width = config.num_blocks, config.ndf
        layers: list[nn.Module] = []  # no batch norm on the input layers (as in the paper)
        if config.depth > 1:  # a 3×3 convolution at full size first
            layers += [nn.Conv2d(config.channels, width, 3, 1, 1, bias=False), nn.LeakyReLU(0.2, inplace=True)]
        layers += [
            nn.Conv2d(config.channels if config.depth == 1 else width, width, 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        for _ in range(n):
            layers += _more(width, config.depth - 1, nn.LeakyReLU(0.2, inplace=True))
            layers += [
                nn.Conv2d(width, width * 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(width * 2),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            width *= 2
        layers.append(nn.Conv2d(width, 1, 4, 1, 0, bias=False))  # (B, width, 4, 4) → (B, 1, 1, 1)
        self.main = nn.Sequential(*layers)
        # the projection: W · the class's condition vector · the 4 × 4 features summed over positions
        self.embed = nn.Linear(len(config.features), width, bias=False) if config.num_classes else None
        self.register_buffer("class_matrix", config.class_matrix(), persistent=False)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        features = self.main[:-1](x)  # (B, width, 4, 4)
        logits = self.main[-1](features).flatten()  # (B,) logits: > 0 means "real"
        if self.embed is not None:
            if labels is None:
                raise ValueError("this discriminator is conditional: pass labels with x.")
            projected = self.embed(condition(self.class_matrix, labels).to(features.dtype))
            logits = logits + (projected * features.sum(dim=(2, 3))).sum(dim=1)
        return logits


def condition(class_matrix: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(B, features): labels (B,) class indices, or (B, classes) weights that blend classes."""
    if labels.dim() == 1:
        return class_matrix[labels.long()]
    return labels.to(class_matrix.dtype) @ class_matrix


def init_weights(module: nn.Module) -> None:
    """The paper's init: conv weights N(0, 0.02); batch-norm scale N(1, 0.02), shift 0."""
    if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, 0.0, 0.02)


def build_models(config: GanConfig, seed: int | None = None) -> tuple[Generator, Discriminator]:
    """A freshly initialised generator and discriminator (seeded without touching the global RNG)."""
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        generator, discriminator = Generator(config), Discriminator(config)
        generator.apply(init_weights)
        discriminator.apply(init_weights)
    return generator, discriminator


def load_generator(folder: str | Path, device: str = "cpu") -> Generator:
    """Rebuild an exported/trained generator from `config.json` + `generator.safetensors`, in eval mode."""
    from safetensors.torch import load_file

    folder = Path(folder)
    data = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    generator = Generator(GanConfig.from_dict(data.get("model", data)))
    generator.load_state_dict(load_file(str(folder / "generator.safetensors"), device="cpu"))
    return generator.to(device).eval()


def sample_inputs(seed: int, config: GanConfig) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The studio's latent (nz,) for a seed — N(0, 1) from a CPU generator, the same on every device —
    and, for a conditional GAN, its class (a 0-d index) drawn uniformly after it from the same generator."""
    g = torch.Generator(device="cpu").manual_seed(int(seed))
    z = torch.randn(config.nz, generator=g)
    label = torch.randint(config.num_classes, (), generator=g) if config.num_classes else None
    return z, label
