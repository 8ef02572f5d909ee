"""Architecture comparison: the shipped QuartzNet-style encoder against a small Conformer.

Issue 4 asks to pick the acoustic model "by measured accuracy and speed". This script trains both
on the same data with the same frontend, augmentation and CTC loss, for the same wall-clock time,
side by side (one core each, so neither gets more of the machine), then measures what each costs
at inference and whether batching changes its results:

    python bench/architectures.py --minutes 24 --out bench/results/architectures-cpu-2core-epyc

The Conformer is torchaudio's (``torchaudio.models.Conformer``: macaron feed-forward, multi-head
self-attention, depthwise convolution module) behind the same stride-2 stem as the shipped model,
so both emit a frame every 20 ms and decode the same way. It lives here, not in the package: the
product ships one architecture, and this is the evidence for which.

Writes ``results.json``, ``report.txt`` and ``dev_wer.png`` (dev WER against training minutes).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from edgeasr.training.frontend import LogMelFrontend  # noqa: E402
from edgeasr.training.model import CTCModel, SeparableConv, output_lengths  # noqa: E402
from edgeasr.training.recipe import TrainRecipe  # noqa: E402


class ConformerCTC(nn.Module):
    """The shipped frontend and stride-2 stem, a torchaudio Conformer, a linear CTC head."""

    def __init__(
        self, recipe: TrainRecipe, d_model: int = 144, layers: int = 4, heads: int = 4, kernel: int = 15
    ) -> None:
        import torchaudio

        super().__init__()
        cfg = recipe.model
        self.frontend = LogMelFrontend(cfg.frontend)
        self.stem = SeparableConv(cfg.frontend.n_mels, d_model, cfg.stem_kernel, stride=2)
        self.conformer = torchaudio.models.Conformer(
            input_dim=d_model,
            num_heads=heads,
            ffn_dim=4 * d_model,
            num_layers=layers,
            depthwise_conv_kernel_size=kernel,
            dropout=cfg.dropout,
        )
        self.output = nn.Linear(d_model, cfg.vocab_size)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def encode(self, features: torch.Tensor, feature_lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lengths = output_lengths(feature_lengths)
        x = torch.relu(self.stem(features)).transpose(1, 2)  # (batch, frames, d_model)
        x, _ = self.conformer(x, lengths)
        return torch.log_softmax(self.output(x), dim=-1), lengths

    def forward(self, audio: torch.Tensor, audio_lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features, feature_lengths = self.frontend(audio, audio_lengths)
        return self.encode(features, feature_lengths)


def build(arm: str, recipe: TrainRecipe) -> nn.Module:
    """The model of one arm: ``quartznet`` (the recipe's CTCModel) or ``conformer``."""
    return CTCModel(recipe.model) if arm == "quartznet" else ConformerCTC(recipe)


def _arm_recipe(recipe: TrainRecipe, arm: str, max_steps: int) -> TrainRecipe:
    optim = replace(recipe.optim, threads=1, max_steps=max_steps, eval_every=200, checkpoint_every=200)
    if arm == "conformer":  # attention models want a lower peak and a longer warm-up than convolutions
        optim = replace(optim, lr=1e-3, warmup_steps=400)
    data = replace(recipe.data, num_workers=0, dev_max_utterances=200)
    return replace(recipe, data=data, optim=optim)


def _train_arm(arm: str, recipe_path: str, out: str, minutes: float, max_steps: int) -> None:
    from edgeasr.training.train import train

    torch.set_num_threads(1)
    recipe = _arm_recipe(TrainRecipe.from_toml(recipe_path), arm, max_steps)
    train(recipe, Path(out) / arm, max_minutes=minutes, model=build(arm, recipe), progress=False)


@torch.no_grad()
def _inference_cost(model: nn.Module, seconds: float = 2.0, repeats: int = 20) -> dict:
    """Median ms per utterance of ``seconds`` of audio on one thread, batch 1."""
    torch.set_num_threads(1)
    model.eval()
    audio = torch.from_numpy(np.random.default_rng(0).standard_normal((1, int(16000 * seconds))).astype(np.float32))
    lengths = torch.tensor([audio.shape[1]])
    model(audio, lengths)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        model(audio, lengths)
        times.append(1000 * (time.perf_counter() - t))
    return {"ms_per_2s_utterance": statistics.median(times)}


@torch.no_grad()
def _padding_effect(model: nn.Module) -> float:
    """Largest log-prob change of a 1 s utterance when batched with a 3 s one (0: batching is exact)."""
    model.eval()
    rng = np.random.default_rng(1)
    short = torch.from_numpy(rng.standard_normal(16000).astype(np.float32)) * 0.1
    long = torch.from_numpy(rng.standard_normal(48000).astype(np.float32)) * 0.1
    alone, n = model(short.unsqueeze(0), torch.tensor([16000]))
    batch = torch.zeros(2, 48000)
    batch[0, :16000], batch[1] = short, long
    both, _ = model(batch, torch.tensor([16000, 48000]))
    return float((alone[0, : n[0]] - both[0, : n[0]]).abs().max())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--recipe", default="recipes/default.toml", help="data, frontend and augmentation of both arms")
    parser.add_argument("--minutes", type=float, default=24.0, help="training wall time of each arm (side by side)")
    parser.add_argument("--max-steps", type=int, default=1500, help="length of each arm's learning-rate schedule")
    parser.add_argument("--out", default="bench/results/architectures-cpu-2core-epyc", help="results folder")
    parser.add_argument("--runs", default="work/architectures", help="training runs (checkpoints; not committed)")
    args = parser.parse_args(argv)

    arms = ("quartznet", "conformer")
    ctx = mp.get_context("spawn")
    jobs = [(arm, args.recipe, args.runs, args.minutes, args.max_steps) for arm in arms]
    procs = [ctx.Process(target=_train_arm, args=job) for job in jobs]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        if p.exitcode:
            print(f"an arm failed (exit {p.exitcode})", file=sys.stderr)
            return 1

    from edgeasr.training.train import load_checkpoint

    recipe = TrainRecipe.from_toml(args.recipe)
    results = {}
    for arm in arms:
        report = json.loads((Path(args.runs) / arm / "report.json").read_text())
        model = build(arm, recipe)
        model.load_state_dict(load_checkpoint(Path(args.runs) / arm / "last.pt")["model"])
        minutes_per_step = report["seconds_this_run"] / 60 / max(1, report["steps"])
        results[arm] = {
            "parameters": report["parameters"],
            "steps": report["steps"],
            "train_minutes": round(report["seconds_this_run"] / 60, 1),
            "seconds_per_step_one_core": round(60 * minutes_per_step, 2),
            "dev_wer_greedy": report["history"]["dev"][-1]["wer"],
            "best_dev_wer_greedy": report["best_dev_wer"],
            "dev_curve": [(round(d["step"] * minutes_per_step, 1), d["wer"]) for d in report["history"]["dev"]],
            "padding_max_abs_diff": _padding_effect(model),
            **_inference_cost(model),
        }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"recipe": args.recipe, "minutes_each": args.minutes, "schedule_steps": args.max_steps, "arms": results}
    (out / "results.json").write_text(json.dumps(meta, indent=2) + "\n")
    lines = [
        f"{args.minutes:g} minutes of training each, side by side on one core each; data and augmentation of "
        f"{args.recipe}; dev WER greedy on 200 dev utterances",
        f"{'arm':<11}{'params':>10}{'steps':>7}{'s/step':>8}{'dev WER':>9}{'ms/2 s utt':>12}{'padding diff':>14}",
    ]
    for arm, r in results.items():
        lines.append(
            f"{arm:<11}{r['parameters']:>10,}{r['steps']:>7}{r['seconds_per_step_one_core']:>8.2f}"
            f"{100 * r['dev_wer_greedy']:>8.1f}%{r['ms_per_2s_utterance']:>12.1f}{r['padding_max_abs_diff']:>14.2e}"
        )
    (out / "report.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for arm, r in results.items():
        xs, ys = zip(*r["dev_curve"], strict=True) if r["dev_curve"] else ((), ())
        ax.plot(xs, [100 * y for y in ys], marker="o", label=f"{arm} ({r['parameters'] / 1e6:.2f} M)")
    ax.set_xlabel("training minutes (one core)")
    ax.set_ylabel("dev WER, greedy (%)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "dev_wer.png", dpi=100)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
