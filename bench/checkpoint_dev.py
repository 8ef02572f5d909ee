"""Greedy WER and CER of training checkpoints on a manifest, computed as a training run's dev check
computes them (``edgeasr.training.train.evaluate_model``: torch, the room the model asks for, greedy).

For checkpoints that come back from a lent GPU, whose own dev check read the carried (Opus) copy
of the dev manifest: this reads the original audio, beside the checkpoint they started from.

    python bench/checkpoint_dev.py recipes/checkpoints/general-7.pt runs/8a-best.pt --manifest work/real/check3.jsonl
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from edgeasr.training.train import _prepare_rows, evaluate_model, load_model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="+", type=Path)
    parser.add_argument("--manifest", type=Path, default=Path("work/real/check3.jsonl"))
    parser.add_argument("--limit", type=int, default=450, help="the first N rows (the recipes' dev_max_utterances)")
    args = parser.parse_args(argv)
    rows, _ = _prepare_rows(args.manifest, 1e9, scoring_only=True)
    rows = rows[: args.limit]
    print(f"{args.manifest}: {len(rows)} rows, greedy")
    for path in args.checkpoints:
        model, ckpt = load_model(path)
        result = evaluate_model(model, rows, args.manifest, torch.device("cpu"))
        print(
            f"{path}  step {ckpt.get('step')}  WER {100 * result['wer']:.2f}%  CER {100 * result['cer']:.2f}%",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
