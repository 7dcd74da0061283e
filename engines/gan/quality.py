"""How good and how varied a GAN's samples are, with no downloaded weights.

Quality — KID in a fixed random-feature space; lower is better; comparable within one dataset only.
  FID/KID compare real and generated images in the feature space of an Inception network, which
  would have to be downloaded. Here the features come from a small conv network with fixed,
  seeded random weights: per layer the mean and the spatial spread of each channel (colour, edges,
  flat areas against texture or noise), plus a coarse 2 × 2 layout. Each of these seven groups is
  centred on the real images and scaled to count equally. The score is the unbiased squared MMD with
  KID's polynomial kernel k(x, y) = (x·y / d + 1)³ between the two feature sets: about 0 when the
  generated images are distributed like the real ones, larger the further apart they are. Its scale
  depends on the dataset, so compare scores of one dataset (e.g. step 0 against the last step),
  never across datasets.

Diversity — mean pairwise distance between generated images divided by the same for real images
  (32 × 32 pixels). About 1 is as varied as the data; near 0 means the generator makes near-copies
  of one image (mode collapse), which the trainer reports as `mode_collapse_warning`.

Clean share — on shapes-world data (engines/shapes) only: the share of generated images that the
  shapes detector reads as clean (a plain background and one sharp object; engines/shapes/detect.py).
  The random-feature score improves long before the samples are clean — early GANs paint blurry
  blobs on noisy backgrounds — so this is the number to watch there. It is None when the real
  images are not shapes-world images (fewer than CLEAN_REAL_AT_LEAST of them read as clean).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

FEATURE_SEED = 20240601  # fixed forever: changing it changes every score
FEATURE_SIZE = 32  # images are resized to this before features and distances
MODE_COLLAPSE_BELOW = 0.3  # diversity under this → mode_collapse_warning
CLEAN_REAL_AT_LEAST = 0.9  # the real images count as shapes-world data when this share reads as clean
CLEAN_REAL_CHECKED = 64  # real images the detector reads to decide that


class RandomFeatures(nn.Module):
    """A fixed, seeded random conv network: (B, 3, H, W) in [-1, 1] → groups of features."""

    def __init__(self, seed: int = FEATURE_SEED):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.convs = nn.ModuleList(
            [
                nn.Conv2d(3, 32, 3, padding=1),
                nn.Conv2d(32, 64, 3, padding=1),
                nn.Conv2d(64, 128, 3, padding=1),
            ]
        )
        with torch.no_grad():
            for conv in self.convs:  # He init keeps activations O(1) through the ReLUs
                fan_in = conv.in_channels * 9
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=g) * (2.0 / fan_in) ** 0.5)
                conv.bias.copy_(torch.randn(conv.bias.shape, generator=g) * 0.1)
        self.requires_grad_(False)
        self.eval()

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Seven feature groups, each (B, n_g): per layer the mean and the spatial spread of every
        channel (what is there; flat colour or texture), then the last layer on a 2 × 2 grid (where)."""
        x = resize(images.float())  # (B, 3, 32, 32)
        groups = []
        for conv in self.convs:
            a = F.relu(conv(x))  # (B, C, 32|16|8, 32|16|8)
            groups.append(a.mean(dim=(2, 3)))  # (B, C)
            groups.append(a.std(dim=(2, 3)))  # (B, C): high for noise and texture, low for flat areas
            x = F.avg_pool2d(a, 2)
        groups.append(F.adaptive_avg_pool2d(x, 2).flatten(1))  # (B, 4·128)
        return groups


def resize(images: torch.Tensor, size: int = FEATURE_SIZE) -> torch.Tensor:
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", antialias=True, align_corners=False)


def polynomial_mmd2(x: torch.Tensor, y: torch.Tensor, d: float | None = None) -> float:
    """Unbiased squared MMD between feature sets x (m, D) and y (n, D) with KID's cubic kernel
    k(a, b) = (a·b / d + 1)³, d = D unless given."""
    m, n = x.shape[0], y.shape[0]
    d = float(d if d is not None else x.shape[1])
    if m < 2 or n < 2:
        raise ValueError("the quality score needs at least 2 real and 2 generated images.")
    x, y = x.double(), y.double()
    kxx = (x @ x.T / d + 1) ** 3  # (m, m)
    kyy = (y @ y.T / d + 1) ** 3  # (n, n)
    kxy = (x @ y.T / d + 1) ** 3  # (m, n)
    xx = (kxx.sum() - kxx.diagonal().sum()) / (m * (m - 1))
    yy = (kyy.sum() - kyy.diagonal().sum()) / (n * (n - 1))
    return float(xx + yy - 2 * kxy.mean())


