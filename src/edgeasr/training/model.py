"""The compact CTC acoustic model: log-mel frontend, depthwise-separable 1-D convolutions, CTC head.

A QuartzNet-style stack sized for edge devices (about 1 M parameters at the defaults, at most 5 M
by any shipped recipe). Convolutions only: it exports to ONNX with static operators, quantizes
well to int8, builds in TensorRT, and runs on a phone CPU. A recipe may put a pretrained attention
encoder below the blocks (``model.pretrained``, :mod:`edgeasr.training.pretrained`), as the
shipped default's does; its frames then hear the whole input (:attr:`CTCModel.whole_input`).
The model consumes raw 16 kHz PCM and returns per-frame log-probabilities over
:data:`edgeasr.decoding.TOKENS` every ``stride`` x 10 ms (20 ms at the default stride of 2; the
export records it in the ONNX file's metadata, where the runtime reads it:
:data:`edgeasr.decoding.FRAME_SECONDS_KEY`).

Padding never changes the result: after every layer, frames past a row's length are zeroed, which
is exactly what the next convolution would see at the end of an unpadded utterance. A batch of
different-length utterances therefore gives each row the output it would have alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace

import torch
from torch import nn

from edgeasr.decoding import TOKENS
from edgeasr.features import FrontendConfig
from edgeasr.training.frontend import LogMelFrontend

__all__ = ["CTCModel", "ModelConfig", "grown_block_positions", "output_lengths"]


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of :class:`CTCModel` (part of every recipe and checkpoint)."""

    channels: int = 256  # width of every encoder block
    kernels: tuple[int, ...] = (11, 13, 15, 17, 19)  # depthwise kernel size, one entry per block
    repeats: int = 2  # separable conv sub-layers per block (one residual connection per block)
    stem_kernel: int = 11  # kernel of the stem convolution
    stride: int = 2  # the stem's time stride: one output frame per `stride` feature frames (2: 20 ms, 3: 30 ms)
    head_channels: int = 512  # width of the pointwise layer before the output projection
    dropout: float = 0.1  # dropout after every activation while training
    vocab_size: int = len(TOKENS)  # output tokens, blank included
    frontend: FrontendConfig = field(default_factory=FrontendConfig)  # feature frontend
    # room tone (s) the runtime lays before and after every utterance (edgeasr.features.pad_room_tone):
    # recorded in the export, applied by the Recognizer, its streams, the Triton model and the dev check
    input_pad_seconds: float = 0.0
    # a pretrained encoder below the blocks ("" none; a name of edgeasr.training.pretrained.PRETRAINED):
    # its own frontend replaces the log-mel one, its output feeds the stem (stride must be its own, 2)
    pretrained: str = ""
    pretrained_blocks: int = 0  # attention blocks of the pretrained encoder kept (0: all it has)
    pretrained_trainable: int = 0  # its top blocks that train (0: the whole encoder stays frozen)
    # audio on each side that streaming and windowed decoding give a frame of a pretrained encoder,
    # whose attention reaches the whole utterance (a conv stack records its exact receptive field)
    pretrained_context_seconds: float = 2.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.input_pad_seconds <= 5.0:
            raise ValueError(f"model.input_pad_seconds must be between 0 and 5 s, not {self.input_pad_seconds}")
        if self.pretrained and self.stride != 2:
            raise ValueError(f"model.pretrained {self.pretrained!r} has 20 ms frames: model.stride must be 2")
        if self.pretrained_blocks < 0 or self.pretrained_trainable < 0:
            raise ValueError("model.pretrained_blocks and model.pretrained_trainable must not be negative")

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


def output_lengths(feature_lengths: torch.Tensor, stride: int = 2) -> torch.Tensor:
    """Output frames for each feature length after the stem: ceil(frames / stride)."""
    return torch.div(feature_lengths + stride - 1, stride, rounding_mode="floor")


