"""``edgeasr bench``: accuracy, latency and throughput from one run, held against budgets.

One run over a manifest measures, on device (onnxruntime in process) or through Triton (gRPC):

- accuracy: WER and CER (jiwer) of the transcripts of the concurrency-1 pass;
- latency percentiles p50/p90/p95/p99, throughput (utterances/s, audio seconds/s) and the real-time
  factor, per level of a closed-loop concurrency sweep (1, 2, 4, 8, ...), and optionally an
  open-loop pass with Poisson arrivals at a fixed request rate;
- with Triton: the server's own split of queue and compute time and the histogram of executed
  batch sizes, from ``get_inference_statistics`` deltas over the run;
- on device: the peak resident memory of the process and the model size.

Audio lengths are those of the manifest, as they are; warm-up requests are excluded. Outputs: a
table on the terminal, ``results.json``, ``results.csv`` (perf_analyzer's column names where they
overlap) and PNG plots in ``--out``. With ``--budgets`` and ``--target`` a missed limit makes the
command exit 1 after printing what missed by how much.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import jiwer
import numpy as np
from tqdm import tqdm

from edgeasr.audio import load_audio
from edgeasr.budgets import check_budget, load_budget
from edgeasr.manifest import read_manifest, resolve_audio_path

__all__ = [
    "BenchOptions",
    "DeviceBackend",
    "LevelResult",
    "TritonBackend",
    "Utterance",
    "add_bench_arguments",
    "load_workload",
    "run_bench",
    "run_bench_command",
]


@dataclass(frozen=True)
class BenchOptions:
    """What one bench run measures."""

    concurrency: tuple[int, ...] = (1, 2, 4, 8)  # closed-loop levels; each sends ``requests`` requests
    requests: int = 0  # requests per level; 0 = every utterance of the workload once
    warmup: int = 3  # requests sent before measuring (not counted)
    rate: float = 0.0  # open-loop Poisson arrivals, requests per second (0 = no open-loop pass)
    seed: int = 0  # seeds the open-loop arrival times and the request order


@dataclass(frozen=True)
class Utterance:
    """One request of the workload."""

    audio: np.ndarray  # 16 kHz mono float32
    reference: str  # the manifest's text ("" when unlabelled)
    path: str  # the audio file

    @property
    def seconds(self) -> float:
        return self.audio.size / 16000


@dataclass
class LevelResult:
    """Measurements of one concurrency level (or the open-loop pass)."""

    mode: str  # "closed" or "open"
    concurrency: int  # closed: in-flight requests; open: worker threads
    requests: int  # measured requests
    errors: int  # requests that failed
    wall_s: float  # wall time of the level
    audio_s: float  # audio seconds processed
    p50_ms: float = 0.0
    p90_ms: float = 0.0
    p95_ms: float = 0.0
    p99_ms: float = 0.0
    mean_ms: float = 0.0
    throughput_utt_s: float = 0.0  # requests per wall second
    audio_s_per_s: float = 0.0  # audio seconds per wall second
    rtf: float = 0.0  # real-time factor: wall seconds per audio second (lower is faster)
    offered_rate: float = 0.0  # open loop: requested arrivals per second
    server: dict = field(default_factory=dict)  # Triton statistics deltas
    latencies_ms: list = field(default_factory=list, repr=False)


def load_workload(manifest: str | Path, limit: int = 0) -> list[Utterance]:
    """Read a manifest's audio into memory (first ``limit`` rows; 0 = all)."""
    rows = read_manifest(manifest)
    rows = rows[:limit] if limit else rows
    return [Utterance(load_audio(resolve_audio_path(r, manifest)), r.get("text", ""),
                      str(resolve_audio_path(r, manifest))) for r in rows]


