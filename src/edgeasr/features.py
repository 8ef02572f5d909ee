"""The feature frontend's definition: its settings and its constant tables, on numpy.

A model's log-mel frontend (80 bands, 25 ms window, 10 ms hop) is part of its exported graph, so
the features a model was trained on are the features it sees on a device or in Triton. This
module defines that frontend without torch: :class:`FrontendConfig` (recorded in every model
card), the number of frames a length of audio gives, and the constant tables the graph holds
(Hann window, factored DFT, HTK mel filters). The torch module that trains and exports them is
:class:`edgeasr.training.frontend.LogMelFrontend`; :func:`log_mel` is the same computation on
numpy, for checks and for tools that look at audio without a model.

The short-time Fourier transform is framing plus a 512-point DFT factored Cooley-Tukey style into
a 16-point DFT, twiddle factors and a 32-point DFT, so the graph holds only Reshape, Slice, Pad,
Concat, MatMul, Mul, Add and Log: operators that onnxruntime and TensorRT both have. It matches
``torchaudio.transforms.MelSpectrogram(..., center=True, pad_mode="constant", mel_scale="htk")``
(``tests/test_features.py`` holds the tolerance). Zero padding is used at both ends (not
reflection) so that a padded batch row and the same audio alone give identical frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "DFT_FACTORS",
    "FrontendConfig",
    "dft_tables",
    "frame_count",
    "hann_window",
    "log_mel",
    "mel_filterbank",
]

DFT_FACTORS = (16, 32)
"""The 512-point DFT as N1 x N2: sample n = N2 * n1 + n2, bin k = k1 + N1 * k2."""


@dataclass(frozen=True)
class FrontendConfig:
    """Parameters of the log-mel frontend (fixed per model; recorded in its card)."""

    sample_rate: int = 16_000  # input sample rate in Hz
    n_fft: int = 512  # FFT size; the window is zero-padded to it, centred
    win_length: int = 400  # analysis window, 25 ms at 16 kHz
    hop_length: int = 160  # frame shift, 10 ms at 16 kHz
    n_mels: int = 80  # mel bands
    f_min: float = 0.0  # lowest mel band edge, Hz
    f_max: float = 8_000.0  # highest mel band edge, Hz (Nyquist at 16 kHz)
    log_floor: float = 1e-6  # added before the logarithm so silence stays finite


def frame_count(n_samples: int, hop_length: int = 160) -> int:
    """Feature frames for ``n_samples`` of audio: ``n_samples // hop + 1`` (centred framing)."""
    return int(n_samples) // hop_length + 1


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + f / 700.0)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (m / 2595.0) - 1.0)


def mel_filterbank(cfg: FrontendConfig) -> np.ndarray:
    """Triangular HTK-scale mel filters without area normalisation, float32 (n_fft // 2 + 1, n_mels).

    The construction of torchaudio's ``melscale_fbanks(norm=None, mel_scale="htk")``, computed in
    float64 and rounded once.
    """
    n_freqs = cfg.n_fft // 2 + 1
    all_freqs = np.linspace(0, cfg.sample_rate // 2, n_freqs, dtype=np.float64)
    m_pts = np.linspace(_hz_to_mel(np.float64(cfg.f_min)), _hz_to_mel(np.float64(cfg.f_max)), cfg.n_mels + 2)
    f_pts = _mel_to_hz(m_pts)
    f_diff = f_pts[1:] - f_pts[:-1]
    slopes = f_pts[None, :] - all_freqs[:, None]  # (n_freqs, n_mels + 2)
    down = -slopes[:, :-2] / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    return np.maximum(np.minimum(down, up), 0.0).astype(np.float32)


def _cos_sin(rows: int, cols: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    angle = 2.0 * np.pi * np.outer(np.arange(rows, dtype=np.float64), np.arange(cols, dtype=np.float64)) / n
    return np.cos(angle).astype(np.float32), np.sin(angle).astype(np.float32)


def dft_tables(n_fft: int = 512) -> dict[str, np.ndarray]:
    """Cosine and sine tables of the factored DFT, float32, by the names the graph gives them.

    ``c16``/``s16`` (k1, n1), the twiddles ``tw_c``/``tw_s`` (k1, n2) and ``c32``/``s32`` (n2, k2).
    """
    n1, n2 = DFT_FACTORS
    if n_fft != n1 * n2:
        raise ValueError(f"the factored DFT has {n1 * n2} points, not {n_fft}")
    c16, s16 = _cos_sin(n1, n1, n1)
    tw_c, tw_s = _cos_sin(n1, n2, n_fft)
    c32, s32 = _cos_sin(n2, n2, n2)
    return {"c16": c16, "s16": s16, "tw_c": tw_c, "tw_s": tw_s, "c32": c32, "s32": s32}


def hann_window(win_length: int) -> np.ndarray:
    """Periodic Hann window, float32 (as ``torch.hann_window(win_length, periodic=True)``)."""
    n = np.arange(win_length, dtype=np.float64)
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * n / win_length)).astype(np.float32)


def log_mel(audio: np.ndarray, cfg: FrontendConfig = FrontendConfig()) -> np.ndarray:
    """Un-normalised log-mel energies of one mono utterance, float32 (n_mels, frames).

    The frontend's computation with numpy's FFT in place of the factored DFT: the same framing,
    window, filters and floor, so it agrees with the model's frontend to float32 rounding.
    """
    x = np.asarray(audio, dtype=np.float32).reshape(-1)
    n_frames = frame_count(x.shape[0], cfg.hop_length)
    half = cfg.win_length // 2
    padded = np.zeros(half + n_frames * cfg.hop_length + cfg.win_length, dtype=np.float32)
    padded[half : half + x.shape[0]] = x
    starts = np.arange(n_frames) * cfg.hop_length
    frames = padded[starts[:, None] + np.arange(cfg.win_length)[None, :]] * hann_window(cfg.win_length)
    side = (cfg.n_fft - cfg.win_length) // 2
    spectrum = np.fft.rfft(np.pad(frames, ((0, 0), (side, side))).astype(np.float64), axis=1)
    power = (spectrum.real**2 + spectrum.imag**2).astype(np.float32)  # (frames, n_freqs)
    mel = power @ mel_filterbank(cfg)
    return np.log(mel + np.float32(cfg.log_floor)).T.astype(np.float32)
