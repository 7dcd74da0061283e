"""A vocoder that needs no weights: SpeechT5's log-mel frames → waveform by Griffin-Lim.

Written here because the field's versions (torchaudio.transforms.GriffinLim, librosa's
`mel_to_audio`) come with packages this project does not otherwise need (no CPU torchaudio build is
installed alongside this torch); it is the textbook algorithm (Griffin & Lim 1984, with the "fast"
momentum of Perraudin et al. 2013) over `torch.stft`, about twenty lines.

The mel frames are the ones `SpeechT5FeatureExtractor(audio_target=…)` computes — log10 of a
Slaney mel filter bank over the magnitude STFT (1024-point FFT, 64 ms Hann window, 16 ms hop at
16 kHz) — so a model trained on those frames is heard through the same transform run backwards. A
neural vocoder (SpeechT5's HiFi-GAN) sounds better; its weights come from the hub, and a model
folder with a `vocoder/` subfolder uses it instead.
"""

from __future__ import annotations

from typing import Any

import numpy as np

ITERATIONS = 32  # measured: intelligibility stops improving past ~30
MOMENTUM = 0.99
MIN_FRAMES = 8  # the STFT's reflection padding needs more than half a window of samples


def mel_to_audio(log_mel: Any, feature_extractor: Any, *, iterations: int = ITERATIONS) -> np.ndarray:
    """(frames, mels) log10 mel frames → (samples,) float32 waveform at the extractor's rate."""
    import torch

    fe = feature_extractor
    log_mel = torch.as_tensor(np.asarray(log_mel, dtype=np.float32)).reshape(-1, fe.num_mel_bins)  # (T, M)
    if len(log_mel) < MIN_FRAMES:  # a voice that stopped at once: silence, long enough for the STFT
        quiet = float(log_mel.min()) if len(log_mel) else float(np.log10(fe.mel_floor))
        log_mel = torch.cat([log_mel, torch.full((MIN_FRAMES - len(log_mel), fe.num_mel_bins), quiet)])
    filters = torch.as_tensor(np.asarray(fe.mel_filters, dtype=np.float32))  # (F, M)
    mel = torch.pow(10.0, log_mel).T  # (M, T)
    # magnitude whose mel projection is closest to `mel`, kept non-negative
    magnitude = torch.linalg.lstsq(filters.T, mel, driver="gelsd").solution.clamp_min(0.0)  # (F, T)
    window = torch.hann_window(fe.sample_size, periodic=True)
    stft = dict(n_fft=fe.n_fft, hop_length=fe.sample_stride, win_length=fe.sample_size, window=window,
                center=True, return_complex=True)
    length = (magnitude.shape[1] - 1) * fe.sample_stride
    generator = torch.Generator().manual_seed(0)  # the same frames always sound the same
    angles = torch.polar(torch.ones_like(magnitude), 2 * np.pi * torch.rand(magnitude.shape, generator=generator))
    previous = torch.zeros_like(angles)
    for _ in range(iterations):
        wave = torch.istft(magnitude * angles, n_fft=fe.n_fft, hop_length=fe.sample_stride,
                           win_length=fe.sample_size, window=window, center=True, length=length)
        rebuilt = torch.stft(wave, **stft)
        accelerated = rebuilt - MOMENTUM / (1 + MOMENTUM) * previous
        angles = accelerated / accelerated.abs().clamp_min(1e-8)
        previous = rebuilt
    wave = torch.istft(magnitude * angles, n_fft=fe.n_fft, hop_length=fe.sample_stride, win_length=fe.sample_size,
                       window=window, center=True, length=length)
    peak = float(wave.abs().max()) if wave.numel() else 0.0
    if peak > 0.99:
        wave = wave * (0.99 / peak)
    return wave.numpy().astype(np.float32)


__all__ = ["mel_to_audio", "ITERATIONS"]
