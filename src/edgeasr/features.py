"""The log-mel feature frontend, as a torch module that exports to ONNX and builds in TensorRT.

Training and serving share this one module: it sits inside the exported graph, so the features a
model was trained on are the features it sees on a device or in Triton, bit for bit.

The short-time Fourier transform is written out as framing (reshape and slices) and a factored DFT
(small matrix products with fixed cosine and sine tables), so the graph holds only Reshape, Slice,
Pad, Concat, MatMul, Mul, Add and Log: operators that onnxruntime and TensorRT both have
(TensorRT lacks a general STFT), with about 25 k constants in all (the mel filters included). It matches
``torchaudio.transforms.MelSpectrogram(..., center=True, pad_mode="constant", mel_scale="htk")``;
``tests/test_features.py`` holds the tolerance.

Zero padding is used at both ends (not reflection) so that a padded batch row and the same audio
alone give identical frames: padding only ever adds zeros, and frames past a row's length are
masked out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["FrontendConfig", "LogMelFrontend", "feature_lengths", "vtlp_matrix"]


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


def feature_lengths(audio_lengths: torch.Tensor, hop_length: int = 160) -> torch.Tensor:
    """Frames produced for each audio length: ``length // hop + 1`` (centred framing)."""
    return torch.div(audio_lengths, hop_length, rounding_mode="floor") + 1


def _hz_to_mel(f: torch.Tensor) -> torch.Tensor:
    return 2595.0 * torch.log10(1.0 + f / 700.0)


def _mel_to_hz(m: torch.Tensor) -> torch.Tensor:
    return 700.0 * (10.0 ** (m / 2595.0) - 1.0)


