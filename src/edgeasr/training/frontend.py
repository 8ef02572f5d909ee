"""The log-mel frontend as a torch module, which trains inside the model and exports with it to ONNX and TensorRT.

Its settings and constant tables are defined once, without torch, in :mod:`edgeasr.features`;
this module turns them into buffers and writes the computation in operators that onnxruntime and
TensorRT both have. :func:`vtlp_matrix` (vocal-tract-length perturbation) is training-only: the
exported graph never warps.
"""

from __future__ import annotations

import torch
from torch import nn

from edgeasr.features import DFT_FACTORS, FrontendConfig, dft_tables, hann_window, mel_filterbank

__all__ = ["FrontendConfig", "LogMelFrontend", "feature_lengths", "vtlp_matrices", "vtlp_matrix"]


def feature_lengths(audio_lengths: torch.Tensor, hop_length: int = 160) -> torch.Tensor:
    """Frames produced for each audio length: ``length // hop + 1`` (:func:`edgeasr.features.frame_count`)."""
    return torch.div(audio_lengths, hop_length, rounding_mode="floor") + 1


def vtlp_matrix(alpha: float, n_freqs: int, sample_rate: int = 16_000, boundary_hz: float = 4_800.0) -> torch.Tensor:
    """Vocal-tract-length perturbation of a power spectrum as a matrix, shape (n_freqs, n_freqs).

    ``vtlp_matrix(alpha, F) @ power`` moves the energy at frequency f to ``alpha * f`` up to a
    boundary (``boundary_hz * min(alpha, 1)``), and above it maps the rest of the band linearly
    onto itself so that the Nyquist frequency stays where it is (Jaitly and Hinton, 2013). Each
    output bin reads the input at its source frequency by linear interpolation. ``alpha > 1``
    sounds like a shorter vocal tract (formants move up), ``alpha < 1`` like a longer one; the
    pitch and the timing do not change. Training only: the exported frontend never warps.
    """
    return vtlp_matrices(torch.tensor([alpha], dtype=torch.float64), n_freqs, sample_rate, boundary_hz)[0]


def vtlp_matrices(
    alphas: torch.Tensor, n_freqs: int, sample_rate: int = 16_000, boundary_hz: float = 4_800.0
) -> torch.Tensor:
    """:func:`vtlp_matrix` for a batch of factors at once, shape (batch, n_freqs, n_freqs), float32,
    on ``alphas``' device (a GPU builds a batch's matrices in one pass, not one per row on the CPU)."""
    a = alphas.to(torch.float64).reshape(-1, 1)
    if bool(((a < 0.5) | (a > 2.0)).any()):
        raise ValueError(f"VTLP factor {a.flatten().tolist()} is outside [0.5, 2]")
    nyquist = sample_rate / 2.0
    out_hz = torch.linspace(0.0, nyquist, n_freqs, dtype=torch.float64, device=a.device).unsqueeze(0)
    edge = boundary_hz * a.clamp(max=1.0)  # output frequency where the two linear pieces meet
    below = out_hz / a
    above = nyquist - (nyquist - out_hz) * (nyquist - edge / a) / (nyquist - edge)
    source = torch.where(out_hz <= edge, below, above) / nyquist * (n_freqs - 1)  # in input bins
    low = source.floor().clamp(0, n_freqs - 1)
    frac = source - low
    high = (low + 1).clamp(max=n_freqs - 1)
    w = torch.zeros(a.shape[0], n_freqs, n_freqs, dtype=torch.float64, device=a.device)
    w.scatter_add_(2, low.long().unsqueeze(2), (1.0 - frac).unsqueeze(2))
    w.scatter_add_(2, high.long().unsqueeze(2), frac.unsqueeze(2))
    return w.float()


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

    fixed_normalization = False  # True where the scale is fixed by design (no statistics learnt from data)
    _N1, _N2 = DFT_FACTORS  # n_fft = N1 * N2; sample n = N2 * n1 + n2, bin k = k1 + N1 * k2

    def __init__(self, cfg: FrontendConfig = FrontendConfig()) -> None:
        super().__init__()
        if cfg.n_fft != self._N1 * self._N2 or cfg.win_length % 2 or cfg.win_length > cfg.n_fft:
            raise ValueError("LogMelFrontend supports n_fft=512 and an even window of at most 512 samples")
        if not 2 * cfg.hop_length < cfg.win_length <= 3 * cfg.hop_length:
            raise ValueError("LogMelFrontend needs a window longer than two hops and at most three")
        self.cfg = cfg
        for name, value in dft_tables(cfg.n_fft).items():  # c16/s16 (k1, n1), twiddles (k1, n2), c32/s32 (n2, k2)
            self.register_buffer(name, torch.from_numpy(value), persistent=False)
        self.register_buffer("window", torch.from_numpy(hann_window(cfg.win_length)), persistent=False)
        mel = torch.from_numpy(mel_filterbank(cfg)).t().contiguous()  # (M, F)
        self.register_buffer("mel", mel, persistent=False)
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

    def mel_energies(self, audio: torch.Tensor, warp: torch.Tensor | None = None) -> torch.Tensor:
        """Mel-band energies, shape (batch, n_mels, frames).

        ``warp`` (training only): one VTLP factor per row (see :func:`vtlp_matrix`); 1.0 is none.
        """
        filters = self.mel
        if warp is not None:
            rate = self.cfg.sample_rate
            warps = vtlp_matrices(warp.to(self.mel.device), self.n_freqs, rate).to(self.mel.dtype)
            filters = torch.matmul(self.mel.unsqueeze(0), warps)  # (batch, M, F)
        return torch.matmul(filters, self.power_spectrogram(audio))

    def log_mel(self, audio: torch.Tensor, warp: torch.Tensor | None = None) -> torch.Tensor:
        """Un-normalised log-mel energies, shape (batch, n_mels, frames) (``warp``: :meth:`mel_energies`)."""
        return torch.log(self.mel_energies(audio, warp) + self.cfg.log_floor)

    def lengths(self, audio_lengths: torch.Tensor) -> torch.Tensor:
        """Feature frames of each row (:func:`feature_lengths` at this frontend's hop)."""
        return feature_lengths(audio_lengths, self.cfg.hop_length)

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
        lengths = self.lengths(audio_lengths)
        frames = torch.arange(feats.shape[2], device=feats.device).unsqueeze(0)
        mask = (frames < lengths.unsqueeze(1)).to(feats.dtype).unsqueeze(1)
        return feats * mask, lengths
