"""What keeps a DCGAN's pictures clean on a CPU budget: an R1 penalty on the discriminator, an
exponential moving average (EMA) of the generator, and shifted views for the discriminator.

- R1 (Mescheder et al. 2018, "Which training methods for GANs do actually converge?"; StyleGAN's
  default): γ/2 · E‖∇ₓD(x)‖² over real images, added to D's loss. D cannot grow steep around the
  data, so G is not pushed around by its noise: on the demo shapes the texture and checkerboard in
  the backgrounds go away and the colours stay saturated (measured in engines/gan/train.py).
- EMA of G's weights (Karras et al. 2018; BigGAN): the generator users get, the samples and the scores
  average the last ~1/(1−decay) steps, smoothing the step-to-step wobble a GAN's generator has.
  torch's `AveragedModel` does the averaging, its batch-norm statistics included (`use_buffers`);
  the decay ramps up over the first steps (min(decay, (1+n)/(10+n))) so that early samples are not
  an average over the random start.
- Translation of every image D sees (DiffAugment, Zhao et al. 2020, "Differentiable augmentation
  for data-efficient GAN training"): real and generated images alike are shifted by up to
  `shift` of their side, the edge pixels repeated into the gap, in both networks' steps. D cannot
  memorise a few hundred images pixel for pixel, and since G's images are shifted the same way,
  G is not taught to draw shifted images. Written here because the paper's code is not a package;
  it is a few lines of indexing.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F


def discriminator_loss(
    discriminator: Any,
    real: torch.Tensor,
    fake: torch.Tensor,
    r1_gamma: float,
    labels_real: torch.Tensor | None = None,
    labels_fake: torch.Tensor | None = None,
):
    """(loss_d, logits_real, logits_fake): the DCGAN's binary cross-entropy on real and generated
    images (with their classes when D is conditional), plus the R1 penalty on the real ones when
    `r1_gamma` > 0."""
    if r1_gamma:
        real = real.detach().requires_grad_(True)
    logits_real = discriminator(real, labels_real)  # (B,)
    logits_fake = discriminator(fake.detach(), labels_fake)
    loss = F.binary_cross_entropy_with_logits(logits_real, torch.ones_like(logits_real))
    loss = loss + F.binary_cross_entropy_with_logits(logits_fake, torch.zeros_like(logits_fake))
    if r1_gamma:
        (grad,) = torch.autograd.grad(logits_real.sum(), real, create_graph=True)
        loss = loss + r1_gamma / 2 * grad.pow(2).sum(dim=(1, 2, 3)).mean()
    return loss, logits_real.detach(), logits_fake.detach()


def ema_generator(generator: Any, decay: float) -> Any | None:
    """An `AveragedModel` that follows `generator` (call `.update_parameters(generator)` after each
    step); None when `decay` is 0 (the generator itself is used)."""
    if not decay:
        return None
    from torch.optim.swa_utils import AveragedModel

    def avg(averaged: torch.Tensor, current: torch.Tensor, n: torch.Tensor | int) -> torch.Tensor:
        d = min(decay, (1 + int(n)) / (10 + int(n)))
        return averaged * d + current * (1 - d)

    return AveragedModel(generator, avg_fn=avg, use_buffers=True)


def translate(images: torch.Tensor, shift: float, generator: torch.Generator) -> torch.Tensor:
    """(B, C, H, W) → the same, each image moved by its own random offset of up to `shift` × its
    side in x and y, the edges repeated into the gap (a plain background stays plain). Offsets come
    from `generator` (on the CPU), so a step's augmentation is a function of its seed; gradients
    flow through to the images."""
    b, c, h, w = images.shape
    s = int(round(shift * h))
    if s < 1:
        return images
    padded = F.pad(images, (s, s, s, s), mode="replicate")
    oy, ox = (torch.randint(0, 2 * s + 1, (b,), generator=generator).to(images.device) for _ in range(2))
    rows = (oy[:, None] + torch.arange(h, device=images.device))[:, None, :, None]  # (B, 1, H, 1)
    cols = (ox[:, None] + torch.arange(w, device=images.device))[:, None, None, :]  # (B, 1, 1, W)
    batch = torch.arange(b, device=images.device)[:, None, None, None]
    chans = torch.arange(c, device=images.device)[None, :, None, None]
    return padded[batch, chans, rows, cols]
