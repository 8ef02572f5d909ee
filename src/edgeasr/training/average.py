"""Average the weights of checkpoints of one architecture (a uniform "model soup").

Runs trained on from one parent (``edgeasr train --init``) with other seeds, augmentation or
stages stay close in weight space, and the mean of their weights often reads speech better than
any one of them, on sources none of them was selected on (Wortsman et al., 2022, "Model soups").
The shipped default since version 25 is such a mean (``MODEL_CARD.md``).

    edgeasr average --out recipes/checkpoints/pretrained-19.pt --name pretrained-19 \\
        work/runs/pretrained-1{4,5,6,7,8}/best.pt work/runs/pretrained-1{4,5,6,7,8}/last.pt

``--toward-pretrained SHARE`` then moves the weights of a pretrained encoder that training moved
(Whisper tiny.en's attention blocks and final norm, ``model.pretrained``) that share of the way back
to the installed encoder's own, as WiSE-FT does (Wortsman et al., 2022, "Robust fine-tuning of
zero-shot models"): fine-tuning on our data wears away some of what the encoder learnt from 680,000
hours of speech, and a little of it back reads engines we never trained on better. edgeasr's own
blocks and head have no pretrained counterpart and stay as averaged.

Every floating-point tensor (weights, a batch norm's running statistics, the frontend's scale) is
the plain mean over the checkpoints, summed in the order given; integer tensors (a batch norm's
step counter) are the first checkpoint's. The result is a weights-only checkpoint that
``edgeasr export`` and ``--init`` read like any other, and it records what it was made from.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from edgeasr.integrity import sha256_file
from edgeasr.training.model import ModelConfig
from edgeasr.training.train import load_checkpoint

__all__ = ["average_checkpoints", "toward_pretrained"]


def average_checkpoints(paths: Sequence[str | Path], name: str | None = None, *, least: int = 2) -> dict:
    """The uniform mean of the weights of ``paths``, as a checkpoint dict (``torch.save`` it).

    Args:
        paths: two or more checkpoints (``best.pt``, ``last.pt`` or an averaged one) whose
            recipes build the same model (``[model]`` tables equal).
        name: the recipe name the result carries (the export's model card shows it); default:
            the first checkpoint's with ``-average`` appended.
        least: how many checkpoints it takes (1: a single checkpoint is copied, for
            :func:`toward_pretrained` alone).

    Returns:
        ``model`` (the averaged weights), ``recipe`` (the first checkpoint's, renamed),
        ``data_version`` (the checkpoints' one, or theirs joined by ``+`` when they differ),
        ``step`` and ``best_wer`` (``None``: no run reached these weights), ``horizon`` (``None``),
        ``init_from`` (the paths joined by ``,``) and ``averaged_from`` (per checkpoint: path,
        sha256, step, recipe name).

    Raises:
        ValueError: fewer than ``least`` checkpoints, models that differ (the first differing
            checkpoint is named), or weights that do not line up (names or shapes).
    """
    if len(paths) < max(1, least):
        raise ValueError(f"averaging needs {max(1, least)} or more checkpoints, got {len(paths)}")
    checkpoints = [load_checkpoint(p) for p in paths]
    first = checkpoints[0]
    config = ModelConfig.from_dict(first["recipe"]["model"])
    for path, ckpt in zip(paths[1:], checkpoints[1:], strict=True):
        other = ModelConfig.from_dict(ckpt["recipe"]["model"])
        if other != config:
            raise ValueError(f"{path} builds another model than {paths[0]}: {other} is not {config}")
        if ckpt["model"].keys() != first["model"].keys():
            stray = sorted(ckpt["model"].keys() ^ first["model"].keys())[:5]
            raise ValueError(f"{path} holds other weights than {paths[0]}: {stray}")
        for key, value in ckpt["model"].items():
            if value.shape != first["model"][key].shape:
                raise ValueError(f"{path}: {key} is {tuple(value.shape)}, not {tuple(first['model'][key].shape)}")
    averaged = {}
    for key, value in first["model"].items():
        if value.is_floating_point():
            total = value.clone()
            for ckpt in checkpoints[1:]:
                total += ckpt["model"][key]
            averaged[key] = total / len(checkpoints)
        else:
            averaged[key] = value.clone()
    versions = list(dict.fromkeys(c.get("data_version", "") for c in checkpoints))
    recipe = dict(first["recipe"])
    recipe["name"] = name or f"{recipe.get('name', 'model')}-average"
    return {
        "model": averaged,
        "step": None,
        "best_wer": None,
        "horizon": None,
        "recipe": recipe,
        "data_version": "+".join(versions),
        "init_from": ",".join(str(p) for p in paths),
        "averaged_from": [
            {
                "path": str(p),
                "sha256": sha256_file(p),
                "step": c.get("step"),
                "recipe": c["recipe"].get("name", ""),
            }
            for p, c in zip(paths, checkpoints, strict=True)
        ],
    }


def toward_pretrained(checkpoint: dict, share: float) -> dict:
    """Move the trained weights of a checkpoint's pretrained encoder ``share`` of the way to the encoder's own.

    Args:
        checkpoint: a checkpoint dict (:func:`average_checkpoints`, or a run's, loaded) of a model
            with a pretrained encoder whose blocks trained (``model.pretrained_trainable`` > 0).
        share: from 0 (unchanged) to below 1 (1 would drop everything the blocks learnt here).

    Returns:
        A new checkpoint dict: each ``encoder.*`` weight the checkpoint holds becomes
        ``(1 - share) * trained + share * pretrained``; every other weight is unchanged;
        ``toward_pretrained`` records the share.

    Raises:
        ValueError: ``share`` is outside [0, 1), or the checkpoint holds no trained encoder weight.
    """
    from edgeasr.training.pretrained import WhisperEncoder

    if not 0.0 <= share < 1.0:
        raise ValueError(f"share must be at least 0 and below 1, got {share}")
    config = ModelConfig.from_dict(checkpoint["recipe"]["model"])
    trained = [k for k in checkpoint["model"] if k.startswith("encoder.")]
    if not config.pretrained or not trained:
        raise ValueError(
            "the checkpoint has no trained pretrained-encoder weights to move (model.pretrained_trainable)"
        )
    own = WhisperEncoder.from_pretrained(config.pretrained, config.pretrained_blocks or None).state_dict()
    moved = dict(checkpoint["model"])
    for key in trained:
        start = own[key.removeprefix("encoder.")]
        moved[key] = (1.0 - share) * checkpoint["model"][key] + share * start
    return {**checkpoint, "model": moved, "toward_pretrained": share}
