"""``edgeasr bench``: the bench stage's command (one backend, or ``--suite`` side by side)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path

__all__ = ["add_bench_arguments", "add_parser", "run_bench_command"]


def _levels(text: str) -> tuple[int, ...]:
    return tuple(int(c) for c in text.split(",") if c.strip())


def _gate_eval_report(args: argparse.Namespace) -> int:
    """``--eval-report``: hold an ``edgeasr eval --out`` report against an accuracy target."""
    import json

    from edgeasr.bench.budgets import check_eval_budget, format_checks, load_budget

    if not (args.budgets and args.target):
        print("edgeasr bench: --eval-report needs --budgets and --target")
        return 2
    try:
        budget = load_budget(args.budgets, args.target)
        reports = [json.loads(Path(path).read_text()) for path in args.eval_report]
    except (KeyError, ValueError, OSError) as exc:
        print(f"edgeasr bench: {exc}")
        return 2
    report: dict = {"splits": [], "peers": {}}  # several runs (e.g. peers on some splits only) gate together
    for one in reports:
        report["splits"] += one.get("splits", [])
        for name, peer in one.get("peers", {}).items():
            report["peers"].setdefault(name, {"splits": []})["splits"] += peer.get("splits", [])
    checks = check_eval_budget(budget, report)
    print(format_checks(budget, checks))
    return 0 if checks and all(c.passed for c in checks) else 1


def add_bench_arguments(p: argparse.ArgumentParser) -> None:
    """Register the arguments of ``edgeasr bench`` (single-backend and ``--suite``)."""
    p.add_argument(
        "--manifest",
        action="append",
        default=[],
        help="utterances to send, NAME=PATH or PATH (NeMo JSONL; text used for WER); repeat for splits",
    )
    p.add_argument("--model", default="triton_models/edgeasr", help="on-device model (ignored with --url)")
    p.add_argument("--url", default=None, help="Triton gRPC HOST:PORT; measure through Triton")
    p.add_argument("--model-name", default="edgeasr", help="Triton model name")
    p.add_argument("--model-version", default="", help="Triton model version (empty: latest)")
    p.add_argument(
        "--native", action="store_true", help="with --url: the model takes the ONNX contract (edgeasr_onnx/edgeasr_trt)"
    )
    p.add_argument(
        "--native-decoder",
        default=None,
        help="with --native: version folder whose beam search decodes the log-probabilities "
        "(default: the champion of --model-repository's edgeasr)",
    )
    p.add_argument("--threads", type=int, default=1, help="on-device onnxruntime threads")
    p.add_argument("--concurrency", default="1,2,4,8", help="closed-loop concurrency levels")
    p.add_argument("--requests", type=int, default=0, help="requests per level (0: each utterance once)")
    p.add_argument("--limit", type=int, default=0, help="use only the first N rows of each manifest (0: all)")
    p.add_argument("--allow-outside", action="store_true", help="read audio a manifest names outside its own folder")
    p.add_argument("--warmup", type=int, default=3, help="warm-up requests, not measured")
    p.add_argument("--rate", type=float, default=0.0, help="open-loop Poisson request rate per second (0: none)")
    p.add_argument("--budgets", default=None, help="budgets TOML (e.g. bench/budgets.toml)")
    p.add_argument("--target", default=None, help="budget target (suite: comma-separated; default all with a source)")
    p.add_argument("--out", default=None, help="folder for results.json, results.csv and the PNG plots")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--eval-report",
        action="append",
        default=[],
        help="gate `edgeasr eval --out` reports (accuracy per split, beside peers) instead of measuring; repeatable",
    )
    g = p.add_argument_group("suite (--suite): side by side in one run, starting its own Triton server")
    g.add_argument("--suite", action="store_true", help="fp32 vs int8, device vs Triton, batching on vs off")
    g.add_argument("--model-repository", default="triton_models", help="repository holding the model versions")
    g.add_argument("--fp32-version", type=int, default=None, help="fp32 version (default: latest fp32 by card)")
    g.add_argument("--int8-version", type=int, default=None, help="int8 version (default: latest int8 by card)")
    g.add_argument("--triton-version", type=int, default=None, help="version served (default: int8, else fp32)")
    g.add_argument(
        "--repository-options",
        default=None,
        help="TOML whose [repository] table configures the served model (default: RepositoryOptions())",
    )
    g.add_argument("--device-concurrency", default="1", help="closed-loop levels of the on-device runs")
    g.add_argument("--gain-concurrency", type=int, default=8, help="concurrency of the batching on/off A/B")
    g.add_argument("--ab-rounds", type=int, default=3, help="alternating batching on/off rounds (median ratio)")
    g.add_argument(
        "--heldout",
        action="append",
        metavar="NAME=PATH",
        help="held-out speech for the int8 version on device, one thread (suite run device-heldout; repeatable)",
    )
    g.add_argument(
        "--cold-start-runs", type=int, default=5, help="fresh processes timing the int8 version's cold start (0: none)"
    )
    g.add_argument("--cold-start-audio", default="samples/01-flite-rms.wav", help="the file the cold start reads")
    g.add_argument("--gpu-url", default=None, help="a GPU Triton (NVIDIA image) to measure as target triton-gpu")
    g.add_argument("--gpu-model-name", default="edgeasr", help="model on --gpu-url (edgeasr_onnx/_trt: native)")


def run_bench_command(args: argparse.Namespace) -> int:
    """Handler of ``edgeasr bench``: measure, print, write, and gate on the budget.

    Args:
        args: parsed by a parser set up with :func:`add_bench_arguments`.

    Returns:
        0 when every checked limit holds, 1 when a limit missed, 2 on unusable input.
    """
    if args.eval_report:
        return _gate_eval_report(args)
    if not args.manifest:
        print("edgeasr bench: give --manifest (or --eval-report with --budgets and --target)")
        return 2
    if args.suite:
        from edgeasr.bench.suite import run_suite_command

        return run_suite_command(args)
    from edgeasr.audio import AudioError
    from edgeasr.bench.budgets import check_budget, format_checks, load_budget
    from edgeasr.bench.report import machine_info, print_table, write_outputs
    from edgeasr.bench.runner import (
        BenchOptions,
        DeviceBackend,
        NativeTritonBackend,
        TritonBackend,
        champion_decoder_dir,
        load_workloads,
        measured_for_budget,
        run_bench,
    )

    budget = None
    if args.budgets or args.target:
        if not (args.budgets and args.target):
            print("edgeasr bench: --budgets and --target go together")
            return 2
        try:
            budget = load_budget(args.budgets, args.target)
        except (KeyError, ValueError) as exc:
            print(f"edgeasr bench: {exc.args[0]}")
            return 2
    try:
        workload = load_workloads(args.manifest, args.limit, args.allow_outside)
    except (AudioError, OSError, ValueError) as exc:
        print(f"edgeasr bench: {exc}".splitlines()[0], file=sys.stderr)
        return 2
    if not workload:
        print(f"edgeasr bench: {', '.join(args.manifest)} has no rows")
        return 2
    if args.url:
        if args.native:  # decoded with the beam search of the local repository's champion, as served
            backend = NativeTritonBackend(
                args.url,
                args.model_name,
                args.model_version,
                decoder_dir=args.native_decoder or champion_decoder_dir(args.model_repository),
            )
        else:
            backend = TritonBackend(args.url, args.model_name, args.model_version)
    else:
        backend = DeviceBackend(args.model, args.threads)
    options = BenchOptions(
        concurrency=_levels(args.concurrency), requests=args.requests, warmup=args.warmup, rate=args.rate
    )
    try:
        result = run_bench(backend, workload, options, progress=not args.quiet)
    except Exception as exc:  # the warm-up failed: nothing measured, one line
        print(f"edgeasr bench: {type(exc).__name__}: {exc}".splitlines()[0], file=sys.stderr)
        return 1
    result["machine"] = machine_info()
    print_table(result)
    if result["aborted"]:  # partial results are written, then one line and a non-zero exit
        if args.out:
            write_outputs(result, Path(args.out))
        print(f"edgeasr bench: stopped early: {result['aborted']}".splitlines()[0], file=sys.stderr)
        return 1
    code = 0
    if budget is not None:
        checks = check_budget(budget, measured_for_budget(result, budget.at_concurrency))
        result["budget"] = {"target": budget.name, "checks": [asdict(c) | {"miss": c.miss} for c in checks]}
        print("\n" + format_checks(budget, checks))
        code = 0 if all(c.passed for c in checks) else 1
    if args.out:
        write_outputs(result, Path(args.out))
    return code


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``edgeasr bench`` on the command line's subparsers."""
    p = subparsers.add_parser(
        "bench",
        help="accuracy, latency and throughput against budgets",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_bench_arguments(p)
    p.set_defaults(func=run_bench_command)
    return p
