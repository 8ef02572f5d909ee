"""Where a training step's time goes on this machine: data workers, the frontend, SpecAugment, the
encoder's forward and backward (bf16 and fp32, cuDNN autotuning off and on), the CTC loss and the
optimizer.

Written after the first GPU lease (2026-12-04, one H200, 16 cores): general-8a and general-8b,
trained side by side, took about 1.2 s a step, where a 2-core CPU takes 2.9 s, while each part of
a step timed here on one repeated batch came to about 80 ms and the data workers delivered 46
batches a second. What a training run does that those timings did not: every batch is a new
(rows, samples) shape, and the data workers hold the cores while the step's CPU side runs. The
``new_shape_each_call`` rows time the first (the suspect: kernels planned per shape;
``data.bucket_seconds`` is the remedy if so), the ``workers_busy`` rows the second (the suspect:
parallel regions of a process with one thread per core waiting on cores the workers hold; a
training process on a GPU now keeps one thread).

    python bench/train_step.py --recipe recipes/general-8a.toml --manifest work/carried/check3.jsonl

Prints one table; ``--out FILE`` writes the numbers as JSON. Needs torch and the manifest's audio.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import threading
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgeasr.data.augment import Augmenter
from edgeasr.training import train as training
from edgeasr.training.model import CTCModel
from edgeasr.training.recipe import TrainRecipe


class _Printed(dict):
    """A dict that prints each entry as it is set: a call cut off at its limit still shows what it measured."""

    def __setitem__(self, key, value) -> None:
        super().__setitem__(key, value)
        if isinstance(value, list):
            print(key, flush=True)
            for item in value:
                print("   ", item, flush=True)
        else:
            print(f"{key:55s} {value}", flush=True)

    def update(self, other: dict) -> None:  # type: ignore[override]
        for key, value in other.items():
            self[key] = value


def _timed(fn, device: torch.device, repeats: int = 8) -> float:
    """Median wall time of ``fn()`` in ms, after two warm-up calls (device work included)."""
    times = []
    for i in range(repeats + 2):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= 2:
            times.append(1000 * (time.perf_counter() - t))
    return statistics.median(times)


def _loader_rate(dataset, durations: np.ndarray, seconds: float, workers: int, batches: int) -> float:
    """Batches a second that a DataLoader with ``workers`` processes delivers (after its first batch)."""
    plan = training._epoch_batches(durations, seconds, 0, 0)[: batches + 1]
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=plan, collate_fn=training._collate, num_workers=workers)
    it = iter(loader)
    next(it)
    t = time.perf_counter()
    n = sum(1 for _ in it)
    return n / (time.perf_counter() - t)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", default="recipes/general-8a.toml")
    parser.add_argument("--manifest", default="work/carried/check3.jsonl", help="audio for the batches")
    parser.add_argument("--workers", default="7,14", help="DataLoader worker counts to time")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    recipe = TrainRecipe.from_toml(args.recipe)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    manifest = Path(args.manifest)
    rows, _ = training._prepare_rows(manifest, recipe.data.max_utterance_seconds)
    rows = [{**r, "audio_filepath": str(training.resolve_audio_path(r, manifest))} for r in rows] * 20
    augmenter = Augmenter(recipe.augment, seed=0)
    dataset = training._Utterances(rows, manifest, augmenter)
    durations = np.array([float(r["duration"]) for r in rows])
    result: _Printed = _Printed()
    result.update({"device": str(device), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads()})
    if device.type == "cuda":
        result["gpu"] = torch.cuda.get_device_name(0)

    t = time.perf_counter()
    audio_seconds = sum(len(dataset[(i, i)][0]) for i in range(60)) / 16000
    result["augment_x_realtime_one_process"] = round(audio_seconds / (time.perf_counter() - t), 1)
    for w in [int(x) for x in args.workers.split(",") if x]:
        result[f"loader_batches_per_s_{w}_workers"] = round(
            _loader_rate(dataset, durations, recipe.data.max_batch_seconds, w, 30), 2
        )

    plan = training._epoch_batches(durations, recipe.data.max_batch_seconds, 0, 0)
    batch = training._collate([dataset[key] for key in max(plan, key=len)])
    result["batch"] = {"rows": int(batch["audio"].shape[0]), "samples": int(batch["audio"].shape[1])}
    model = CTCModel(recipe.model).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    ctc = nn.CTCLoss(blank=0, zero_infinity=True)
    gen = torch.Generator()
    audio, lengths = batch["audio"].to(device), batch["lengths"].to(device)
    targets, target_lengths = batch["targets"].to(device), batch["target_lengths"].to(device)
    result["ms_host_to_device"] = round(_timed(lambda: batch["audio"].to(device), device), 2)
    warp = training._vtlp_factors(audio.shape[0], recipe.spec_augment, gen)
    result["ms_frontend_with_vtlp"] = round(_timed(lambda: model.frontend(audio, lengths, warp), device), 2)
    feats, flen = model.frontend(audio, lengths, warp)
    result["ms_spec_augment"] = round(
        _timed(lambda: training._spec_augment(feats, flen, recipe.spec_augment, gen), device), 2
    )

    def encoder_step(bf16: bool) -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logp, olen = model.encode(feats.detach(), flen)
        loss = ctc(logp.float().transpose(0, 1), targets, olen, target_lengths)
        opt.zero_grad(set_to_none=True)
        loss.backward()

    for bench_flag in (False, True):
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = bench_flag
        for bf16 in (True, False):
            key = f"ms_encoder_fwd_bwd_{'bf16' if bf16 else 'fp32'}_cudnn_benchmark_{bench_flag}"
            result[key] = round(_timed(lambda bf16=bf16: encoder_step(bf16), device), 2)
        if device.type != "cuda":
            break
    # A new (batch, time) shape each call, as batches of free lengths give, against the same few
    # shapes again and again, as length buckets (data.bucket_seconds) give.
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = False
    calls = iter(range(10_000))

    def shaped_step(new_shape: bool) -> None:
        k = next(calls)
        cut = audio.shape[1] - 160 * (k if new_shape else k % 3) - 1
        rows = audio.shape[0] - (k % 5 if new_shape else 0)
        f, fl = model.frontend(audio[:rows, :cut], lengths[:rows].clamp(max=cut))
        with torch.autocast(device.type, dtype=torch.bfloat16):
            logp, olen = model.encode(f, fl)
        loss = (
            ctc(logp.float().transpose(0, 1), targets, olen, target_lengths) if rows == audio.shape[0] else logp.sum()
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()

    result["ms_step_bf16_repeated_shapes"] = round(_timed(lambda: shaped_step(False), device), 2)
    result["ms_step_bf16_new_shape_each_call"] = round(_timed(lambda: shaped_step(True), device), 2)
    if device.type == "cuda":
        torch.backends.cudnn.enabled = False
        result["ms_step_bf16_new_shape_each_call_no_cudnn"] = round(_timed(lambda: shaped_step(True), device), 2)
        torch.backends.cudnn.enabled = True
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = False
        try:
            from torch.profiler import ProfilerActivity, profile

            with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
                encoder_step(True)
                torch.cuda.synchronize()
            result["top_cuda_kernels_bf16"] = [
                (e.key[:90], round(e.device_time_total / 1000, 2), e.count)
                for e in sorted(prof.key_averages(), key=lambda e: -e.device_time_total)[:12]
            ]
        except Exception as exc:  # the profile is a hint; the timings above are the result
            result["top_cuda_kernels_bf16"] = [repr(exc)]
    result["ms_optimizer_step"] = round(_timed(lambda: opt.step(), device), 2)

    # The same CPU-side work of a step while data workers hold the cores, as in a run: with the
    # training process's threads (one on a GPU) and with one per core.
    workers = max(1, (os.cpu_count() or 2) - 2)
    stop = threading.Event()

    def consume() -> None:
        plan = training._epoch_batches(durations, recipe.data.max_batch_seconds, 0, 1)
        loader = torch.utils.data.DataLoader(
            dataset, batch_sampler=plan, collate_fn=training._collate, num_workers=workers
        )
        for _ in loader:
            if stop.is_set():
                break

    feeder = threading.Thread(target=consume, daemon=True)
    feeder.start()
    time.sleep(3.0)  # the workers are up and busy
    for threads in sorted({training.training_threads(0, device), os.cpu_count() or 1}):
        torch.set_num_threads(threads)
        result[f"ms_frontend_and_spec_augment_with_{workers}_workers_busy_{threads}_threads"] = round(
            _timed(
                lambda: training._spec_augment(*model.frontend(audio, lengths, warp), recipe.spec_augment, gen), device
            ),
            2,
        )
    stop.set()
    feeder.join(timeout=60)  # the loader ends at its next batch

    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