class DeviceBackend:
    """On-device recognition; one Recognizer shared by all threads (onnxruntime is thread-safe)."""

    kind = "device"

    def __init__(self, model: str | Path, threads: int = 1) -> None:
        from edgeasr.recognizer import Recognizer, RecognizerOptions

        self.recognizer = Recognizer(model, RecognizerOptions(threads=threads))
        self.model_mb = self.recognizer.model_path.stat().st_size / 2**20
        self.description = f"on-device onnxruntime, {threads} thread(s), {self.recognizer.model_path}"

    def transcribe(self, audio: np.ndarray) -> str:
        return self.recognizer.transcribe(audio, 16000).text

    def statistics(self) -> dict:
        return {}


class TritonBackend:
    """Triton over gRPC: one client per thread, the server's statistics read around each level."""

    kind = "triton"

    def __init__(self, url: str, model_name: str = "edgeasr", model_version: str = "") -> None:
        from edgeasr.client import TritonClient

        self._local = threading.local()
        self._factory = lambda: TritonClient(url, model_name, model_version)
        self.url, self.model_name, self.model_version = url, model_name, model_version
        self.model_mb = None
        self.description = f"Triton gRPC {url}, model {model_name} version {model_version or 'latest'}"

    def transcribe(self, audio: np.ndarray) -> str:
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = self._factory()
        return client.transcribe(audio, 16000).text

    def statistics(self) -> dict:
        """Cumulative queue/compute times (ns) and executed batch sizes of the model."""
        import tritonclient.grpc as grpcclient

        with grpcclient.InferenceServerClient(self.url) as c:
            stats = c.get_inference_statistics(self.model_name, self.model_version, as_json=True)
        out = {"queue_ns": 0, "compute_infer_ns": 0, "compute_input_ns": 0, "compute_output_ns": 0,
               "success": 0, "executions": 0, "batches": {}}
        for m in stats.get("model_stats", []):
            inf = m.get("inference_stats", {})
            out["queue_ns"] += int(inf.get("queue", {}).get("ns", 0))
            out["compute_infer_ns"] += int(inf.get("compute_infer", {}).get("ns", 0))
            out["compute_input_ns"] += int(inf.get("compute_input", {}).get("ns", 0))
            out["compute_output_ns"] += int(inf.get("compute_output", {}).get("ns", 0))
            out["success"] += int(inf.get("success", {}).get("count", 0))
            out["executions"] += int(m.get("execution_count", 0))
            for b in m.get("batch_stats", []):
                size = int(b["batch_size"])
                out["batches"][size] = out["batches"].get(size, 0) + int(b.get("compute_infer", {}).get("count", 0))
        return out


def _stats_delta(before: dict, after: dict) -> dict:
    if not before:
        return {}
    delta = {k: after[k] - before[k] for k in before if k != "batches"}
    batches = {s: after["batches"].get(s, 0) - before["batches"].get(s, 0) for s in after["batches"]}
    delta["batch_size_histogram"] = {int(s): n for s, n in sorted(batches.items()) if n}
    n = max(1, delta["success"])
    delta["queue_ms_per_request"] = delta["queue_ns"] / n / 1e6
    delta["compute_ms_per_request"] = (delta["compute_infer_ns"] + delta["compute_input_ns"] + delta["compute_output_ns"]) / n / 1e6
    return delta


def _summarize(level: LevelResult) -> LevelResult:
    lat = np.array(level.latencies_ms) if level.latencies_ms else np.array([np.nan])
    level.p50_ms, level.p90_ms, level.p95_ms, level.p99_ms = (float(np.percentile(lat, q)) for q in (50, 90, 95, 99))
    level.mean_ms = float(lat.mean())
    level.throughput_utt_s = level.requests / level.wall_s if level.wall_s else 0.0
    level.audio_s_per_s = level.audio_s / level.wall_s if level.wall_s else 0.0
    level.rtf = level.wall_s / level.audio_s if level.audio_s else 0.0
    return level


