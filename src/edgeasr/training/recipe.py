"""Training recipes: one TOML file per recipe, loaded into frozen dataclasses.

A recipe says everything a training run needs: data, model architecture, optimisation and
augmentation. ``recipes/`` holds the shipped ones (``tiny.toml`` for CI, ``pretrained-3.toml``
for the shipped default, ``default.toml`` for the command model before it). Any field left out
of the TOML takes the default written here.

    [data]
    train_manifest = "work/corpus/train.jsonl"
    [model]
    channels = 256
    [optim]
    max_steps = 6000
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from edgeasr.data.augment import AugmentOptions
from edgeasr.features import FrontendConfig
from edgeasr.training.model import ModelConfig

__all__ = ["DataConfig", "DistillConfig", "OptimConfig", "SpecAugmentConfig", "TrainRecipe"]


@dataclass(frozen=True)
class DataConfig:
    """Where the data comes from and how it is batched."""

    train_manifest: str = "work/corpus/train.jsonl"  # NeMo-style JSONL (relative to the recipe's cwd)
    dev_manifest: str = "work/corpus/dev.jsonl"  # chooses the best checkpoint by its WER
    max_batch_seconds: float = 120.0  # audio seconds per batch (batches hold similar lengths)
    # > 0: each batch holds rows of one length bucket (durations rounded up to a multiple of this),
    # as many as fit in max_batch_seconds, and is padded to a multiple of it, so that a GPU sees a
    # few dozen shapes an epoch instead of one per batch (its kernels are chosen per shape); 0: off
    bucket_seconds: float = 0.0
    max_utterance_seconds: float = 16.0  # longer training rows are skipped (and counted in the report)
    dev_max_utterances: int = 300  # dev rows used for each evaluation (the first N, fixed)
    num_workers: int = 1  # DataLoader worker processes (loading and augmentation)
    augment: bool = True  # apply edgeasr.data.augment.Augmenter to training audio (options: the [augment] table)
    extra_manifests: tuple[str, ...] = ()  # more training manifests (e.g. real speech), read like train_manifest
    extra_repeats: tuple[int, ...] = ()  # times each extra manifest's rows count per epoch (1 when not given)

    def __post_init__(self) -> None:
        object.__setattr__(self, "extra_manifests", tuple(self.extra_manifests))
        object.__setattr__(self, "extra_repeats", tuple(int(r) for r in self.extra_repeats))
        if len(self.extra_repeats) > len(self.extra_manifests):
            raise ValueError("data.extra_repeats has more entries than data.extra_manifests")
        if any(r < 1 for r in self.extra_repeats):
            raise ValueError(f"data.extra_repeats must be at least 1, not {self.extra_repeats}")
        if not 0.0 <= self.bucket_seconds <= self.max_batch_seconds:
            raise ValueError(f"data.bucket_seconds must be between 0 and max_batch_seconds, not {self.bucket_seconds}")

    def extras(self) -> list[tuple[str, int]]:
        """``(manifest, repeats)`` of every extra training manifest."""
        repeats = (*self.extra_repeats, *([1] * len(self.extra_manifests)))
        return list(zip(self.extra_manifests, repeats, strict=False))

    normalization_utterances: int = 200  # utterances used to estimate feature mean and std


@dataclass(frozen=True)
class SpecAugmentConfig:
    """Feature augmentation (training only): VTLP before the mel filters, then SpecAugment masks."""

    freq_masks: int = 2  # frequency masks per utterance
    freq_width: int = 15  # maximum width of each frequency mask, in mel bands
    time_masks: int = 5  # time masks per utterance (fewer for short ones: at most one per 0.5 s)
    time_width: float = 0.05  # maximum width of each time mask, as a fraction of the utterance
    warp_prob: float = 0.0  # chance of vocal-tract-length perturbation per utterance (0: never)
    warp_max: float = 0.1  # VTLP factor drawn uniformly from [1 - warp_max, 1 + warp_max]

    def __post_init__(self) -> None:
        if not 0.0 <= self.warp_prob <= 1.0:
            raise ValueError(f"spec_augment.warp_prob must be in [0, 1], not {self.warp_prob}")
        if not 0.0 <= self.warp_max <= 0.3:
            raise ValueError(f"spec_augment.warp_max must be in [0, 0.3], not {self.warp_max}")


@dataclass(frozen=True)
class OptimConfig:
    """AdamW with linear warm-up then cosine decay."""

    lr: float = 3e-3  # peak learning rate
    weight_decay: float = 1e-3  # AdamW decoupled weight decay
    warmup_steps: int = 500  # linear warm-up from 0 to ``lr``
    max_steps: int = 6000  # total optimizer steps; the cosine decay reaches ``final_lr_ratio`` here
    final_lr_ratio: float = 0.02  # learning rate at the last step, as a fraction of ``lr``
    grad_clip: float = 5.0  # global gradient-norm clip
    eval_every: int = 500  # steps between dev evaluations (and best-checkpoint updates)
    checkpoint_every: int = 500  # steps between resumable checkpoints (``last.pt``)
    seed: int = 0  # seeds torch, numpy and the batch order
    # torch intra-op threads of the training process; 0 means one per core on a CPU, and one on a GPU
    # (there the process only feeds the device, and idle threads of its parallel regions would
    # contend with the data workers for the cores)
    threads: int = 0
    precision: str = "fp32"  # "fp32", "bf16" (the encoder runs under bfloat16 autocast; frontend, CTC
    # loss, weights and optimizer stay fp32) or "auto" (bf16 where the device computes bfloat16 natively:
    # a CUDA GPU that supports it, a CPU with AVX512-BF16 or AMX instructions; fp32 elsewhere). On a 2-core
    # AVX512-BF16 CPU a training step took 0.70 s in bf16 against 0.79 s in fp32; on a 2-core AVX2 CPU
    # (no native bfloat16) 11 s against 2.9 s, so "bf16" there is a 4x slowdown; on a 2-core Xeon with
    # AVX512 but neither (oneDNN emulates bfloat16 there) the encoder's step 10.4 s against 3.4 s

    # parameter-name prefixes held fixed in this stage, e.g. ["encoder."]: those weights keep the values the
    # run starts from (``--init``) and stay in its checkpoints; the rest trains. Empty: everything trainable trains
    freeze: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "freeze", tuple(self.freeze))
        if any(not isinstance(p, str) or not p for p in self.freeze):
            raise ValueError(f"optim.freeze must list non-empty parameter-name prefixes, not {self.freeze!r}")
        if self.precision not in ("fp32", "bf16", "auto"):
            raise ValueError(f"optim.precision must be 'fp32', 'bf16' or 'auto', not {self.precision!r}")


@dataclass(frozen=True)
class DistillConfig:
    """Feature distillation: the model's frames learn to predict a frozen teacher encoder's beside the CTC loss.

    The teacher is a registered pretrained encoder (:data:`edgeasr.training.pretrained.PRETRAINED`)
    with all its blocks and its own weights, as installed; it hears each batch before SpecAugment's
    masks, and a linear map from the model's last block (``model.channels`` wide) to the teacher's
    width is fitted with it (:mod:`edgeasr.training.distill`). Neither is part of the model: the
    checkpoint a run exports is the CTC model alone, so the export's cost does not change.
    """

    # the teacher encoder, a name of edgeasr.training.pretrained.PRETRAINED ("" none): on a model whose
    # own lower blocks come from it, the full encoder's deeper output is what they learn to reach again
    teacher: str = ""
    weight: float = 0.0  # the distillation loss's weight beside the CTC loss (0: off)

    def __post_init__(self) -> None:
        if not 0.0 <= self.weight <= 100.0:
            raise ValueError(f"distill.weight must be between 0 and 100, not {self.weight}")
        if self.weight > 0 and not self.teacher:
            raise ValueError("distill.weight > 0 needs distill.teacher, a pretrained encoder's name")
        if self.teacher:
            from edgeasr.training.pretrained import PRETRAINED

            if self.teacher not in PRETRAINED:
                raise ValueError(f"distill.teacher {self.teacher!r} is not one of {', '.join(sorted(PRETRAINED))}")


def _build(cls, table: dict):
    known = {f.name for f in fields(cls)}
    unknown = set(table) - known
    if unknown:
        raise ValueError(f"unknown {cls.__name__} field(s) in recipe: {', '.join(sorted(unknown))}")
    return cls(**table)


@dataclass(frozen=True)
class TrainRecipe:
    """A whole training recipe (see the module docstring for the TOML layout)."""

    name: str = "default"  # recorded in checkpoints and the model card
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    spec_augment: SpecAugmentConfig = field(default_factory=SpecAugmentConfig)
    augment: AugmentOptions = field(default_factory=AugmentOptions)  # waveform augmentation (data.augment = true)
    distill: DistillConfig = field(default_factory=DistillConfig)  # a teacher encoder's frames as a second target

    @classmethod
    def from_toml(cls, path: str | Path) -> TrainRecipe:
        """Load a recipe; unknown fields are an error (typos must not pass silently)."""
        with open(path, "rb") as fh:
            doc = tomllib.load(fh)
        return cls.from_dict(doc, default_name=Path(path).stem)

    @classmethod
    def from_dict(cls, doc: dict, default_name: str = "default") -> TrainRecipe:
        """Build from the nested dict form used by TOML files and checkpoints."""
        doc = dict(doc)
        unknown = set(doc) - {"name", "data", "model", "optim", "spec_augment", "augment", "distill"}
        if unknown:
            raise ValueError(f"unknown recipe table(s): {', '.join(sorted(unknown))}")
        model = dict(doc.get("model", {}))
        augment = dict(doc.get("augment", {}))
        front = model.pop("frontend", {})
        if "kernels" in model:
            model["kernels"] = tuple(model["kernels"])
        return cls(
            name=doc.get("name", default_name),
            data=_build(DataConfig, doc.get("data", {})),
            model=ModelConfig(frontend=_build(FrontendConfig, front), **model),
            optim=_build(OptimConfig, doc.get("optim", {})),
            spec_augment=_build(SpecAugmentConfig, doc.get("spec_augment", {})),
            augment=_build(AugmentOptions, {k: tuple(v) if isinstance(v, list) else v for k, v in augment.items()}),
            distill=_build(DistillConfig, doc.get("distill", {})),
        )

    def to_dict(self) -> dict:
        """Nested plain-dict form (stored in every checkpoint)."""
        d = asdict(self)
        d["model"] = self.model.to_dict()
        return d
