"""What keeps a DCGAN's pictures clean on a CPU budget: an R1 penalty on the discriminator and an
exponential moving average (EMA) of the generator.

- R1 (Mescheder et al. 2018, "Which training methods for GANs do actually converge?"; StyleGAN's
  default): γ/2 · E‖∇ₓD(x)‖² over real images, added to D's loss. D cannot grow steep around the
  data, so G is not pushed around by its noise: on the demo shapes the texture and checkerboard in
  the backgrounds go away and the colours stay saturated (measured in engines/gan/train.py).
- EMA of G's weights (Karras et al. 2018; BigGAN): the generator users get, the samples and the scores
  average the last ~1/(1−decay) steps, smoothing the step-to-step wobble a GAN's generator has.
  torch's `AveragedModel` does the averaging, its batch-norm statistics included (`use_buffers`);
  the decay ramps up over the first steps (min(decay, (1+n)/(10+n))) so that early samples are not
  an average over the random start.
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