def _closed_loop(backend, work: list[Utterance], concurrency: int, progress) -> tuple[LevelResult, list[str]]:
    texts: list[str] = [""] * len(work)
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()

    def one(i: int) -> None:
        nonlocal errors
        t0 = time.perf_counter()
        try:
            text = backend.transcribe(work[i].audio)
        except Exception:  # noqa: BLE001 - a failed request is counted, never fatal to the run
            with lock:
                errors += 1
            return
        dt = (time.perf_counter() - t0) * 1000
        with lock:
            texts[i] = text
            latencies.append(dt)
        progress.update(1)

    before = backend.statistics()
    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(len(work))))
    wall = time.perf_counter() - start
    level = LevelResult("closed", concurrency, len(latencies), errors, wall, sum(u.seconds for u in work),
                        server=_stats_delta(before, backend.statistics()), latencies_ms=latencies)
    return _summarize(level), texts


def _open_loop(backend, work: list[Utterance], rate: float, seed: int, progress) -> LevelResult:
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(1.0 / rate, len(work)))
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()

    def one(i: int, due: float) -> None:
        nonlocal errors
        t0 = time.perf_counter()
        try:
            backend.transcribe(work[i].audio)
        except Exception:  # noqa: BLE001
            with lock:
                errors += 1
            return
        with lock:
            # latency counts from the scheduled arrival, so queueing in the client counts too
            latencies.append((time.perf_counter() - due) * 1000 if due else (time.perf_counter() - t0) * 1000)
        progress.update(1)

    before = backend.statistics()
    start = time.perf_counter()
    with ThreadPoolExecutor(max(4, min(64, int(rate * 2)))) as pool:
        for i, at in enumerate(arrivals):
            delay = start + at - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            pool.submit(one, i, start + at)
    wall = time.perf_counter() - start
    level = LevelResult("open", 0, len(latencies), errors, wall, sum(u.seconds for u in work), offered_rate=rate,
                        server=_stats_delta(before, backend.statistics()), latencies_ms=latencies)
    return _summarize(level)