def mean_pairwise_distance(images: torch.Tensor) -> float:
    """Mean L2 distance between all pairs of images (B, 3, H, W), at 32 × 32 pixels."""
    flat = resize(images.float()).flatten(1)  # (B, 3·32·32)
    dist = torch.cdist(flat, flat)  # (B, B)
    b = flat.shape[0]
    return float(dist.sum() / max(b * (b - 1), 1))


@dataclass
class QualityReport:
    quality: float  # KID in a fixed random-feature space; lower is better
    diversity: float  # generated images' spread / real images' spread (≈1 good, ≈0 collapsed)
    mode_collapse_warning: bool
    message: str  # one line for people ("" when nothing to say)
    clean_share: float | None = None  # shapes-world data only: share of samples the detector reads as clean


class QualityScorer:
    """Holds the real images' features once; `score(fake)` compares a batch of generated images."""

    def __init__(self, real: torch.Tensor, batch_size: int = 128):
        """`real`: (N, 3, H, W) in [-1, 1] (uint8 0..255 is accepted too)."""
        if real.shape[0] < 2:
            raise ValueError("the quality score needs at least 2 real images.")
        self.features = RandomFeatures()
        self.batch_size = batch_size
        real = _as_float(real)
        groups = self._groups(real)
        # Centre each group on the real images and scale it so that it adds 1/7 to a real image's
        # expected squared norm: every group counts the same, whatever its width.
        self.means = [g.mean(dim=0) for g in groups]
        self.scales = [(g.var(dim=0).sum() * len(groups)).sqrt().clamp_min(1e-6) for g in groups]
        self.real_features = self._normalise(groups)  # (N, D), E‖f‖² ≈ 1
        self.real_spread = mean_pairwise_distance(real)
        self.shapes_world = clean_share(real[:CLEAN_REAL_CHECKED]) >= CLEAN_REAL_AT_LEAST

    def _groups(self, images: torch.Tensor) -> list[torch.Tensor]:
        chunks = [
            self.features(images[i : i + self.batch_size].cpu())
            for i in range(0, len(images), self.batch_size)
        ]
        return [torch.cat(parts) for parts in zip(*chunks, strict=True)]

    def _normalise(self, groups: list[torch.Tensor]) -> torch.Tensor:
        parts = [(g - m) / s for g, m, s in zip(groups, self.means, self.scales, strict=True)]
        return torch.cat(parts, dim=1)

    def score(self, fake: torch.Tensor) -> QualityReport:
        fake = _as_float(fake)
        feats = self._normalise(self._groups(fake))
        quality = polynomial_mmd2(self.real_features, feats, d=1.0)  # features already carry the 1/d
        diversity = mean_pairwise_distance(fake) / max(self.real_spread, 1e-8)
        collapsed = diversity < MODE_COLLAPSE_BELOW
        message = (
            f"Possible mode collapse: the samples are near-copies of each other (diversity {diversity:.2f} of "
            "the real images'). Try a lower learning rate, more images or 'flip' augmentation, or another seed."
            if collapsed
            else ""
        )
        clean = round(clean_share(fake), 4) if self.shapes_world else None
        return QualityReport(round(quality, 6), round(diversity, 4), collapsed, message, clean)


def clean_share(images: torch.Tensor) -> float:
    """Share of images (B, 3, H, W) in [-1, 1] that the shapes detector reads as clean."""
    from engines.shapes.detect import clean_share as detected_clean_share

    pixels = ((_as_float(images).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)  # as saved to PNG
    return detected_clean_share(pixels.permute(0, 2, 3, 1).cpu().numpy())


def _as_float(images: torch.Tensor) -> torch.Tensor:
    if images.dtype == torch.uint8:
        return images.float() / 127.5 - 1.0
    return images.float()
