"""Feature distillation from a frozen pretrained encoder: a second training target beside the CTC loss.

The shipped default keeps two of Whisper tiny.en's four attention blocks and trains them with
edgeasr's own convolutions on 42 h of mostly synthesized speech. That fine-tuning wears away what
the pretrained blocks knew about voices the training never heard: moving the trained blocks part
of the way back to Whisper's weights reads unseen engines better (MODEL_CARD.md, pretrained-20),
and a head on Whisper's whole frozen encoder reads the held-out engine better than the trained
model does (``bench/results/eval-cpu-2core-epyc/pretrained-probe.txt``). Distillation asks the
trained model to keep that knowledge in its function rather than in its weights: its last block's
frames, through a linear map, predict what the whole teacher encoder (all its blocks, its own
weights) makes of the same audio. The teacher and the map only train; the exported model is the
CTC model alone.

The teacher hears the batch's features before SpecAugment masks them, so a masked stretch must be
predicted from its context; the targets are layer-normalised per frame, so the loss is a mean
squared error in units of the teacher's own spread, whatever its scale.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edgeasr.training.pretrained import PRETRAINED, WhisperEncoder
from edgeasr.training.recipe import DistillConfig

__all__ = ["EncoderDistillation"]


class EncoderDistillation(nn.Module):
    """A frozen teacher encoder and the linear map that reads the student's frames in its space.

    Calling it gives the distillation loss (unweighted): the mean over every frame inside a row's
    length of the squared error, averaged over the teacher's channels. Only :attr:`project` trains;
    :meth:`trained_state_dict` is what a resumable checkpoint keeps of it.
    """

    def __init__(self, cfg: DistillConfig, student_width: int) -> None:
        super().__init__()
        if not cfg.teacher:
            raise ValueError("feature distillation needs a teacher: distill.teacher names a pretrained encoder")
        self.cfg = cfg
        self.teacher = WhisperEncoder.from_pretrained(cfg.teacher)  # every block: the teacher's full depth
        self.teacher.requires_grad_(False)
        self.project = nn.Linear(student_width, PRETRAINED[cfg.teacher].width)

    def train(self, mode: bool = True) -> EncoderDistillation:
        """Train the map; the teacher always runs as at inference (it has no dropout or batch norm)."""
        super().train(mode)
        self.teacher.eval()
        return self

    def trained_state_dict(self) -> dict[str, torch.Tensor]:
        """The map's weights (the teacher's are the installed file's, checked by its sha256)."""
        return {f"project.{k}": v for k, v in self.project.state_dict().items()}

    def load_trained_state(self, state: dict[str, torch.Tensor]) -> None:
        """Load :meth:`trained_state_dict` output (a resumed run's map)."""
        self.project.load_state_dict({k.removeprefix("project."): v for k, v in state.items()})

    def forward(
        self,
        features: torch.Tensor,
        feature_lengths: torch.Tensor,
        hidden: torch.Tensor,
        lengths: torch.Tensor,
    ) -> torch.Tensor:
        """The distillation loss of one batch.

        Args:
            features: the teacher's input, (batch, mels, frames): the student's features before masking.
            feature_lengths: valid feature frames per row.
            hidden: the student's last block, (batch, channels, frames'), from
                ``CTCModel.encode(..., return_hidden=True)``.
            lengths: valid frames of ``hidden`` per row.

        Raises:
            ValueError: the teacher's frames and the student's do not line up (another stride).
        """
        with torch.no_grad():
            target, target_lengths = self.teacher(features, feature_lengths)
            target = F.layer_norm(target.float(), target.shape[-1:])
        if target.shape[1] != hidden.shape[2] or not torch.equal(target_lengths, lengths):
            raise ValueError(
                f"the teacher's frames ({target.shape[1]}) do not line up with the model's ({hidden.shape[2]})"
            )
        predicted = self.project(hidden.float().transpose(1, 2))
        inside = (torch.arange(hidden.shape[2], device=hidden.device).unsqueeze(0) < lengths.unsqueeze(1)).float()
        error = (predicted - target).pow(2).mean(dim=2)
        return (error * inside).sum() / inside.sum().clamp(min=1.0)
