"""``edgeasr monitor``: hold a window of live requests against the training data's profile."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from dataclasses import replace
from pathlib import Path

__all__ = ["add_parser"]


def _cmd_monitor(args: argparse.Namespace) -> int:
    from edgeasr.monitor.drift import DriftOptions, detect_drift
    from edgeasr.monitor.live import read_window

    try:
        profile = json.loads(Path(args.reference).read_text(encoding="utf-8"))
        records = read_window(args.window, args.last)
        options = replace(DriftOptions(), alpha=args.alpha, max_psi=args.max_psi)
        report = detect_drift(profile, records, options)
    except (OSError, ValueError) as exc:
        print(f"edgeasr monitor: {exc}", file=sys.stderr)
        return 2
    print(report.table())
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "drift.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n")
        _plot(profile, records, report, out / "drift.png")
    return 1 if report.drift else 0


def _plot(profile: dict, records: list[dict], report, path: Path) -> None:
    """One panel per tested feature: the reference sample and the window, as histograms."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # plotting is optional (the train extra has matplotlib)
        return
    tested = report.features
    if not tested:
        return
    cols = 3
    rows = (len(tested) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 2.6 * rows), squeeze=False)
    for ax, f in zip(axes.flat, tested, strict=False):
        ref = profile[f.feature]["sample"]
        win = [r[f.feature] for r in records if isinstance(r.get(f.feature), int | float)]
        ax.hist(ref, bins=30, density=True, alpha=0.5, label="reference")
        ax.hist(win, bins=30, density=True, alpha=0.5, label="window")
        ax.set_title(f"{f.feature}: {'DRIFT' if f.drifted else 'ok'}", color="red" if f.drifted else "black")
    for ax in list(axes.flat)[len(tested) :]:
        ax.axis("off")
    axes.flat[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _cmd_retrain(args: argparse.Namespace) -> int:
    from edgeasr.monitor.retrain import RetrainConfig, Retrainer, RetrainError

    try:
        retrainer = Retrainer(RetrainConfig.from_toml(args.config))
        run, why = retrainer.should_run(if_drift=args.if_drift, if_new_data=args.if_new_data)
    except (OSError, ValueError) as exc:
        print(f"edgeasr retrain: {exc}", file=sys.stderr)
        return 2
    if args.watch:
        print(f"edgeasr retrain: watching {retrainer.config.new_data} every {args.watch:g} s (Ctrl-C stops)")
        with contextlib.suppress(KeyboardInterrupt):
            retrainer.watch(args.watch, if_drift=args.if_drift)
        return 0
    if not run:
        print(f"edgeasr retrain: nothing to do: {why}")
        return 0
    print(f"edgeasr retrain ({why}): plan")
    for line in retrainer.plan():
        print("  " + line)
    if args.dry_run:
        return 0
    try:
        retrainer.run()
    except RetrainError as exc:
        print(f"edgeasr retrain: stopped at {exc}", file=sys.stderr)
        return 1
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``edgeasr monitor`` and ``edgeasr retrain`` on the command line's subparsers."""
    r = subparsers.add_parser(
        "retrain",
        help="new data through validation, fine-tuning, export, the bench gate and the canary",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Continuous training (edgeasr.monitor.retrain): each step gated and logged in "
        "<work_dir>/state.json; an interrupted run resumes where it stopped. Exit 0 done (or nothing to do), "
        "1 a gate failed, 2 unusable config.",
    )
    r.add_argument("--config", required=True, help="retrain TOML ([retrain] table)")
    r.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    r.add_argument("--if-drift", default=None, help="run only if this drift.json (edgeasr monitor --out) says drift")
    r.add_argument("--if-new-data", action="store_true", help="run only if new_data changed since the last run")
    r.add_argument(
        "--watch",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="poll new_data every SECONDS and run whenever its data version changes (0: run once)",
    )
    r.set_defaults(func=_cmd_retrain)

    p = subparsers.add_parser(
        "monitor",
        help="drift of live requests against the training data's profile",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Hold a window of request records (edgeasr.monitor.live) against a reference profile "
        "(edgeasr data validate --profile): per-feature tests, a dataset-level verdict and output-health "
        "alerts. Exit 0 no drift, 1 drift or an alert, 2 unusable input.",
    )
    p.add_argument("--reference", required=True, help="reference profile (JSON) of the training data")
    p.add_argument("--window", required=True, help="JSONL log of request records")
    p.add_argument("--last", type=int, default=0, help="only the last N records (0: all)")
    p.add_argument("--alpha", type=float, default=0.01, help="family-wise false-alarm rate of the KS tests")
    p.add_argument("--max-psi", type=float, default=0.2, help="PSI above which a large window's feature drifted")
    p.add_argument("--out", default=None, help="folder for drift.json and drift.png")
    p.set_defaults(func=_cmd_monitor)
    return p
