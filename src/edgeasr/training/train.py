"""``edgeasr train``: CTC training with AdamW, warm-up and cosine decay, SpecAugment and audio augmentation.

What a run writes into its output folder:

- ``last.pt``: the resumable state (model, optimizer, scheduler, step, history), every
  ``checkpoint_every`` steps and at the end; ``--resume`` continues from it exactly.
- ``best.pt``: model weights, recipe and data version of the step with the lowest dev WER
  (the input of ``edgeasr export``), without optimizer state.
- ``report.json`` and ``report.png``: the loss and dev WER/CER curves, timings, the machine.

Every checkpoint loads with ``torch.load(weights_only=True)``. ``--init CHECKPOINT`` starts from
another model's weights (and its feature normalisation) with a fresh optimizer: fine-tuning, and
the continuous-training path; a recipe with more blocks than the checkpoint grows it
(:meth:`CTCModel.load_grown`: the new blocks start as identities). Several GPUs: launch with
``torchrun --nproc-per-node N -m edgeasr train ...``; each rank takes every N-th batch and
DistributedDataParallel averages gradients.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import platform
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jiwer
import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from edgeasr.audio import SAMPLE_RATE
from edgeasr.decoding import TOKENS, greedy_decode
from edgeasr.features import pad_room_tone
from edgeasr.manifest import data_version, load_row_audio, read_manifest, resolve_audio_path
from edgeasr.training.model import CTCModel, ModelConfig
from edgeasr.training.recipe import SpecAugmentConfig, TrainRecipe

# steps of a run between which a time-fitted run (``fit_schedule``) first measures its pace: after
# the first 20, which start the data-loader workers and warm up the device. It measures again over
# each doubling of its steps (120-240, 240-480, ...) while more than a fifth of its time is left:
# on a GPU the first batches of each new shape are slow (kernels are chosen per shape), so the
# first pace is low. A horizon reached before the next doubling, with that much time left, is
# fitted again there.
_PACE_FROM, _PACE_TO = 20, 120
_REFIT_UNTIL = 0.2  # refits stop once less than this fraction of the time budget is left

__all__ = [
    "TrainResult",
    "encode_text",
    "load_checkpoint",
    "load_model",
    "native_bf16",
    "resolve_precision",
    "train",
    "training_threads",
]

_TOKEN_INDEX = {t: i for i, t in enumerate(TOKENS) if i > 0}


def encode_text(text: str) -> list[int] | None:
    """Token ids of a normalized transcript, or None if it has a character outside the vocabulary."""
    try:
        return [_TOKEN_INDEX[c] for c in text]
    except KeyError:
        return None


def load_checkpoint(path: str | Path) -> dict:
    """Load a checkpoint safely (``weights_only=True``) onto the CPU."""
    return torch.load(path, map_location="cpu", weights_only=True)


def load_model(path: str | Path) -> tuple[CTCModel, dict]:
    """A :class:`CTCModel` in eval mode with the weights of a checkpoint, and the checkpoint dict."""
    ckpt = load_checkpoint(path)
    model = CTCModel(ModelConfig.from_dict(ckpt["recipe"]["model"]))
    model.load_trained_state(ckpt["model"])
    return model.eval(), ckpt


class _Utterances(torch.utils.data.Dataset):
    """Rows of a manifest as (waveform, token ids); augmentation seeded per (batch, item)."""

    def __init__(self, rows: list[dict], manifest: Path, augmenter=None) -> None:
        self.rows, self.manifest, self.augmenter = rows, manifest, augmenter

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key: tuple[int, int]) -> tuple[np.ndarray, list[int]]:
        index, seed = key
        row = self.rows[index]
        wave = load_row_audio(row, self.manifest, allow_outside=True)  # the recipe's own data
        if self.augmenter is not None:
            wave = self.augmenter(wave, np.random.default_rng(seed))
        return wave.astype(np.float32), row["_tokens"]


def _collate(items: list[tuple[np.ndarray, list[int]]], quantum: int = 0) -> dict[str, torch.Tensor]:
    """A batch padded to its longest row, rounded up to a multiple of ``quantum`` samples (0: not rounded)."""
    lengths = torch.tensor([len(w) for w, _ in items], dtype=torch.int64)
    longest = int(lengths.max())
    audio = torch.zeros(len(items), -(-longest // quantum) * quantum if quantum > 0 else longest)
    for i, (w, _) in enumerate(items):
        audio[i, : len(w)] = torch.from_numpy(w)
    targets = torch.tensor([t for _, ts in items for t in ts], dtype=torch.int64)
    target_lengths = torch.tensor([len(ts) for _, ts in items], dtype=torch.int64)
    return {"audio": audio, "lengths": lengths, "targets": targets, "target_lengths": target_lengths}


def _epoch_batches(
    durations: np.ndarray, max_seconds: float, seed: int, epoch: int, bucket: float = 0.0
) -> list[list[tuple[int, int]]]:
    """Batches of similar duration, at most ``max_seconds`` of padded audio each, in a seeded order.

    With ``bucket`` > 0 every batch holds rows of one bucket (durations rounded up to a multiple of
    ``bucket``), ``max_seconds`` over the bucket's length of them (the last of a bucket fewer): at
    most two batch sizes per bucket.
    """
    rng = np.random.default_rng([seed, epoch])
    if bucket > 0:
        buckets = np.maximum(1, np.ceil(durations / bucket - 1e-9)).astype(int)
        batches = []
        for k in np.unique(buckets):
            rows = rng.permutation(np.flatnonzero(buckets == k))
            size = max(1, int(max_seconds // (k * bucket)))
            batches += [[int(i) for i in rows[j : j + size]] for j in range(0, len(rows), size)]
        rng.shuffle(batches)
        return [[(i, int(rng.integers(2**31))) for i in b] for b in batches]
    order = np.argsort(durations + rng.uniform(0, 0.3, len(durations)), kind="stable")
    batches, current, longest = [], [], 0.0
    for idx in order:
        d = float(durations[idx])
        if current and max(longest, d) * (len(current) + 1) > max_seconds:
            batches.append(current)
            current, longest = [], 0.0
        current.append(int(idx))
        longest = max(longest, d)
    if current:
        batches.append(current)
    rng.shuffle(batches)
    return [[(i, int(rng.integers(2**31))) for i in b] for b in batches]


def _out_of_time(deadline: float, world: int, device: torch.device) -> bool:
    """Whether the wall-clock budget is spent; under DDP every rank follows rank 0's clock."""
    if math.isinf(deadline):
        return False
    flag = torch.tensor([float(time.time() >= deadline)], device=device)
    if world > 1:
        torch.distributed.broadcast(flag, src=0)
    return bool(flag.item())


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 natively (autocast there is faster, not emulated).

    Args:
        device: the training device.

    Returns:
        True for a CUDA GPU with bfloat16 support, for an x86 CPU with AVX512-BF16 or AMX, and for
        another CPU where oneDNN computes bfloat16 (an Arm core with BF16); False elsewhere. On an
        AVX2-only CPU bf16 autocast made a training step about 4x slower than fp32; on a 2-core Xeon
        with AVX512 but not AVX512-BF16 the encoder's forward and backward took 10.4 s against 3.4 s
        (``bench/train_step.py``, ``bench/results/eval-cpu-2core-xeon/train-step-pretrained-15.json``).
    """
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        return _cpu_computes_bf16(platform.machine())
    return False


def _cpu_computes_bf16(machine: str) -> bool:
    """Whether this CPU has bfloat16 instructions. On x86 oneDNN's own check
    (``torch.ops.mkldnn._is_mkldnn_bf16_supported``) holds on every AVX512 core, where oneDNN emulates
    bfloat16 with fp32 arithmetic, so the instructions themselves are asked for."""
    if machine.lower() in ("x86_64", "amd64", "i386", "i686", "x86"):
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def training_threads(threads: int, device: torch.device) -> int:
    """The training process's torch threads: ``threads`` when set (``optim.threads``), else one per
    core on a CPU and one on a GPU, where the process only feeds the device and the cores belong to
    the data workers (idle threads of a parallel region wait on cores the workers hold)."""
    if threads > 0:
        return threads
    return 1 if device.type == "cuda" else os.cpu_count() or 1


def resolve_precision(precision: str, device: torch.device) -> str:
    """The precision a recipe's ``optim.precision`` means on ``device``: "auto" becomes "bf16" where
    :func:`native_bf16` holds and "fp32" elsewhere; "fp32" and "bf16" stay as they are."""
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return precision


def _vtlp_factors(batch: int, cfg: SpecAugmentConfig, gen: torch.Generator) -> torch.Tensor | None:
    """Per-row VTLP factors (1.0 for rows left alone), or None when the recipe does not warp."""
    if cfg.warp_prob <= 0.0:
        return None
    chosen = torch.rand(batch, generator=gen) < cfg.warp_prob
    factors = 1.0 + (2.0 * torch.rand(batch, generator=gen) - 1.0) * cfg.warp_max
    return torch.where(chosen, factors, torch.ones(batch))


def _spec_augment(
    feats: torch.Tensor, lengths: torch.Tensor, cfg: SpecAugmentConfig, gen: torch.Generator
) -> torch.Tensor:
    """Frequency and time masks, drawn per row from ``gen`` and laid in one masked fill.

    A frequency mask covers all frames: past a row's length its features are zero anyway.
    """
    batch, n_mels, frames = feats.shape
    bands = torch.zeros(batch, n_mels, dtype=torch.bool)
    spans = torch.zeros(batch, frames, dtype=torch.bool)
    for b, length in enumerate(lengths.tolist()):  # one device read for the batch, not one per row
        for _ in range(cfg.freq_masks):
            w = int(torch.randint(0, cfg.freq_width + 1, (1,), generator=gen))
            f0 = int(torch.randint(0, max(1, n_mels - w), (1,), generator=gen))
            bands[b, f0 : f0 + w] = True
        for _ in range(min(cfg.time_masks, max(1, length // 50))):
            w = int(torch.randint(0, max(1, int(cfg.time_width * length)) + 1, (1,), generator=gen))
            t0 = int(torch.randint(0, max(1, length - w), (1,), generator=gen))
            spans[b, t0 : t0 + w] = True
    mask = bands.to(feats.device).unsqueeze(2) | spans.to(feats.device).unsqueeze(1)  # (batch, mels, frames)
    return feats.masked_fill(mask, 0.0)


def _prepare_rows(manifest: Path, max_seconds: float, scoring_only: bool = False) -> tuple[list[dict], dict[str, int]]:
    """Rows of ``manifest`` with their token ids, and counts of the rows left out (too long, unknown characters).

    ``scoring_only``: the rows only score checkpoints (a dev check), their audio never fits a weight,
    so rows spoken by an evaluation-only engine (MBROLA) are kept; otherwise they are refused.
    """
    from edgeasr.data.tts import ENGINES

    rows, skipped = [], {"too_long": 0, "unknown_characters": 0}
    for line, row in enumerate(read_manifest(manifest), 1):
        engine = ENGINES.get(str(row.get("engine", "")))
        if engine is not None and not engine.commercial_use and not scoring_only:
            raise ValueError(
                f"{manifest}: row {line} is spoken by {engine.name}, whose licence forbids use in a product "
                f"that is sold ({engine.licence}): its voices are for evaluation only, never training"
            )
        tokens = encode_text(row["text"])
        if tokens is None or not tokens:
            skipped["unknown_characters"] += 1
        elif float(row["duration"]) > max_seconds:
            skipped["too_long"] += 1
        else:
            rows.append({**row, "_tokens": tokens})
    return rows, skipped


@torch.no_grad()
def _feature_statistics(model: CTCModel, dataset: _Utterances, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    frames = []
    for i in range(min(count, len(dataset))):
        wave, _ = dataset[(i, 0)]
        frames.append(model.frontend.log_mel(torch.from_numpy(wave).unsqueeze(0))[0])
    allf = torch.cat(frames, dim=1)
    return allf.mean(dim=1), allf.std(dim=1)


@torch.no_grad()
def evaluate_model(model: CTCModel, rows: list[dict], manifest: Path, device: torch.device, batch: int = 16) -> dict:
    """Greedy-decode ``rows`` with the torch model; returns WER, CER and the hypotheses.

    Each utterance gets the room tone the model asks for (``ModelConfig.input_pad_seconds``), as
    the runtime will give it.
    """
    model.eval()
    hyps, refs = [], []
    for start in range(0, len(rows), batch):
        chunk = rows[start : start + batch]
        pad = float(getattr(model, "input_pad_seconds", 0.0))
        waves = [pad_room_tone(load_row_audio(r, manifest, allow_outside=True), pad) for r in chunk]
        b = _collate([(w, []) for w in waves])
        logp, lengths = model(b["audio"].to(device), b["lengths"].to(device))
        logp = logp.cpu().numpy()
        for i, r in enumerate(chunk):
            hyps.append(greedy_decode(logp[i, : int(lengths[i])]).text)
            refs.append(r["text"])
    return {
        "wer": float(jiwer.wer(refs, hyps)) if refs else 0.0,
        "cer": float(jiwer.cer(refs, hyps)) if refs else 0.0,
        "hypotheses": hyps,
    }


def _lr_lambda(optim, horizon: Callable[[], int] | None = None) -> Callable[[int], float]:
    """Linear warm-up, then a cosine down to ``final_lr_ratio`` at ``horizon()`` steps (the recipe's
    ``max_steps`` unless a time-fitted run has measured its own)."""

    def f(step: int) -> float:
        if step < optim.warmup_steps:
            return (step + 1) / optim.warmup_steps
        total = horizon() if horizon is not None else optim.max_steps
        progress = min(1.0, (step - optim.warmup_steps) / max(1, total - optim.warmup_steps))
        return optim.final_lr_ratio + (1 - optim.final_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return f


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` hands back."""

    out_dir: Path  # the run folder (checkpoints and report)
    best_checkpoint: Path  # best.pt: lowest dev WER
    best_dev_wer: float  # dev WER of best.pt
    steps: int  # optimizer steps taken in total (across resumed runs)
    data_version: str  # version of the training manifest


