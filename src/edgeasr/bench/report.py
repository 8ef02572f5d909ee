"""Outputs of ``edgeasr bench``: the terminal table, JSON, CSV, PNG plots, and the machine's description.

Used by :mod:`edgeasr.bench.runner` (one backend) and :mod:`edgeasr.bench.suite` (side by side). Each
function takes the JSON-ready result dicts of :func:`edgeasr.bench.runner.run_bench`, so this module needs
no backend. ``results.csv`` uses perf_analyzer's column names and units (microseconds) where they
overlap, then edgeasr's own columns; ``results.json`` drops the per-request latency lists that only
the plots need; matplotlib is optional (no plots without it).
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import platform
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np

__all__ = [
    "gpu_name",
    "machine_info",
    "print_table",
    "write_csv",
    "write_json",
    "write_outputs",
    "write_plots",
]

_CSV_COLUMNS = [  # perf_analyzer's names first (latencies and server times in microseconds)
    ("Concurrency", lambda lv: lv["concurrency"] if lv["mode"] == "closed" else ""),
    ("Inferences/Second", lambda lv: round(lv["throughput_utt_s"], 3)),
    ("Server Queue", lambda lv: round(lv["server"].get("queue_ms_per_request", 0) * 1000)),
    ("Server Compute Input", lambda lv: round(lv["server"].get("compute_input_ms_per_request", 0) * 1000)),
    ("Server Compute Infer", lambda lv: round(lv["server"].get("compute_infer_ms_per_request", 0) * 1000)),
    ("Server Compute Output", lambda lv: round(lv["server"].get("compute_output_ms_per_request", 0) * 1000)),
    ("p50 latency", lambda lv: round(lv["p50_ms"] * 1000)),
    ("p90 latency", lambda lv: round(lv["p90_ms"] * 1000)),
    ("p95 latency", lambda lv: round(lv["p95_ms"] * 1000)),
    ("p99 latency", lambda lv: round(lv["p99_ms"] * 1000)),
    ("Avg latency", lambda lv: round(lv["mean_ms"] * 1000)),
    ("Request Rate", lambda lv: lv["offered_rate"] or ""),
    # edgeasr's own columns
    ("Mode", lambda lv: lv["mode"]),
    ("Audio Seconds/Second", lambda lv: round(lv["audio_s_per_s"], 3)),
    ("RTF", lambda lv: round(lv["rtf"], 6)),
    ("Requests", lambda lv: lv["requests"]),
    ("Errors", lambda lv: lv["errors"]),
    ("Batch Sizes", lambda lv: " ".join(f"{k}:{v}" for k, v in lv["server"].get("batch_size_histogram", {}).items())),
]


def _slim(obj):
    """Drop per-request latency lists (kept only for the plots)."""
    if isinstance(obj, dict):
        return {k: _slim(v) for k, v in obj.items() if k != "latencies_ms"}
    if isinstance(obj, list):
        return [_slim(v) for v in obj]
    return obj


def write_json(obj: dict, path: Path) -> None:
    """Write ``obj`` as indented JSON without the per-request latency lists."""
    path.write_text(json.dumps(_slim(obj), indent=2, default=str) + "\n")


def write_csv(runs: list[dict], path: Path) -> None:
    """One row per level of every run, perf_analyzer's column names where they overlap.

    Args:
        runs: :func:`run_bench` results; their ``label`` fills the ``Backend`` column.
        path: the CSV file.
    """
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow([name for name, _ in _CSV_COLUMNS] + ["Backend"])
        for run in runs:
            for lv in run["levels"]:
                w.writerow([get(lv) for _, get in _CSV_COLUMNS] + [run["label"]])


def write_plots(runs: list[dict], out: Path, title: str = "") -> list[Path]:
    """PNG plots: latency distribution, throughput against concurrency, WER per split.

    The WER plot is drawn when the runs hold more than one split. Nothing is drawn when
    matplotlib is missing.

    Args:
        runs: :func:`run_bench` results (with their latency lists).
        out: the output folder.
        title: a line above each plot.

    Returns:
        The files written.
    """
    try:
        import matplotlib
    except ImportError:
        return []
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    fig, ax = plt.subplots(figsize=(8, 4.5))
    shown = [
        (run, lv)
        for run in runs
        for lv in run["levels"]
        if lv["latencies_ms"] and (lv["mode"] == "open" or lv["concurrency"] in (1, 8))
    ]
    every = np.concatenate([np.asarray(lv["latencies_ms"]) for _, lv in shown]) if shown else np.ones(1)
    bins = np.geomspace(max(every.min(), 1e-3), max(every.max(), 2e-3), 50)  # log bins: tails stay visible
    for run, lv in shown:
        tag = f"c={lv['concurrency']}" if lv["mode"] == "closed" else f"open {lv['offered_rate']:g}/s"
        ax.hist(lv["latencies_ms"], bins=bins, histtype="step", label=f"{run['label']} {tag}")
    ax.set(
        xlabel="latency (ms, log scale)", ylabel="requests", xscale="log", title=f"latency distribution {title}".strip()
    )
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "latency.png", dpi=100)
    written.append(out / "latency.png")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4))
    levels = set()
    for run in runs:
        closed = [lv for lv in run["levels"] if lv["mode"] == "closed"]
        levels |= {lv["concurrency"] for lv in closed}
        ax.plot(
            [lv["concurrency"] for lv in closed],
            [lv["throughput_utt_s"] for lv in closed],
            marker="o",
            label=run["label"],
        )
    ax.set(
        xlabel="concurrency (closed loop)", ylabel="utterances / s", title=f"throughput {title}".strip(), xscale="log"
    )
    ax.minorticks_off()
    ax.set_xticks(sorted(levels), [str(c) for c in sorted(levels)])
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "throughput.png", dpi=100)
    written.append(out / "throughput.png")
    plt.close(fig)

    splits = sorted({s for run in runs for s, v in run["summary"].get("splits", {}).items() if v})
    if len(splits) > 1:
        fig, ax = plt.subplots(figsize=(7, 4))
        scored = [run for run in runs if run["summary"].get("splits")]
        width = 0.8 / max(1, len(scored))
        for i, run in enumerate(scored):
            wers = [100 * run["summary"]["splits"].get(s, {}).get("wer", np.nan) for s in splits]
            ax.bar(np.arange(len(splits)) + i * width, wers, width, label=run["label"])
        ax.set_xticks(np.arange(len(splits)) + width * (len(scored) - 1) / 2, splits)
        ax.set(ylabel="WER %", title=f"WER per split {title}".strip())
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / "wer_per_split.png", dpi=100)
        written.append(out / "wer_per_split.png")
        plt.close(fig)
    return written


def write_outputs(result: dict, out: Path) -> None:
    """``results.json``, ``results.csv`` and the PNG plots of a single-backend run.

    Args:
        result: a :func:`run_bench` result (optionally with ``budget`` and ``machine``).
        out: the folder (created).
    """
    out.mkdir(parents=True, exist_ok=True)
    write_json(result, out / "results.json")
    write_csv([result], out / "results.csv")
    write_plots([result], out, result["label"])


def print_table(result: dict) -> None:
    """Print the human-readable summary of one run."""
    s = result["summary"]
    print(f"\n[{result['label']}] {result['backend']}")
    if "wer" in s:
        print(
            f"accuracy: WER {100 * s['wer']:.2f}%  CER {100 * s['cer']:.2f}%  over {s['utterances']} utterances "
            f"({s['audio_seconds']:.0f} s of audio, mean {s['mean_utterance_s']:.2f} s)"
        )
        if len(s.get("splits", {})) > 1:
            print(
                "  per split: "
                + ", ".join(
                    f"{k} WER {100 * v['wer']:.2f}% CER {100 * v['cer']:.2f}%" for k, v in s["splits"].items() if v
                )
            )
    print(
        f"{'mode':<7}{'conc':>5}{'req':>6}{'err':>5}{'p50 ms':>9}{'p90':>8}{'p95':>8}{'p99':>8}{'utt/s':>8}"
        f"{'audio s/s':>10}{'RTF':>8}{'queue ms':>9}{'comp ms':>8}  batch sizes"
    )
    for lv in result["levels"]:
        hist = " ".join(f"{k}:{v}" for k, v in lv["server"].get("batch_size_histogram", {}).items())
        conc = lv["concurrency"] if lv["mode"] == "closed" else f"{lv['offered_rate']:g}/s"
        print(
            f"{lv['mode']:<7}{conc:>5}{lv['requests']:>6}{lv['errors']:>5}{lv['p50_ms']:>9.1f}{lv['p90_ms']:>8.1f}"
            f"{lv['p95_ms']:>8.1f}{lv['p99_ms']:>8.1f}{lv['throughput_utt_s']:>8.1f}{lv['audio_s_per_s']:>10.1f}"
            f"{lv['rtf']:>8.4f}{lv['server'].get('queue_ms_per_request', 0):>9.2f}"
            f"{lv['server'].get('compute_ms_per_request', 0):>8.2f}  {hist}"
        )
    for lv in result["levels"]:
        for message, n in lv.get("error_messages", {}).items():
            print(f"  {n} failed ({lv['mode']} {lv['concurrency']}): {message}")
    if s.get("p99_over_p50_similar"):
        print(
            f"tail at concurrency 1: p99/p50 {s['p99_over_p50']:.2f} over every utterance, "
            f"{s['p99_over_p50_similar']:.2f} over the {s['similar_requests']} within 0.8-1.25x the median length; "
            f"cost per audio second p50 {s['ms_per_audio_s_p50']:.2f} ms, p99 {s['ms_per_audio_s_p99']:.2f} ms"
        )
    if "peak_memory_mb" in s:
        print(f"peak memory {s['peak_memory_mb']:.0f} MiB, model {s.get('model_mb', 0):.2f} MiB")


def gpu_name() -> str:
    """The first CUDA GPU's name from ``nvidia-smi`` ("" where there is none)."""
    if shutil.which("nvidia-smi") is None:
        return ""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.strip().splitlines()[0].strip() if out.strip() else ""


def machine_info() -> dict:
    """The machine the numbers come from: CPU model and count, load, OS, GPU, library versions."""
    import importlib.metadata

    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for pkg in ("edgeasr", "onnxruntime", "numpy", "tritonclient", "nvidia-pytriton"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[pkg] = importlib.metadata.version(pkg)
    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "load_average_at_start": os.getloadavg(),
        "python": platform.python_version(),
        "gpu": gpu_name() or None,
        "versions": versions,
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