def run_bench(backend, workload: list[Utterance], options: BenchOptions = BenchOptions(), progress: bool = True) -> dict:
    """Measure ``backend`` on ``workload``; returns the full result (JSON-ready).

    The concurrency-1 pass also gives the transcripts scored for WER/CER.
    """
    rng = np.random.default_rng(options.seed)
    for u in workload[: options.warmup]:
        backend.transcribe(u.audio)
    n = options.requests or len(workload)
    order = [workload[i % len(workload)] for i in rng.permutation(max(n, len(workload)))[:n]]
    levels: list[LevelResult] = []
    summary: dict = {}
    total = n * len(options.concurrency) + (n if options.rate else 0)
    with tqdm(total=total, desc=f"bench {backend.kind}", unit="req", disable=not progress) as bar:
        for c in options.concurrency:
            level, texts = _closed_loop(backend, order, c, bar)
            levels.append(level)
            if c == options.concurrency[0]:
                refs = [u.reference for u in order]
                labelled = [(r, h) for r, h in zip(refs, texts, strict=True) if r]
                if labelled:
                    summary["wer"] = float(jiwer.wer([r for r, _ in labelled], [h for _, h in labelled]))
                    summary["cer"] = float(jiwer.cer([r for r, _ in labelled], [h for _, h in labelled]))
        if options.rate:
            levels.append(_open_loop(backend, order, options.rate, options.seed, bar))
    first = levels[0]
    summary.update(
        p50_ms=first.p50_ms, p99_ms=first.p99_ms, p99_over_p50=first.p99_ms / first.p50_ms if first.p50_ms else None,
        speed_x_realtime=first.audio_s_per_s, rtf=first.rtf, utterances=len(order),
        audio_seconds=sum(u.seconds for u in order),
        mean_utterance_s=float(np.mean([u.seconds for u in order])),
    )
    if backend.kind == "device":
        summary["peak_memory_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if backend.model_mb is not None:
        summary["model_mb"] = backend.model_mb
    return {
        "backend": backend.description,
        "kind": backend.kind,
        "options": asdict(options),
        "summary": summary,
        "levels": [asdict(level) for level in levels],
    }


def _at_concurrency(result: dict, concurrency: int) -> dict:
    for level in result["levels"]:
        if level["mode"] == "closed" and level["concurrency"] == concurrency:
            return level
    return {}


_CSV_COLUMNS = [
    ("Concurrency", lambda lv: lv["concurrency"]),
    ("Inferences/Second", lambda lv: round(lv["throughput_utt_s"], 3)),
    ("Audio Seconds/Second", lambda lv: round(lv["audio_s_per_s"], 3)),
    ("p50 latency", lambda lv: int(lv["p50_ms"] * 1000)),
    ("p90 latency", lambda lv: int(lv["p90_ms"] * 1000)),
    ("p95 latency", lambda lv: int(lv["p95_ms"] * 1000)),
    ("p99 latency", lambda lv: int(lv["p99_ms"] * 1000)),
    ("Avg latency", lambda lv: int(lv["mean_ms"] * 1000)),
    ("Server Queue", lambda lv: int(lv["server"].get("queue_ms_per_request", 0) * 1000)),
    ("Server Compute Infer", lambda lv: int(lv["server"].get("compute_ms_per_request", 0) * 1000)),
    ("Request Rate", lambda lv: lv["offered_rate"]),
    ("Mode", lambda lv: lv["mode"]),
    ("Errors", lambda lv: lv["errors"]),
]


def write_outputs(result: dict, out: Path) -> None:
    """results.json, results.csv (perf_analyzer column names, latencies in microseconds) and plots."""
    out.mkdir(parents=True, exist_ok=True)
    slim = {**result, "levels": [{k: v for k, v in lv.items() if k != "latencies_ms"} for lv in result["levels"]]}
    (out / "results.json").write_text(json.dumps(slim, indent=2))
    with open(out / "results.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow([name for name, _ in _CSV_COLUMNS])
        for lv in result["levels"]:
            w.writerow([get(lv) for _, get in _CSV_COLUMNS])
    try:
        import matplotlib
    except ImportError:
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    for lv in result["levels"]:
        if lv["latencies_ms"]:
            label = f"c={lv['concurrency']}" if lv["mode"] == "closed" else f"open {lv['offered_rate']:g}/s"
            a1.hist(lv["latencies_ms"], bins=40, histtype="step", label=label)
    a1.set(xlabel="latency (ms)", ylabel="requests", title="latency distribution")
    a1.legend()
    closed = [lv for lv in result["levels"] if lv["mode"] == "closed"]
    a2.plot([lv["concurrency"] for lv in closed], [lv["throughput_utt_s"] for lv in closed], marker="o")
    a2.set(xlabel="concurrency", ylabel="utterances / s", title="throughput", xscale="log", xticks=[lv["concurrency"] for lv in closed])
    a2.set_xticklabels([str(lv["concurrency"]) for lv in closed])
    fig.suptitle(result["backend"], fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "bench.png", dpi=100)
    plt.close(fig)


def print_table(result: dict) -> None:
    """The human-readable summary."""
    s = result["summary"]
    print(f"\n{result['backend']}")
    if "wer" in s:
        print(f"accuracy: WER {100 * s['wer']:.2f}%  CER {100 * s['cer']:.2f}%  over {s['utterances']} utterances "
              f"({s['audio_seconds']:.0f} s of audio, mean {s['mean_utterance_s']:.2f} s)")
    print(f"{'mode':<7}{'conc':>5}{'req':>6}{'err':>5}{'p50 ms':>9}{'p90':>8}{'p95':>8}{'p99':>8}{'utt/s':>8}{'audio s/s':>10}"
          f"{'RTF':>8}{'queue ms':>9}{'batches':>20}")
    for lv in result["levels"]:
        hist = lv["server"].get("batch_size_histogram", {})
        hist_s = " ".join(f"{k}:{v}" for k, v in hist.items())[:19]
        print(f"{lv['mode']:<7}{lv['concurrency']:>5}{lv['requests']:>6}{lv['errors']:>5}{lv['p50_ms']:>9.1f}{lv['p90_ms']:>8.1f}"
              f"{lv['p95_ms']:>8.1f}{lv['p99_ms']:>8.1f}{lv['throughput_utt_s']:>8.1f}{lv['audio_s_per_s']:>10.1f}"
              f"{lv['rtf']:>8.4f}{lv['server'].get('queue_ms_per_request', 0):>9.2f}{hist_s:>20}")
    if "peak_memory_mb" in s:
        print(f"peak memory {s['peak_memory_mb']:.0f} MiB, model {s.get('model_mb', 0):.2f} MiB")


def add_bench_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``edgeasr bench``."""
    p.add_argument("--manifest", required=True, help="utterances to send (NeMo JSONL; text used for WER)")
    p.add_argument("--model", default="triton_models/edgeasr", help="on-device model (ignored with --url)")
    p.add_argument("--url", default=None, help="Triton gRPC HOST:PORT; measure through Triton")
    p.add_argument("--model-name", default="edgeasr", help="Triton model name")
    p.add_argument("--model-version", default="", help="Triton model version (empty: latest)")
    p.add_argument("--threads", type=int, default=1, help="on-device onnxruntime threads")
    p.add_argument("--concurrency", default="1,2,4,8", help="closed-loop concurrency levels")
    p.add_argument("--requests", type=int, default=0, help="requests per level (0: each utterance once)")
    p.add_argument("--limit", type=int, default=0, help="use only the first N rows of the manifest (0: all)")
    p.add_argument("--warmup", type=int, default=3, help="warm-up requests, not measured")
    p.add_argument("--rate", type=float, default=0.0, help="open-loop Poisson request rate per second (0: none)")
    p.add_argument("--budgets", default=None, help="budgets TOML (e.g. bench/budgets.toml)")
    p.add_argument("--target", default=None, help="budget target name in the budgets file")
    p.add_argument("--out", default=None, help="folder for results.json, results.csv and bench.png")


def run_bench_command(args: argparse.Namespace) -> int:
    """Handler of ``edgeasr bench``: measure, print, write, and gate on the budget."""
    workload = load_workload(args.manifest, args.limit)
    if not workload:
        print(f"edgeasr bench: {args.manifest} has no rows")
        return 2
    backend = (TritonBackend(args.url, args.model_name, args.model_version) if args.url
               else DeviceBackend(args.model, args.threads))
    options = BenchOptions(
        concurrency=tuple(int(c) for c in args.concurrency.split(",") if c.strip()),
        requests=args.requests, warmup=args.warmup, rate=args.rate,
    )
    result = run_bench(backend, workload, options)
    result["machine"] = {"platform": platform.platform(), "cpus": os.cpu_count(), "processor": platform.processor()}
    print_table(result)
    code = 0
    if args.budgets and args.target:
        budget = load_budget(args.budgets, args.target)
        measured = dict(result["summary"])
        level = _at_concurrency(result, budget.at_concurrency)
        measured["p99_ms_at"] = level.get("p99_ms")
        measured["throughput_utt_s_at"] = level.get("throughput_utt_s")
        checks = check_budget(budget, measured)
        result["budget"] = {"target": budget.name, "checks": [asdict(c) | {"miss": c.miss} for c in checks]}
        print(f"\nbudget {budget.name}:")
        for c in checks:
            shown = "-" if c.measured is None else f"{c.measured:.4g}"
            print(f"  {'ok  ' if c.passed else 'MISS'} {c.limit_name:<24} limit {c.limit:<10.4g} measured {shown:<10} {c.miss}")
        code = 0 if all(c.passed for c in checks) else 1
    if args.out:
        write_outputs(result, Path(args.out))
    return code
