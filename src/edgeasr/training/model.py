"""The compact CTC acoustic model: log-mel frontend, depthwise-separable 1-D convolutions, CTC head.

A QuartzNet-style stack sized for edge devices (about 1 M parameters at the defaults, at most 5 M
by any shipped recipe). Convolutions only: it exports to ONNX with static operators, quantizes
well to int8, builds in TensorRT, and runs on a phone CPU. The model consumes raw 16 kHz PCM and
returns per-frame log-probabilities over :data:`edgeasr.decoding.TOKENS` every 20 ms.

Padding never changes the result: after every layer, frames past a row's length are zeroed, which
is exactly what the next convolution would see at the end of an unpadded utterance. A batch of
different-length utterances therefore gives each row the output it would have alone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from edgeasr.decoding import TOKENS
from edgeasr.features import FrontendConfig
from edgeasr.training.frontend import LogMelFrontend

__all__ = ["CTCModel", "ModelConfig", "output_lengths"]


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of :class:`CTCModel` (part of every recipe and checkpoint)."""

    channels: int = 256  # width of every encoder block
    kernels: tuple[int, ...] = (11, 13, 15, 17, 19)  # depthwise kernel size, one entry per block
    repeats: int = 2  # separable conv sub-layers per block (one residual connection per block)
    stem_kernel: int = 11  # kernel of the stride-2 stem convolution
    head_channels: int = 512  # width of the pointwise layer before the output projection
    dropout: float = 0.1  # dropout after every activation while training
    vocab_size: int = len(TOKENS)  # output tokens, blank included
    frontend: FrontendConfig = field(default_factory=FrontendConfig)  # feature frontend

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        """Build from :func:`dataclasses.asdict` output (as stored in checkpoints and TOML)."""
        d = dict(d)
        front = FrontendConfig(**d.pop("frontend", {}))
        if "kernels" in d:
            d["kernels"] = tuple(d["kernels"])
        return cls(frontend=front, **d)

    def to_dict(self) -> dict:
        """Plain-dict form (JSON and checkpoint friendly)."""
        d = asdict(self)
        d["kernels"] = list(self.kernels)
        return d


def output_lengths(feature_lengths: torch.Tensor) -> torch.Tensor:
    """Output frames for each feature length after the stride-2 stem: ceil(frames / 2)."""
    return torch.div(feature_lengths + 1, 2, rounding_mode="floor")


def _mask(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    frames = torch.arange(x.shape[2], device=x.device).unsqueeze(0)
    return x * (frames < lengths.unsqueeze(1)).to(x.dtype).unsqueeze(1)


class SeparableConv(nn.Module):
    """Depthwise conv, pointwise conv, batch norm: one sub-layer of a block."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1) -> None:
        super().__init__()
        self.depthwise = nn.Conv1d(c_in, c_in, kernel, stride=stride, padding=kernel // 2, groups=c_in, bias=False)
        self.pointwise = nn.Conv1d(c_in, c_out, 1, bias=False)
        self.norm = nn.BatchNorm1d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.pointwise(self.depthwise(x)))


class Block(nn.Module):
    """``repeats`` separable sub-layers with ReLU and dropout, plus a residual connection."""

    def __init__(self, channels: int, kernel: int, repeats: int, dropout: float) -> None:
        super().__init__()
        self.layers = nn.ModuleList(SeparableConv(channels, channels, kernel) for _ in range(repeats))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        residual = x
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i == len(self.layers) - 1:
                x = x + residual
            x = _mask(self.dropout(torch.relu(x)), lengths)
        return x


class CTCModel(nn.Module):
    """Raw audio in, CTC log-probabilities out. See the module docstring."""

    def __init__(self, cfg: ModelConfig = ModelConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        c = cfg.channels
        self.frontend = LogMelFrontend(cfg.frontend)
        self.stem = SeparableConv(cfg.frontend.n_mels, c, cfg.stem_kernel, stride=2)
        self.blocks = nn.ModuleList(Block(c, k, cfg.repeats, cfg.dropout) for k in cfg.kernels)
        self.head = nn.Sequential(
            nn.Conv1d(c, cfg.head_channels, 1, bias=False),
            nn.BatchNorm1d(cfg.head_channels),
        )
        self.dropout = nn.Dropout(cfg.dropout)
        self.output = nn.Conv1d(cfg.head_channels, cfg.vocab_size, 1)

    def num_parameters(self) -> int:
        """Trainable parameters (the frontend has none)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def encode(self, features: torch.Tensor, feature_lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised features (batch, mels, frames) -> log-probs (batch, frames/2, vocab) and lengths."""
        lengths = output_lengths(feature_lengths)
        x = _mask(self.dropout(torch.relu(self.stem(features))), lengths)
        for block in self.blocks:
            x = block(x, lengths)
        x = _mask(self.dropout(torch.relu(self.head(x))), lengths)
        logits = self.output(x).transpose(1, 2)
        return torch.log_softmax(logits, dim=-1), lengths

    def forward(self, audio: torch.Tensor, audio_lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(batch, samples) float audio and int64 lengths -> (log-probs, output lengths)."""
        features, feature_lengths = self.frontend(audio, audio_lengths)
        return self.encode(features, feature_lengths)