def _save_plot(history: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.5))
    if history["train"]:
        ax1.plot([h["step"] for h in history["train"]], [h["loss"] for h in history["train"]])
    ax1.set(xlabel="step", ylabel="CTC loss", title="training loss", yscale="log")
    if history["dev"]:
        steps = [h["step"] for h in history["dev"]]
        ax2.plot(steps, [100 * h["wer"] for h in history["dev"]], marker="o", label="WER")
        ax2.plot(steps, [100 * h["cer"] for h in history["dev"]], marker="o", label="CER")
        ax2.legend()
    ax2.set(xlabel="step", ylabel="%", title="dev error rate")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def train(
    recipe: TrainRecipe,
    out_dir: str | Path,
    *,
    resume: bool = False,
    init: str | Path | None = None,
    max_steps: int | None = None,
    progress: bool = True,
    max_minutes: float | None = None,
    model: nn.Module | None = None,
    fit_schedule: bool = False,
) -> TrainResult:
    """Train a :class:`CTCModel` by ``recipe`` into ``out_dir``.

    Args:
        recipe: the training recipe.
        out_dir: run folder; created if missing.
        resume: continue from ``out_dir/last.pt`` (model, optimizer, schedule, step, history).
        init: start from this checkpoint's weights with a fresh optimizer (fine-tuning).
        max_steps: stop after this many steps in total (overrides the recipe's schedule length
            only for stopping; the learning-rate schedule still follows the recipe).
        progress: show a progress bar.
        max_minutes: stop once this run has trained this many minutes of wall time (after the
            step in flight; then the last evaluation and checkpoint as at any stop). Several runs
            with ``resume`` share a time budget by passing what is left to each.
        fit_schedule: fit the learning-rate schedule to ``max_minutes`` instead of the recipe's
            ``max_steps``: the run measures its pace over steps 20 to 120 of this run, then sets its
            horizon (the step where the cosine reaches ``final_lr_ratio`` and the run stops) to the
            steps that fit in 97% of the time left, and sets it again from the pace of each doubling
            of its steps (120-240, 240-480, ...), or at a horizon reached sooner, while more than a
            fifth of the time is left. For a
            machine lent for a fixed time, where the pace is not known ahead. The horizon is kept in
            ``last.pt`` (``--resume`` keeps it, unfitted again) and reported as ``horizon_steps``.
        model: train this model instead of ``CTCModel(recipe.model)``: anything with a
            ``frontend`` (:class:`~edgeasr.training.frontend.LogMelFrontend`), ``encode``, ``forward`` and
            ``num_parameters`` like :class:`~edgeasr.training.model.CTCModel`. For architecture
            experiments (``bench/architectures.py``); only CTCModel checkpoints export.

    Returns:
        A :class:`TrainResult`.

    Raises:
        FileNotFoundError: a manifest or checkpoint is missing.
        ValueError: the training manifest has no usable rows, or ``fit_schedule`` without ``max_minutes``.
    """
    if fit_schedule and max_minutes is None:
        raise ValueError("fit_schedule needs max_minutes: the schedule is fitted to a time budget")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    opt_cfg = recipe.optim
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world > 1:
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    if torch.cuda.is_available():
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    else:
        device = torch.device("cpu")
    torch.set_num_threads(training_threads(opt_cfg.threads, device))
    torch.manual_seed(opt_cfg.seed)

    train_manifest, dev_manifest = Path(recipe.data.train_manifest), Path(recipe.data.dev_manifest)
    rows, skipped = _prepare_rows(train_manifest, recipe.data.max_utterance_seconds)
    versions = [data_version(train_manifest)]
    for extra, repeats in recipe.data.extras():
        more, more_skipped = _prepare_rows(Path(extra), recipe.data.max_utterance_seconds)
        more = [{**r, "audio_filepath": str(resolve_audio_path(r, extra))} for r in more]  # absolute: any base
        rows += more * repeats
        skipped = {k: skipped[k] + more_skipped[k] for k in skipped}
        versions.append(f"{data_version(extra)}x{repeats}")
    if not rows:
        raise ValueError(f"{train_manifest}: no usable training rows ({skipped})")
    dev_rows, _ = _prepare_rows(dev_manifest, 1e9, scoring_only=True)
    dev_rows = dev_rows[: recipe.data.dev_max_utterances]
    dv = versions[0] if len(versions) == 1 else "dv-" + hashlib.sha256("+".join(versions).encode()).hexdigest()[:16]

    augmenter = None
    if recipe.data.augment:
        from edgeasr.data.augment import Augmenter

        augmenter = Augmenter(recipe.augment, seed=opt_cfg.seed)
    dataset = _Utterances(rows, train_manifest, augmenter)

    model = model if model is not None else CTCModel(recipe.model)
    history: dict = {"train": [], "dev": []}
    step, epoch, epoch_pos, best_wer, init_from = 0, 0, 0, float("inf"), None
    horizon: int | None = None  # a time-fitted run's schedule length, once measured
    state = None
    if resume and (out / "last.pt").exists():
        state = load_checkpoint(out / "last.pt")
        model.load_trained_state(state["model"])
        step, best_wer, history = state["step"], state["best_wer"], state["history"]
        epoch, epoch_pos = state["epoch"], state["epoch_pos"]
        init_from = state.get("init_from")
        horizon = state.get("horizon")
    elif init is not None:
        src = load_checkpoint(init)
        source = ModelConfig.from_dict(src["recipe"]["model"])
        if source.kernels != model.cfg.kernels:  # a deeper recipe grows from a shallower checkpoint
            grown = model.load_grown(src["model"], source)
            print(f"grown from {init}: blocks {grown} of {len(model.cfg.kernels)} start as identities")
        else:
            model.load_trained_state(src["model"], starting=True)
        init_from = str(init)
    elif not model.frontend.fixed_normalization:  # a pretrained encoder's frontend has its own fixed scale
        mean, std = _feature_statistics(model, _Utterances(rows, train_manifest), recipe.data.normalization_utterances)
        model.frontend.set_normalization(mean, std)
    if opt_cfg.freeze:
        held = [p for n, p in model.named_parameters() if p.requires_grad and n.startswith(opt_cfg.freeze)]
        if not held:
            raise ValueError(f"optim.freeze {list(opt_cfg.freeze)} matches no trainable weight of the model")
        for p in held:
            p.requires_grad_(False)  # AdamW steps only weights with a gradient: these keep their values
    distiller = None
    if recipe.distill.weight > 0:
        from edgeasr.training.distill import EncoderDistillation

        distiller = EncoderDistillation(recipe.distill, model.cfg.channels)
        if state is not None and "distill" in state:
            distiller.load_trained_state(state["distill"])
        distiller.to(device)
    model.to(device)
    net = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    distill_net = None
    if distiller is not None:
        distill_net = torch.nn.parallel.DistributedDataParallel(distiller) if world > 1 else distiller
    trained = list(model.parameters()) + (list(distiller.project.parameters()) if distiller is not None else [])

    optimizer = torch.optim.AdamW(trained, lr=opt_cfg.lr, weight_decay=opt_cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _lr_lambda(opt_cfg, lambda: horizon if horizon is not None else opt_cfg.max_steps)
    )
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
    ctc = nn.CTCLoss(blank=0, zero_infinity=True)
    gen = torch.Generator()
    durations = np.array([float(r["duration"]) for r in rows])
    stop_at = opt_cfg.max_steps if max_steps is None else max_steps
    if horizon is not None:
        stop_at = min(stop_at, horizon) if max_steps is not None else horizon
    elif fit_schedule:
        stop_at = max_steps if max_steps is not None else 2**62  # until the pace is measured
    precision = resolve_precision(opt_cfg.precision, device)
    if precision == "bf16" and not native_bf16(device) and rank == 0:
        warnings.warn(
            f"optim.precision = 'bf16' on {device.type} without native bfloat16: autocast is emulated "
            "(about 4x slower than fp32 on an AVX2 CPU); precision = 'auto' chooses for the device",
            stacklevel=2,
        )
    meta = {"recipe": recipe.to_dict(), "data_version": dv, "init_from": init_from}

    def checkpoint(path: Path, with_optimizer: bool) -> None:
        payload = {"model": model.trained_state_dict(), "step": step, "best_wer": best_wer, "horizon": horizon, **meta}
        if with_optimizer:
            if distiller is not None:
                payload["distill"] = distiller.trained_state_dict()
            payload.update(
                optimizer=optimizer.state_dict(),
                scheduler=scheduler.state_dict(),
                history=history,
                epoch=epoch,
                epoch_pos=epoch_pos,
            )
        tmp = path.with_suffix(".tmp")
        torch.save(payload, tmp)
        os.replace(tmp, path)

    def run_eval() -> None:
        nonlocal best_wer
        res = evaluate_model(model, dev_rows, dev_manifest, device)
        history["dev"].append({"step": step, "wer": res["wer"], "cer": res["cer"]})
        if res["wer"] < best_wer or not (out / "best.pt").exists():
            best_wer = min(best_wer, res["wer"])
            checkpoint(out / "best.pt", with_optimizer=False)
        bar.set_postfix(loss=f"{running:.3f}", dev_wer=f"{100 * res['wer']:.1f}%")
        model.train()

    started, first_step = time.time(), step
    deadline = started + 60.0 * max_minutes if max_minutes is not None else math.inf
    bar = tqdm(
        total=stop_at if stop_at < 2**62 else None,
        initial=step,
        disable=not progress or rank != 0,
        desc="train",
        unit="step",
    )
    running = history["train"][-1]["loss"] if history["train"] else float("nan")
    running_distill = history["train"][-1].get("distill", float("nan")) if history["train"] else float("nan")
    pace_from = None  # (step, time) where a time-fitted run's current pace window started
    fitting = fit_schedule and horizon is None  # a resumed run keeps the horizon it was given
    model.train()
    if distiller is not None:
        distiller.train()
    while step < stop_at:
        # epoch_pos counts batches of this epoch already consumed (by all ranks), so --resume
        # continues with exactly the batch that would have come next.
        batches = _epoch_batches(
            durations, recipe.data.max_batch_seconds, opt_cfg.seed, epoch, recipe.data.bucket_seconds
        )
        batches = batches[epoch_pos:][rank::world]
        loader = torch.utils.data.DataLoader(
            dataset,
            batch_sampler=batches,
            collate_fn=functools.partial(_collate, quantum=round(recipe.data.bucket_seconds * SAMPLE_RATE)),
            num_workers=recipe.data.num_workers,
            persistent_workers=False,
        )
        for batch in loader:
            # randomness (dropout, SpecAugment) is seeded per step, so --resume repeats it exactly
            torch.manual_seed(opt_cfg.seed * 1_000_003 + step)
            gen.manual_seed(opt_cfg.seed * 1_000_003 + step)
            audio, lengths = batch["audio"].to(device), batch["lengths"].to(device)
            warp = _vtlp_factors(audio.shape[0], recipe.spec_augment, gen)
            feats, flen = model.frontend(audio, lengths, warp)
            unmasked = feats
            feats = _spec_augment(feats, flen, recipe.spec_augment, gen)
            encoder = net.module.encode if world > 1 else net.encode
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
                logp, olen, *hidden = encoder(feats, flen, return_hidden=distiller is not None)
                if distill_net is not None:
                    distill_loss = distill_net(unmasked, flen, hidden[0], olen)
            logp = logp.float()  # the CTC loss sums over long paths: always in fp32
            loss = ctc(logp.transpose(0, 1), batch["targets"].to(device), olen, batch["target_lengths"].to(device))
            total = loss + recipe.distill.weight * distill_loss if distill_net is not None else loss
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            nn.utils.clip_grad_norm_(trained, opt_cfg.grad_clip)
            optimizer.step()
            scheduler.step()
            step += 1
            epoch_pos += world
            if fitting:
                done = step - first_step
                windows, rest = divmod(done, _PACE_TO)
                at_doubling = rest == 0 and windows > 0 and windows & (windows - 1) == 0  # 120, 240, 480...
                if done == _PACE_FROM:
                    pace_from = (step, time.time())
                elif pace_from is not None and (at_doubling or (horizon is not None and step >= horizon)):
                    # a horizon reached before the next doubling is fitted again too, while time is left
                    now = time.time()
                    pace = (step - pace_from[0]) / max(now - pace_from[1], 1e-9)
                    fitting = deadline - now > _REFIT_UNTIL * 60.0 * max_minutes
                    if at_doubling or fitting:
                        horizon = step + int(0.97 * pace * max(0.0, deadline - now))
                    if world > 1:  # every rank takes rank 0's horizon and refit (they reach this step together)
                        shared = torch.tensor([horizon, int(fitting)], device=device)
                        torch.distributed.broadcast(shared, 0)
                        horizon, fitting = int(shared[0].item()), bool(shared[1].item())
                    stop_at = horizon if max_steps is None else min(max_steps, horizon)
                    pace_from = (step, now)
                    if rank == 0:
                        bar.total = stop_at
                        print(f"\nfitted schedule: {pace:.2f} steps/s, horizon {horizon} steps", flush=True)
            value = loss.item()
            running = value if math.isnan(running) else 0.95 * running + 0.05 * value
            if distill_net is not None:
                value = distill_loss.item()
                running_distill = value if math.isnan(running_distill) else 0.95 * running_distill + 0.05 * value
            if step % 10 == 0:
                history["train"].append({"step": step, "loss": running, "lr": scheduler.get_last_lr()[0]})
                if distill_net is not None:
                    history["train"][-1]["distill"] = running_distill
            bar.update(1)
            bar.set_postfix(loss=f"{running:.3f}", dev_wer=f"{100 * best_wer:.1f}%" if best_wer < 1e9 else "-")
            if rank == 0 and step % opt_cfg.eval_every == 0:
                run_eval()
            if rank == 0 and step % opt_cfg.checkpoint_every == 0:
                checkpoint(out / "last.pt", with_optimizer=True)
            if step >= stop_at or _out_of_time(deadline, world, device):
                stop_at = step
                break
        else:
            epoch, epoch_pos = epoch + 1, 0
    bar.close()
    if rank == 0:
        if not history["dev"] or history["dev"][-1]["step"] != step:
            run_eval()
        checkpoint(out / "last.pt", with_optimizer=True)
        report = {
            "recipe": recipe.to_dict(),
            "data_version": dv,
            "train_rows": len(rows),
            "skipped_rows": skipped,
            "train_audio_hours": float(durations.sum() / 3600),
            "parameters": model.num_parameters(),
            "steps": step,
            "seconds_this_run": round(time.time() - started, 1),
            "best_dev_wer": best_wer,
            "horizon_steps": horizon,
            "history": history,
            "init_from": init_from,
            "precision": precision,
            "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "device": str(device)},
        }
        (out / "report.json").write_text(json.dumps(report, indent=2))
        _save_plot(history, out / "report.png")
    if world > 1:
        torch.distributed.destroy_process_group()
    return TrainResult(out, out / "best.pt", best_wer, step, dv)
