"""``edgeasr bench --suite``: every comparison of the bench issue side by side, in one run.

One command, on one machine, in one sitting (absolute times on shared machines drift, so the
ratios are what to read):

1. **fp32 against int8 on device**: each version of the model runs in onnxruntime with one thread
   (``--threads``) in its own child process, so that the peak resident memory measured is that
   of the on-device path alone (model, audio and runtime; no Triton client, no plotting).
2. **On device against Triton**: the real Triton server (the ``tritonserver`` bundled with
   nvidia-pytriton, see :mod:`edgeasr.serving.server`) is started on free loopback ports over a
   temporary repository that holds the served version twice: as the model (``edgeasr``, with
   ``dynamic_batching``) and as ``<name>_nobatch``, whose configuration is the same one, written
   by :func:`edgeasr.export.repository.python_config`, without ``dynamic_batching``.
3. **Dynamic batching on against off**: a concurrency sweep of both, then an A/B at
   ``--gain-concurrency`` (8) that alternates on and off for ``--ab-rounds`` rounds and reports
   the median ratio of throughputs (the ``batching_gain``), so slow drift of a shared machine
   touches both sides alike.
4. **Held-out speech and the cold start**: with ``--heldout`` the int8 version also runs on device, one thread,
   over manifests of speech it never heard (``device-heldout``); ``--cold-start-runs`` fresh processes time its
   cold start, in process and as ``edgeasr transcribe`` (:mod:`edgeasr.bench.coldstart`; reported with
   ``device-int8``, whose budget holds them).
5. **GPU**: with ``--gpu-url`` (NVIDIA's Triton image with a native flavour, see
   ``Dockerfile.gpu``) the same sweep is measured as ``triton-gpu``; elsewhere the target is
   skipped with the reason stated.

Every measurement is held against the targets of ``--budgets`` (``bench/budgets.toml``): each
target names its ``source`` (``device-int8``, ``triton``, ...); run-wide ratios
(``batching_gain``, ``int8_wer_increase``) count for every target. Outputs as for a single run
(``results.json``, ``results.csv``, PNG plots) plus ``report.txt``, the printed report.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shutil
import statistics
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from multiprocessing import get_context
from pathlib import Path

from edgeasr.bench.budgets import Budget, check_budget, format_checks, load_budgets
from edgeasr.bench.report import gpu_name, machine_info, print_table, write_csv, write_json, write_plots
from edgeasr.bench.runner import (
    BenchOptions,
    DeviceBackend,
    NativeTritonBackend,
    TritonBackend,
    champion_decoder_dir,
    closed_loop,
    level_at,
    load_workloads,
    measured_for_budget,
    run_bench,
)

__all__ = [
    "SuiteOptions",
    "batching_ab",
    "find_precision_versions",
    "gate_suite",
    "run_suite",
    "run_suite_command",
    "stage_repository",
    "suite_ratios",
]

AB_REQUESTS_PER_SLOT = 16
"""The batching A/B sends at least this many requests per in-flight slot in each pass."""

NOBATCH_SUFFIX = "_nobatch"
"""Name suffix of the staged copy of the served model without dynamic batching."""


@dataclass(frozen=True)
class SuiteOptions:
    """What one suite run compares."""

    model_repository: str = "triton_models"  # repository holding the model's versions
    model_name: str = "edgeasr"  # the python-flavour model in it
    fp32_version: int | None = None  # on-device fp32 version; None = the latest whose card says fp32
    int8_version: int | None = None  # on-device int8 version; None = the latest whose card says int8
    triton_version: int | None = None  # version served by Triton; None = the int8 version, else fp32
    threads: int = 1  # onnxruntime threads on device
    device_concurrency: tuple[int, ...] = (1,)  # closed-loop levels of the on-device runs
    triton: BenchOptions = field(default_factory=BenchOptions)  # Triton sweep (and open-loop rate)
    gain_concurrency: int = 8  # concurrency of the batching on/off A/B
    ab_rounds: int = 3  # alternating on/off rounds of the A/B (median of the ratios)
    repository_options: str | None = None  # TOML with a [repository] table for the served config
    gpu_url: str = ""  # a GPU Triton server to measure as "triton-gpu" ("" = none)
    gpu_model_name: str = "edgeasr"  # the model on gpu_url (Dockerfile.gpu: "edgeasr"; *_onnx/*_trt: ONNX contract)
    limit: int = 0  # rows per manifest (0 = all)
    heldout: tuple[str, ...] = ()  # manifests of held-out speech for "device-heldout" (int8, concurrency 1); () = none
    cold_start_runs: int = 5  # fresh processes of each kind timing the int8 version's cold start (0 = none)
    cold_start_audio: str = "samples/01-flite-rms.wav"  # the file the cold start transcribes
    progress: bool = True  # progress bars on stderr


def find_precision_versions(root: str | Path, name: str) -> dict[str, int]:
    """The latest version of each precision, read from the model cards.

    Args:
        root: the model repository.
        name: the model name.

    Returns:
        e.g. ``{"fp32": 1, "int8": 2}``; precisions without a version are absent.
    """
    found: dict[str, int] = {}
    folder = Path(root) / name
    versions = sorted((int(p.name) for p in folder.glob("*") if p.name.isdigit()), reverse=True)
    for v in versions:
        card = folder / str(v) / "model_card.json"
        if card.is_file():
            precision = json.loads(card.read_text()).get("precision", "")
            found.setdefault(precision, v)
    return found


def stage_repository(
    root: str | Path, name: str, version: int, dst: Path, options_toml: str | None = None
) -> list[str]:
    """Write a repository serving one version twice: with and without dynamic batching.

    Both configurations come from :func:`edgeasr.export.repository.python_config` with the same
    options except ``dynamic_batching=False`` for the second, so Triton's default scheduler runs
    one request per execution there.

    Args:
        root: the source repository.
        name: the model name.
        version: the version to serve.
        dst: an empty folder for the staged repository.
        options_toml: a TOML with a ``[repository]`` table; None = :class:`RepositoryOptions` defaults.

    Returns:
        The staged model names, ``[name, name + "_nobatch"]``.

    Raises:
        FileNotFoundError: no such version.
    """
    from edgeasr.export.repository import RepositoryOptions, python_config
    from edgeasr.tritonconfig import write_config

    src = Path(root) / name / str(version)
    if not (src / "model.onnx").is_file():
        raise FileNotFoundError(f"{src}: no such model version")
    opts = RepositoryOptions.from_toml(options_toml) if options_toml else RepositoryOptions()
    opts = replace(opts, version_policy="all")
    names = [name, name + NOBATCH_SUFFIX]
    for model in names:
        shutil.copytree(src, dst / model / str(version), ignore=shutil.ignore_patterns("__pycache__"))
        batching = not model.endswith(NOBATCH_SUFFIX)
        write_config(dst / model / "config.pbtxt", python_config(model, replace(opts, dynamic_batching=batching)))
    return names


def _device_job(
    model_dir: str, threads: int, specs: list[str], limit: int, options: dict, label: str, progress: bool
) -> dict:
    """Run in a fresh child process: on-device measurement, peak memory of that process alone."""
    workload = load_workloads(specs, limit)
    backend = DeviceBackend(model_dir, threads)
    return run_bench(backend, workload, BenchOptions(**options), progress=progress, label=label)


def _measure_device(model_dir: Path, specs: list[str], opts: SuiteOptions, label: str) -> dict:
    bench = replace(opts.triton, concurrency=opts.device_concurrency, rate=0.0)
    options = {k: tuple(v) if isinstance(v, list) else v for k, v in asdict(bench).items()}
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        return pool.submit(
            _device_job, str(model_dir), opts.threads, specs, opts.limit, options, label, opts.progress
        ).result()


def batching_ab(on, off, workload: list, concurrency: int = 8, rounds: int = 3) -> dict:
    """Throughput with dynamic batching over without, alternating on and off.

    Args:
        on: the backend with dynamic batching.
        off: the same model without it.
        workload: the utterances, each sent once per pass (repeated up to
            ``AB_REQUESTS_PER_SLOT * concurrency`` requests when fewer).
        concurrency: requests in flight.
        rounds: on/off pairs; the order flips every round.

    Returns:
        ``{"gain": median ratio, "concurrency", "rounds": [{"on", "off", "ratio"}, ...]}``
        with throughputs in utterances per second.
    """
    need = max(len(workload), AB_REQUESTS_PER_SLOT * concurrency)
    workload = [workload[i % len(workload)] for i in range(need)]
    out = []
    for r in range(max(1, rounds)):
        pair = {}
        for which, backend in (("on", on), ("off", off)) if r % 2 == 0 else (("off", off), ("on", on)):
            level, _ = closed_loop(backend, workload, concurrency)
            pair[which] = level.throughput_utt_s
            pair[f"{which}_batches"] = level.server.get("batch_size_histogram", {})
        pair["ratio"] = pair["on"] / pair["off"] if pair["off"] else float("nan")
        out.append(pair)
    return {"gain": float(statistics.median(p["ratio"] for p in out)), "concurrency": concurrency, "rounds": out}


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def suite_ratios(runs: dict[str, dict], ab: dict | None, served_precision: str, gain_concurrency: int = 8) -> dict:
    """The side-by-side numbers of a suite run.

    Args:
        runs: label -> :func:`~edgeasr.bench.runner.run_bench` result.
        ab: the :func:`batching_ab` result (None when Triton was not measured).
        served_precision: "fp32" or "int8", the precision Triton served.
        gain_concurrency: the concurrency of the batching comparison.

    Returns:
        Flat ratios; those a budget can hold (``batching_gain``, ``int8_wer_increase``) among them.
    """
    s = {k: v["summary"] for k, v in runs.items()}
    fp32, int8 = s.get("device-fp32", {}), s.get("device-int8", {})
    ratios: dict = {}
    if fp32 and int8:
        if "wer" in fp32 and "wer" in int8:
            ratios["int8_wer_increase"] = int8["wer"] - fp32["wer"]
        ratios["int8_speedup"] = _ratio(int8["speed_x_realtime"], fp32["speed_x_realtime"])
        ratios["int8_size_ratio"] = _ratio(int8.get("model_mb"), fp32.get("model_mb"))
        ratios["int8_memory_ratio"] = _ratio(int8.get("peak_memory_mb"), fp32.get("peak_memory_mb"))
    device = s.get(f"device-{served_precision}")
    if device and "triton" in s:
        ratios["triton_over_device_p50"] = _ratio(s["triton"]["p50_ms"], device["p50_ms"])
        ratios["triton_over_device_p99"] = _ratio(s["triton"]["p99_ms"], device["p99_ms"])
        ratios["triton_over_device_throughput_c1"] = _ratio(
            runs["triton"]["levels"][0]["throughput_utt_s"],
            runs[f"device-{served_precision}"]["levels"][0]["throughput_utt_s"],
        )
    if "triton" in runs and "triton-nobatch" in runs:
        on, off = level_at(runs["triton"], gain_concurrency), level_at(runs["triton-nobatch"], gain_concurrency)
        ratios["batching_gain_sweep"] = _ratio(on.get("throughput_utt_s"), off.get("throughput_utt_s"))
    if ab:
        ratios["batching_gain"] = ab["gain"]
    return {k: v for k, v in ratios.items() if v is not None}


def run_suite(specs: list[str], opts: SuiteOptions) -> dict:
    """Measure every comparison; returns the whole result (runs, ratios, machine).

    Args:
        specs: manifests, ``NAME=PATH`` or ``PATH``.
        opts: what to compare.

    Returns:
        ``{"runs": {label: result}, "ratios", "batching_ab", "served", "machine", "gpu"}``.

    Raises:
        FileNotFoundError: the repository lacks the model or a requested version, or the cold start's audio is missing.
        edgeasr.serving.server.ServerError: the Triton server did not start.
    """
    from edgeasr.serving.server import TritonServer
    from edgeasr.tritonconfig import config_text, read_config

    root = Path(opts.model_repository)
    if opts.cold_start_runs > 0 and not Path(opts.cold_start_audio).is_file():
        raise FileNotFoundError(f"--cold-start-audio {opts.cold_start_audio}: no such file (or --cold-start-runs 0)")
    have = find_precision_versions(root, opts.model_name)
    versions = {"fp32": opts.fp32_version or have.get("fp32"), "int8": opts.int8_version or have.get("int8")}
    if not any(versions.values()):
        raise FileNotFoundError(f"{root / opts.model_name}: no versions with a model card")
    runs: dict[str, dict] = {}
    for precision, version in versions.items():
        if version:
            runs[f"device-{precision}"] = _measure_device(
                root / opts.model_name / str(version), specs, opts, f"device-{precision}"
            )
    int8_dir = root / opts.model_name / str(versions["int8"]) if versions["int8"] else None
    if opts.heldout and int8_dir is not None:
        runs["device-heldout"] = _measure_device(
            int8_dir, list(opts.heldout), replace(opts, device_concurrency=(1,)), "device-heldout"
        )
    if opts.cold_start_runs > 0 and int8_dir is not None:  # before Triton starts: the machine as a device has it
        from edgeasr.bench.coldstart import measure_cold_start

        cold = measure_cold_start(str(int8_dir), opts.cold_start_audio, opts.cold_start_runs)
        runs["device-int8"]["cold_start"] = cold
        runs["device-int8"]["summary"]["cold_start_s"] = cold["cold_start_s"]
        runs["device-int8"]["summary"]["cold_start_command_s"] = cold["cold_start_command_s"]
    served = opts.triton_version or versions["int8"] or versions["fp32"]
    served_precision = "int8" if served == versions["int8"] else "fp32" if served == versions["fp32"] else "?"
    workload = load_workloads(specs, opts.limit)
    ab = None
    with tempfile.TemporaryDirectory(prefix="edgeasr-bench-") as tmp:
        names = stage_repository(root, opts.model_name, served, Path(tmp), opts.repository_options)
        config = config_text(read_config(Path(tmp) / names[0]))
        server = TritonServer(tmp, models=names).start(timeout_s=180)
        try:
            on, off = TritonBackend(server.grpc_url, names[0]), TritonBackend(server.grpc_url, names[1])
            runs["triton"] = run_bench(on, workload, opts.triton, opts.progress, "triton")
            runs["triton-nobatch"] = run_bench(
                off, workload, replace(opts.triton, rate=0.0), opts.progress, "triton-nobatch"
            )
            ab = batching_ab(on, off, workload, opts.gain_concurrency, opts.ab_rounds)
        finally:
            server.stop()
    gpu = gpu_name()
    if opts.gpu_url:
        if opts.gpu_model_name.endswith(("_onnx", "_trt")):  # decoded with the shipped beam search
            backend = NativeTritonBackend(
                opts.gpu_url, opts.gpu_model_name, decoder_dir=champion_decoder_dir(opts.model_repository)
            )
        else:
            backend = TritonBackend(opts.gpu_url, opts.gpu_model_name)
        runs["triton-gpu"] = run_bench(backend, workload, opts.triton, opts.progress, "triton-gpu")
    for label, run in runs.items():
        run["label"] = label
    return {
        "runs": runs,
        "ratios": suite_ratios(runs, ab, served_precision, opts.gain_concurrency),
        "batching_ab": ab,
        "served": {
            "model": opts.model_name,
            "version": served,
            "precision": served_precision,
            "versions": versions,
            "config": config,
        },
        "gpu": gpu or None,
        "machine": machine_info(),
        "options": asdict(opts),
    }


def gate_suite(result: dict, budgets: dict[str, Budget], targets: list[str]) -> list[dict]:
    """Hold each target's source measurement (plus the run's ratios) against its budget.

    Args:
        result: a :func:`run_suite` result.
        budgets: all targets of the budgets file.
        targets: the names to check.

    Returns:
        One report per target: ``{"target", "source", "skipped", "passed", "checks", "table"}``;
        a target whose source was not measured is skipped with the reason (never passed).
    """
    reports = []
    for name in targets:
        budget = budgets[name]
        run = result["runs"].get(budget.source)
        skipped = ""
        if run is None:
            if budget.requires == "gpu" and not result.get("gpu"):
                skipped = "no CUDA GPU on this machine (nvidia-smi finds none); run bench/gpu.sh where one is"
            elif budget.source == "triton-gpu":
                skipped = f"GPU {result.get('gpu')} present but no --gpu-url (serve Dockerfile.gpu's image)"
            else:
                skipped = f"source {budget.source!r} was not measured in this run"
        checks = (
            [] if skipped else check_budget(budget, measured_for_budget(run, budget.at_concurrency, result["ratios"]))
        )
        reports.append(
            {
                "target": name,
                "source": budget.source,
                "skipped": skipped,
                "passed": not skipped and all(c.passed for c in checks),
                "checks": [asdict(c) | {"miss": c.miss} for c in checks],
                "table": format_checks(budget, checks, skipped),
            }
        )
    return reports


def _report_text(result: dict) -> str:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        m = result["machine"]
        print(
            f"machine: {m['cpu']}, {m['cpus']} CPUs, {m['platform']}, GPU: {m['gpu'] or 'none'}, "
            f"load average at start {', '.join(f'{x:.2f}' for x in m['load_average_at_start'])}"
        )
        sv = result["served"]
        print(
            f"Triton serves {sv['model']} version {sv['version']} ({sv['precision']}); device versions {sv['versions']}"
        )
        for run in result["runs"].values():
            print_table(run)
            cold = run.get("cold_start")
            if cold:
                print(
                    f"cold start ({cold['rows'][0]['model']}, {len(cold['rows'])} fresh processes each, bytecode "
                    f"{cold['bytecode']}): in process median {cold['cold_start_s']:.3f} s "
                    f"({cold['in_process_min_max_s'][0]:.3f}-{cold['in_process_min_max_s'][1]:.3f}), "
                    f"`edgeasr transcribe` median {cold['cold_start_command_s']:.3f} s "
                    f"({cold['command_min_max_s'][0]:.3f}-{cold['command_min_max_s'][1]:.3f}); read {cold['text']!r}"
                )
        ab = result["batching_ab"]
        if ab:
            rounds = ", ".join(f"{p['on']:.1f}/{p['off']:.1f}" for p in ab["rounds"])
            print(f"\nbatching A/B at concurrency {ab['concurrency']} (utt/s on/off per round): {rounds}")
        print("\nside by side (ratios; absolute times drift on shared machines):")
        for key, value in result["ratios"].items():
            print(f"  {key:<34}{value:>10.4g}")
        for rep in result.get("budgets", []):
            print("\n" + rep["table"])
    return buf.getvalue()


def run_suite_command(args: argparse.Namespace) -> int:
    """Handler of ``edgeasr bench --suite``.

    Args:
        args: parsed by a parser set up with :func:`edgeasr.bench.cli.add_bench_arguments`.

    Returns:
        0 when every measured target holds, 1 when a limit missed, 2 on unusable input.
    """
    budgets: dict[str, Budget] = {}
    targets: list[str] = []
    if args.budgets:
        try:
            budgets = load_budgets(args.budgets)
        except ValueError as exc:
            print(f"edgeasr bench: {exc}")
            return 2
        targets = (
            [t.strip() for t in args.target.split(",") if t.strip()]
            if args.target
            else [n for n, b in budgets.items() if b.source and b.source != "eval"]  # eval: --eval-report
        )
        unknown = [t for t in targets if t not in budgets]
        if unknown:
            print(
                f"edgeasr bench: {args.budgets}: no budget target(s) {', '.join(unknown)} (have: {', '.join(budgets)})"
            )
            return 2
    levels = tuple(int(c) for c in args.concurrency.split(",") if c.strip())
    opts = SuiteOptions(
        model_repository=args.model_repository,
        model_name=args.model_name,
        fp32_version=args.fp32_version,
        int8_version=args.int8_version,
        triton_version=args.triton_version,
        threads=args.threads,
        device_concurrency=tuple(int(c) for c in args.device_concurrency.split(",") if c.strip()),
        triton=BenchOptions(concurrency=levels, requests=args.requests, warmup=args.warmup, rate=args.rate),
        gain_concurrency=args.gain_concurrency,
        ab_rounds=args.ab_rounds,
        repository_options=args.repository_options,
        gpu_url=args.gpu_url or "",
        gpu_model_name=args.gpu_model_name,
        limit=args.limit,
        heldout=tuple(args.heldout or ()),
        cold_start_runs=args.cold_start_runs,
        cold_start_audio=args.cold_start_audio,
        progress=not args.quiet,
    )
    from edgeasr.serving.server import ServerError

    try:
        result = run_suite(args.manifest, opts)
    except ServerError as exc:
        print(f"edgeasr bench: the Triton server did not start: {exc}")
        return 2
    except FileNotFoundError as exc:
        print(f"edgeasr bench: {exc}")
        return 2
    result["budgets"] = gate_suite(result, budgets, targets)
    text = _report_text(result)
    print(text)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        write_json(result, out / "results.json")
        runs = list(result["runs"].values())
        write_csv(runs, out / "results.csv")
        write_plots(runs, out, f"({result['machine']['cpu']}, {result['machine']['cpus']} CPUs)")
        (out / "report.txt").write_text(text)
        print(f"written to {out}/: results.json results.csv report.txt *.png")
    missed = [r["target"] for r in result["budgets"] if not r["skipped"] and not r["passed"]]
    if missed:
        print(f"budget missed: {', '.join(missed)}")
    return 1 if missed else 0