def mel_filterbank(cfg: FrontendConfig) -> torch.Tensor:
    """Triangular HTK-scale mel filters without area normalisation, shape (n_fft // 2 + 1, n_mels).

    The same construction as torchaudio's ``melscale_fbanks(norm=None, mel_scale="htk")``, written
    out so that the frontend needs torch alone.
    """
    n_freqs = cfg.n_fft // 2 + 1
    all_freqs = torch.linspace(0, cfg.sample_rate // 2, n_freqs, dtype=torch.float64)
    m_pts = torch.linspace(
        _hz_to_mel(torch.tensor(cfg.f_min, dtype=torch.float64)),
        _hz_to_mel(torch.tensor(cfg.f_max, dtype=torch.float64)),
        cfg.n_mels + 2,
        dtype=torch.float64,
    )
    f_pts = _mel_to_hz(m_pts)
    f_diff = f_pts[1:] - f_pts[:-1]
    slopes = f_pts.unsqueeze(0) - all_freqs.unsqueeze(1)  # (n_freqs, n_mels + 2)
    down = -slopes[:, :-2] / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    return torch.clamp(torch.minimum(down, up), min=0.0).float()


def vtlp_matrix(alpha: float, n_freqs: int, sample_rate: int = 16_000, boundary_hz: float = 4_800.0) -> torch.Tensor:
    """Vocal-tract-length perturbation of a power spectrum as a matrix, shape (n_freqs, n_freqs).

    ``vtlp_matrix(alpha, F) @ power`` moves the energy at frequency f to ``alpha * f`` up to a
    boundary (``boundary_hz * min(alpha, 1)``), and above it maps the rest of the band linearly
    onto itself so that the Nyquist frequency stays where it is (Jaitly and Hinton, 2013). Each
    output bin reads the input at its source frequency by linear interpolation. ``alpha > 1``
    sounds like a shorter vocal tract (formants move up), ``alpha < 1`` like a longer one; the
    pitch and the timing do not change. Training only: the exported frontend never warps.
    """
    if not 0.5 <= alpha <= 2.0:
        raise ValueError(f"VTLP factor {alpha} is outside [0.5, 2]")
    nyquist = sample_rate / 2.0
    out_hz = torch.linspace(0.0, nyquist, n_freqs, dtype=torch.float64)
    edge = boundary_hz * min(alpha, 1.0)  # output frequency where the two linear pieces meet
    below = out_hz / alpha
    above = nyquist - (nyquist - out_hz) * (nyquist - edge / alpha) / (nyquist - edge)
    source = torch.where(out_hz <= edge, below, above) / nyquist * (n_freqs - 1)  # in input bins
    low = source.floor().clamp(0, n_freqs - 1)
    frac = source - low
    high = (low + 1).clamp(max=n_freqs - 1)
    rows = torch.arange(n_freqs)
    w = torch.zeros(n_freqs, n_freqs, dtype=torch.float64)
    w.index_put_((rows, low.long()), 1.0 - frac, accumulate=True)
    w.index_put_((rows, high.long()), frac, accumulate=True)
    return w.float()


def _cos_sin(rows: int, cols: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    angle = (
        2.0
        * math.pi
        * torch.outer(torch.arange(rows, dtype=torch.float64), torch.arange(cols, dtype=torch.float64))
        / n
    )
    return torch.cos(angle).float(), torch.sin(angle).float()


class LogMelFrontend(nn.Module):
    """Raw 16 kHz PCM (batch, samples) and lengths -> normalised log-mel (batch, n_mels, frames).

    The power spectrum is computed as framing by reshapes and slices, then a 512-point DFT
    factored Cooley-Tukey style into a 16-point DFT, twiddle factors and a 32-point DFT, all
    as small matrix products: about 5 k constants instead of a 200 k-weight DFT convolution,
    fewer multiply-adds, and only MatMul, Mul, Add, Reshape, Slice, Pad and Concat in the graph.

    Feature normalisation uses a fixed per-band mean and standard deviation (buffers set from
    training data by :meth:`set_normalization`), never per-utterance statistics, so streaming
    chunks and whole utterances see the same scale.
    """

    _N1, _N2 = 16, 32  # n_fft = N1 * N2; sample n = N2 * n1 + n2, bin k = k1 + N1 * k2

    def __init__(self, cfg: FrontendConfig = FrontendConfig()) -> None:
        super().__init__()
        if cfg.n_fft != self._N1 * self._N2 or cfg.win_length % 2 or cfg.win_length > cfg.n_fft:
            raise ValueError("LogMelFrontend supports n_fft=512 and an even window of at most 512 samples")
        if not 2 * cfg.hop_length < cfg.win_length <= 3 * cfg.hop_length:
            raise ValueError("LogMelFrontend needs a window longer than two hops and at most three")
        self.cfg = cfg
        c16, s16 = _cos_sin(self._N1, self._N1, self._N1)  # (k1, n1)
        tw_c, tw_s = _cos_sin(self._N1, self._N2, cfg.n_fft)  # twiddles (k1, n2)
        c32, s32 = _cos_sin(self._N2, self._N2, self._N2)  # (n2, k2)
        for name, value in (("c16", c16), ("s16", s16), ("tw_c", tw_c), ("tw_s", tw_s), ("c32", c32), ("s32", s32)):
            self.register_buffer(name, value, persistent=False)
        self.register_buffer("window", torch.hann_window(cfg.win_length, periodic=True), persistent=False)
        self.register_buffer("mel", mel_filterbank(cfg).t().contiguous(), persistent=False)  # (M, F)
        self.register_buffer("mean", torch.zeros(cfg.n_mels, 1))
        self.register_buffer("std", torch.ones(cfg.n_mels, 1))

    @property
    def n_freqs(self) -> int:
        return self.cfg.n_fft // 2 + 1

    def frames(self, audio: torch.Tensor) -> torch.Tensor:
        """Hann-windowed centred frames (batch, frames, n_fft), zero-padded as torch.stft does."""
        cfg = self.cfg
        batch, length = audio.shape
        n_frames = length // cfg.hop_length + 1
        n_blocks = n_frames + 2  # each frame spans two whole hops and part of a third
        half = cfg.win_length // 2
        x = nn.functional.pad(audio, (half, n_blocks * cfg.hop_length - half - length))
        blocks = x.reshape(batch, n_blocks, cfg.hop_length)
        rest = cfg.win_length - 2 * cfg.hop_length
        frames = torch.cat([blocks[:, :-2], blocks[:, 1:-1], blocks[:, 2:, :rest]], dim=2) * self.window
        side = (cfg.n_fft - cfg.win_length) // 2
        return nn.functional.pad(frames, (side, side))

    def power_spectrogram(self, audio: torch.Tensor) -> torch.Tensor:
        """|STFT|^2 of (batch, samples) audio, shape (batch, n_fft // 2 + 1, frames)."""
        frames = self.frames(audio)
        batch = frames.shape[0]
        z = frames.reshape(batch, -1, self._N1, self._N2)  # (.., n1, n2)
        yr = torch.matmul(self.c16, z)  # 16-point DFT over n1: exp(-i a) = cos a - i sin a
        yi = -torch.matmul(self.s16, z)
        ar = yr * self.tw_c + yi * self.tw_s  # times the twiddle exp(-2 pi i k1 n2 / n_fft)
        ai = yi * self.tw_c - yr * self.tw_s
        xr = torch.matmul(ar, self.c32) + torch.matmul(ai, self.s32)  # 32-point DFT over n2
        xi = torch.matmul(ai, self.c32) - torch.matmul(ar, self.s32)
        power = (xr * xr + xi * xi).transpose(2, 3).reshape(batch, -1, self.cfg.n_fft)  # bin k = 16 k2 + k1
        return power[:, :, : self.n_freqs].transpose(1, 2)

    def log_mel(self, audio: torch.Tensor, warp: torch.Tensor | None = None) -> torch.Tensor:
        """Un-normalised log-mel energies, shape (batch, n_mels, frames).

        ``warp`` (training only): one VTLP factor per row (see :func:`vtlp_matrix`); 1.0 is none.
        """
        filters = self.mel
        if warp is not None:
            rate = self.cfg.sample_rate
            warps = [vtlp_matrix(float(a), self.n_freqs, rate).to(self.mel) for a in warp.tolist()]
            filters = torch.matmul(self.mel.unsqueeze(0), torch.stack(warps))  # (batch, M, F)
        mel = torch.matmul(filters, self.power_spectrogram(audio))
        return torch.log(mel + self.cfg.log_floor)

    def set_normalization(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Fix the per-band mean and standard deviation (shape (n_mels,)) used to normalise."""
        self.mean.copy_(mean.reshape(-1, 1))
        self.std.copy_(std.clamp_min(1e-3).reshape(-1, 1))

    def forward(
        self, audio: torch.Tensor, audio_lengths: torch.Tensor, warp: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised features and their lengths; frames past each row's length are zero.

        ``warp``: per-row VTLP factors, for training augmentation only (the export passes none).
        """
        samples = torch.arange(audio.shape[1], device=audio.device).unsqueeze(0)
        audio = audio * (samples < audio_lengths.unsqueeze(1)).to(audio.dtype)
        feats = (self.log_mel(audio, warp) - self.mean) / self.std
        lengths = feature_lengths(audio_lengths, self.cfg.hop_length)
        frames = torch.arange(feats.shape[2], device=feats.device).unsqueeze(0)
        mask = (frames < lengths.unsqueeze(1)).to(feats.dtype).unsqueeze(1)
        return feats * mask, lengths