def grown_block_positions(source: Sequence[int], target: Sequence[int]) -> list[int]:
    """Where a shallower model's blocks go in a deeper one: kernel sizes matched in order.

    Each source block takes the first unused target position with its kernel after the previous
    one's (``(11, 13)`` into ``(11, 11, 13, 13)`` gives ``[0, 2]``).

    Raises:
        ValueError: ``source`` is not a subsequence of ``target``.
    """
    positions, at = [], 0
    for kernel in source:
        while at < len(target) and target[at] != kernel:
            at += 1
        if at == len(target):
            raise ValueError(f"the blocks {tuple(source)} are not a subsequence of {tuple(target)}")
        positions.append(at)
        at += 1
    return positions


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
        if cfg.stride < 1:
            raise ValueError(f"stride must be at least 1, got {cfg.stride}")
        self.encoder: nn.Module | None = None
        if cfg.pretrained:
            from edgeasr.training.pretrained import WhisperEncoder, WhisperLogMel

            self.frontend = WhisperLogMel(cfg.frontend)
            self.encoder = WhisperEncoder.from_pretrained(cfg.pretrained, cfg.pretrained_blocks or None)
            for name, p in self.encoder.named_parameters():
                p.requires_grad_(self._encoder_weight_trains(name))
            self.stem = SeparableConv(self.encoder.ln.normalized_shape[0], c, cfg.stem_kernel)
        else:
            self.frontend = LogMelFrontend(cfg.frontend)
            self.stem = SeparableConv(cfg.frontend.n_mels, c, cfg.stem_kernel, stride=cfg.stride)
        self.blocks = nn.ModuleList(Block(c, k, cfg.repeats, cfg.dropout) for k in cfg.kernels)
        self.head = nn.Sequential(
            nn.Conv1d(c, cfg.head_channels, 1, bias=False),
            nn.BatchNorm1d(cfg.head_channels),
        )
        self.dropout = nn.Dropout(cfg.dropout)
        self.output = nn.Conv1d(cfg.head_channels, cfg.vocab_size, 1)

    @property
    def frame_seconds(self) -> float:
        """Duration of one output frame (the feature hop times the stem's stride)."""
        front = self.cfg.frontend
        return round(front.hop_length * self.cfg.stride / front.sample_rate, 6)

    @property
    def input_pad_seconds(self) -> float:
        """Room tone (s) the runtime lays before and after each utterance for this model (the export records it)."""
        return float(self.cfg.input_pad_seconds)

    @property
    def context_seconds(self) -> float:
        """Audio on each side of a frame that can change its output (the receptive field's half width).

        The centred STFT window, the stem's half kernel of feature frames and each block's half
        kernels of output frames; streaming and windowed decoding need at least this much context
        for their output to equal one pass over the whole recording.
        """
        cfg, front = self.cfg, self.cfg.frontend
        if cfg.pretrained:
            return float(cfg.pretrained_context_seconds)
        half_frames = sum(cfg.repeats * (k // 2) for k in cfg.kernels)
        seconds = (front.n_fft // 2 + (cfg.stem_kernel // 2) * front.hop_length) / front.sample_rate
        return round(seconds + half_frames * self.frame_seconds, 6)

    @property
    def whole_input(self) -> bool:
        """True when a frame's output can depend on the whole input: a pretrained encoder's attention
        reaches the utterance, its positions are absolute and its log-mel range is the utterance's, so
        :attr:`context_seconds` is a working context, not an exact receptive field."""
        return bool(self.cfg.pretrained)

    def num_parameters(self) -> int:
        """Parameters, a pretrained encoder's frozen ones included (the frontend has none)."""
        return sum(p.numel() for p in self.parameters())

    def trained_state_dict(self) -> dict[str, torch.Tensor]:
        """The weights a checkpoint keeps: all but a pretrained encoder's frozen ones.

        Those are the installed file's (:func:`~edgeasr.training.pretrained.pretrained_file`, checked
        by its sha256 whenever a model is built), so a checkpoint on Whisper tiny.en's frozen encoder
        holds 0.4 M weights, not 8 M.
        """
        frozen = self._frozen_keys()
        return {k: v for k, v in self.state_dict().items() if k not in frozen}

    def load_trained_state(self, state: dict[str, torch.Tensor], starting: bool = False) -> None:
        """Load a checkpoint's weights (:meth:`trained_state_dict`, or a whole ``state_dict``).

        ``starting``: the checkpoint is another run's starting point (``--init``), which may have
        kept the pretrained encoder frozen where this model trains its top blocks: any encoder
        weight it lacks stays the installed file's.

        Raises:
            RuntimeError: a weight other than a frozen pretrained one (with ``starting``, other than
                the pretrained encoder's) is missing, or one is unexpected.
        """
        missing, unexpected = self.load_state_dict(state, strict=False)
        allowed = self._frozen_keys()
        if starting and self.encoder is not None:
            allowed |= {f"encoder.{k}" for k in self.encoder.state_dict()}
        absent = [k for k in missing if k not in allowed]
        if absent or unexpected:
            raise RuntimeError(f"checkpoint does not fit the model: missing {absent}, unexpected {unexpected}")

    def _encoder_weight_trains(self, name: str) -> bool:
        """Whether the pretrained encoder's weight ``name`` is one the model trains (its top
        ``pretrained_trainable`` blocks and, with them, its final norm): by the config, so a stage that
        holds weights fixed (``optim.freeze``) still keeps them in its checkpoint."""
        frozen = len(self.encoder.blocks) - self.cfg.pretrained_trainable
        if name.startswith("blocks."):
            return int(name.split(".")[1]) >= frozen
        return name.startswith("ln.") and self.cfg.pretrained_trainable > 0

    def _frozen_keys(self) -> set[str]:
        if self.encoder is None:
            return set()
        keys = {f"encoder.{n}" for n, _ in self.encoder.named_parameters() if not self._encoder_weight_trains(n)}
        return keys | {f"encoder.{n}" for n, _ in self.encoder.named_buffers()}

    def load_grown(self, state: dict[str, torch.Tensor], source: ModelConfig) -> list[int]:
        """Load a shallower trained model of the same widths; the blocks it lacks start as identities.

        The source's blocks go where :func:`grown_block_positions` puts them. Every other block's
        last batch norm starts at zero scale and shift, so the block adds nothing to its residual
        and the grown model computes exactly what the source did (in eval mode) until training
        moves those scales: more capacity without losing what was learnt.

        Args:
            state: the source model's ``state_dict``.
            source: the source's :class:`ModelConfig`; everything but ``kernels`` and ``dropout``
                must equal this model's.

        Returns:
            The positions of the new (identity) blocks.

        Raises:
            ValueError: the widths, stride, frontend or vocabulary differ, or the source's blocks
                do not fit (see :func:`grown_block_positions`).
        """
        mine = replace(self.cfg, kernels=(), dropout=0.0)
        theirs = replace(source, kernels=(), dropout=0.0)
        if mine != theirs:
            raise ValueError(f"only the blocks may differ to grow a model: {theirs} is not {mine}")
        positions = grown_block_positions(source.kernels, self.cfg.kernels)
        moved = {}
        for key, value in state.items():
            if key.startswith("blocks."):
                _, index, rest = key.split(".", 2)
                key = f"blocks.{positions[int(index)]}.{rest}"
            moved[key] = value
        new = [i for i in range(len(self.blocks)) if i not in positions]
        with torch.no_grad():
            for i in new:
                norm = self.blocks[i].layers[-1].norm
                norm.weight.zero_()
                norm.bias.zero_()
        missing, unexpected = self.load_state_dict(moved, strict=False)
        fresh = tuple(f"blocks.{i}." for i in new)
        stray = [k for k in missing if not k.startswith(fresh)]
        if stray or unexpected:
            raise ValueError(f"grown model's weights do not line up: missing {stray}, unexpected {unexpected}")
        return new

    def encode(
        self, features: torch.Tensor, feature_lengths: torch.Tensor, return_hidden: bool = False
    ) -> tuple[torch.Tensor, ...]:
        """Normalised features (batch, mels, frames) -> log-probs (batch, frames/stride, vocab) and lengths.

        ``return_hidden``: also return the last block's output (batch, channels, frames/stride), what
        feature distillation reads (:mod:`edgeasr.training.distill`).
        """
        if self.encoder is not None:
            # its frozen part never sees a gradient (it has no dropout or batch norm: train and eval are one)
            with torch.set_grad_enabled(torch.is_grad_enabled() and self.cfg.pretrained_trainable > 0):
                encoded, lengths = self.encoder(features, feature_lengths)
            features = encoded.transpose(1, 2)
        else:
            lengths = output_lengths(feature_lengths, self.cfg.stride)
        x = _mask(self.dropout(torch.relu(self.stem(features))), lengths)
        for block in self.blocks:
            x = block(x, lengths)
        hidden = x
        x = _mask(self.dropout(torch.relu(self.head(x))), lengths)
        logits = self.output(x).transpose(1, 2)
        if return_hidden:
            return torch.log_softmax(logits, dim=-1), lengths, hidden
        return torch.log_softmax(logits, dim=-1), lengths

    def forward(self, audio: torch.Tensor, audio_lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(batch, samples) float audio and int64 lengths -> (log-probs, output lengths)."""
        features, feature_lengths = self.frontend(audio, audio_lengths)
        return self.encode(features, feature_lengths)
