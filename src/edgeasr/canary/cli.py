"""``edgeasr canary``: the command line of the canary stage (``shadow``, ``rollout``, ``kserve``).

:func:`add_parser` registers ``edgeasr canary`` and its actions on the top-level CLI's subparsers:

    edgeasr canary shadow    mirror traffic to the challenger and compare (one analysis)
    edgeasr canary rollout   staged canary: steps, analysis, promote / roll back / hold
    edgeasr canary kserve    write the policy as KServe InferenceService manifests

Each action reads a policy (``--policy``, :class:`~edgeasr.canary.policy.CanaryPolicy`; ``--model``,
``--champion``, ``--challenger`` and ``--requests-per-step`` override it). ``shadow`` and
``rollout`` replay a manifest as traffic through a :class:`~edgeasr.canary.router.ShadowProxy` or a
:class:`~edgeasr.canary.router.CanaryRouter` in front of the Triton server and write the report
(:mod:`edgeasr.canary.report`) beside the pair log.

Exit codes (:mod:`edgeasr.canary.policy`): 0 promoted / analysis success, 3 rolled back / failure,
4 held / inconclusive, 1 error (bad policy or arguments, server unreachable, missing file).

Building the parser imports nothing but the standard library: every handler imports the canary's
modules (numpy, tritonclient, the report writers) when it runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edgeasr.canary.policy import CanaryPolicy
    from edgeasr.canary.router import Transcriber

__all__ = ["add_parser"]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _policy(args: argparse.Namespace) -> CanaryPolicy:
    from edgeasr.canary.policy import CanaryPolicy

    policy = CanaryPolicy.from_toml(args.policy) if getattr(args, "policy", None) else CanaryPolicy()
    changes = {
        k: getattr(args, k)
        for k in ("model", "champion", "challenger", "requests_per_step")
        if getattr(args, k, None) not in (None, "")
    }
    return replace(policy, **changes) if changes else policy


def _client_factory(url: str, model: str, timeout_s: float) -> Callable[[str], Transcriber]:
    from edgeasr.client import TritonClient

    return lambda version: TritonClient(url, model, str(version), timeout_s=timeout_s, retries=1)


def _cmd_shadow(args: argparse.Namespace) -> int:
    from edgeasr.canary.policy import EXIT_CODES, EXIT_ERROR
    from edgeasr.canary.report import write_report
    from edgeasr.canary.rollout import load_utterances, replay
    from edgeasr.canary.router import ShadowProxy
    from edgeasr.canary.stats import analyze

    policy = _policy(args)
    if not policy.champion or not policy.challenger:
        print("edgeasr canary shadow: give --champion and --challenger versions", file=sys.stderr)
        return EXIT_ERROR
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    utterances = load_utterances(args.manifest, args.limit, args.shuffle)
    make = _client_factory(args.url, policy.model, policy.timeout_s)
    proxy = ShadowProxy(
        make(policy.champion),
        make(policy.challenger),
        log=out / "pairs.jsonl",
        champion_version=policy.champion,
        challenger_version=policy.challenger,
        workers=policy.mirror_workers,
        max_pending=policy.max_pending_mirrors,
        paced=True,  # the replay is the load: each replay thread waits for its pair (see ShadowProxy)
    )
    started = _now()
    count = args.requests or len(utterances)
    served = replay(proxy, utterances, count, concurrency=policy.concurrency)
    proxy.close(policy.drain_timeout_s)
    analysis = analyze(list(proxy.records), policy.analysis)
    outcome = analysis.outcome
    summary = {
        "kind": "shadow",
        "final": outcome,
        "exit_code": EXIT_CODES[outcome],
        "champion": policy.champion,
        "challenger": policy.challenger,
        "dry_run": True,
        "policy": policy.to_dict(),
        "stats": proxy.stats,
        "champion_failed_requests": served["errors"],
        "champion_failure_messages": served["error_messages"],
        "started": started,
        "ended": _now(),
        "decisions": [
            {
                "index": 0,
                "step": 0,
                "percent": 0.0,
                "exposure_percent": 0.0,
                "outcome": outcome,
                "action": "report",
                "reasons": list(analysis.reasons),
                "pairs": analysis.pairs,
                "analysis": analysis.to_dict(),
                "time": _now(),
            }
        ],
    }
    paths = write_report(summary, out)
    print(
        f"shadow {policy.model} {policy.champion} -> {policy.challenger}: {outcome} on {analysis.pairs} pairs; "
        f"champion failed {served['errors']}/{count}; report {paths['markdown']}"
    )
    for reason in analysis.reasons:
        print(f"  {reason}")
    return EXIT_CODES[outcome]


def _load_challenger(url: str, repository: str, model: str, challenger: str) -> str:
    """Make Triton serve the challenger (a version just published is not loaded yet); "" when it does.

    Returns the reason it cannot (the server refuses model control, or the load failed), for the
    one-line error: a rollout against a version nobody serves would only measure its errors.
    """
    from edgeasr.canary.rollout import TritonVersionControl

    try:
        control = TritonVersionControl(url, repository, model)
        if control.is_ready(challenger):  # the inference protocol: allowed without model control
            return ""
        print(f"loading {model} version {challenger} beside the versions served now")
        served = control.serve_also(challenger)
    except Exception as exc:  # refused (edgeasr serve without --allow-model-control) or unreachable
        return (
            f"{model} version {challenger} is not served and could not be loaded ({type(exc).__name__}: {exc}); "
            "run `edgeasr serve --allow-model-control`, or serve the version first"
        )
    if int(challenger) not in served:
        return f"{model} version {challenger} did not become ready (served: {served}); see the server log"
    return ""


def _cmd_rollout(args: argparse.Namespace) -> int:
    from edgeasr.canary.policy import EXIT_ERROR
    from edgeasr.canary.report import write_report
    from edgeasr.canary.rollout import Rollout, TritonVersionControl, load_utterances, replay
    from edgeasr.canary.router import CanaryRouter
    from edgeasr.serving.live import LiveState, live_file_for, read_live, write_live

    policy = _policy(args)
    live = Path(args.live_file or policy.live_file or live_file_for(args.repository, policy.model))
    if not policy.champion:
        if not live.exists():
            print(f"edgeasr canary rollout: no --champion and no live file {live}", file=sys.stderr)
            return EXIT_ERROR
        policy = replace(policy, champion=read_live(live).champion)
    if not policy.challenger:
        from edgeasr.export.repository import ModelRepository

        latest = ModelRepository(args.repository).latest(policy.model)
        policy = replace(policy, challenger=str(latest or ""))
    if not args.dry_run and not live.exists():
        live.parent.mkdir(parents=True, exist_ok=True)
        write_live(live, LiveState(policy.model, policy.champion))
    if not args.dry_run:
        problem = _load_challenger(args.url, args.repository, policy.model, policy.challenger)
        if problem:
            print(f"edgeasr canary rollout: {problem}", file=sys.stderr)
            return EXIT_ERROR
    utterances = load_utterances(args.manifest, args.limit, args.shuffle)
    router = CanaryRouter(
        live,
        _client_factory(args.url, policy.model, policy.timeout_s),
        shadow=policy.shadow,
        log=Path(args.out) / "pairs.jsonl",
        workers=policy.mirror_workers,
        max_pending=policy.max_pending_mirrors,
        paced=True,  # the replay is the load: each replay thread waits for its pair (see CanaryRouter)
    )
    offset = [0]

    def traffic(r: CanaryRouter, count: int) -> None:
        replay(r, utterances, count, concurrency=policy.concurrency, offset=offset[0])
        offset[0] += count

    control = (
        TritonVersionControl(args.url, args.repository, policy.model)
        if policy.retire_versions and not args.dry_run
        else None
    )
    try:
        result = Rollout(policy, router, traffic, control=control, dry_run=args.dry_run, log=print).run()
    except ValueError as exc:
        print(f"edgeasr canary rollout: {exc}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        router.close(policy.drain_timeout_s)
    paths = write_report({"kind": "rollout", **result.to_dict()}, args.out)
    print(f"report: {paths['json']}, {paths['markdown']}, {paths['plot']}")
    return result.exit_code


def _cmd_kserve(args: argparse.Namespace) -> int:
    from edgeasr.canary.kserve import write_manifests

    policy = _policy(args)
    paths = write_manifests(
        policy,
        args.out,
        storage_uri=args.storage_uri,
        name=args.name,
        namespace=args.namespace,
        runtime_version=args.runtime_version,
    )
    for path in paths:
        print(path)
    return 0


def _guard(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from edgeasr.canary.policy import EXIT_ERROR
        from edgeasr.client import ClientError

        try:
            return handler(args)
        except (ValueError, ClientError, OSError) as exc:
            print(f"edgeasr canary {args.canary_command}: {exc}", file=sys.stderr)
            return EXIT_ERROR

    return run


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``edgeasr canary shadow|rollout|kserve`` on the CLI's subparsers.

    Exit codes: 0 promoted / analysis success, 3 rolled back / failure, 4 held / inconclusive,
    1 error (bad policy or arguments, server unreachable, missing file).

    Args:
        subparsers: the object returned by ``ArgumentParser.add_subparsers()``.

    Returns:
        The ``canary`` parser.
    """
    fmt = argparse.ArgumentDefaultsHelpFormatter
    parser = subparsers.add_parser(
        "canary",
        help="shadow traffic, staged canary rollout and KServe manifests",
        formatter_class=fmt,
        description="Compare what two versions of the model say (shadow), roll a challenger out in steps with "
        "an analysis after each (rollout), or write the policy as KServe InferenceServices (kserve). "
        "Exit codes: 0 promoted/success, 3 rolled back/failure, 4 held/inconclusive, 1 error.",
    )
    sub = parser.add_subparsers(dest="canary_command", required=True, metavar="ACTION")

    def common(p: argparse.ArgumentParser, server: bool = True) -> None:
        p.add_argument(
            "--policy",
            default=None,
            help="policy TOML ([canary], [analysis]), e.g. export/canary.toml; unset = defaults",
        )
        p.add_argument("--model", default=None, help="Triton model name (overrides the policy)")
        p.add_argument("--champion", default=None, help="champion (live) version (overrides the policy)")
        p.add_argument("--challenger", default=None, help="challenger version (overrides the policy)")
        if server:
            p.add_argument("--url", default="127.0.0.1:8001", help="Triton gRPC HOST:PORT")
            p.add_argument("--manifest", required=True, help="JSONL manifest replayed as traffic (texts = references)")
            p.add_argument("--limit", type=int, default=None, help="use only the first N manifest rows")
            p.add_argument(
                "--shuffle",
                type=int,
                default=None,
                metavar="SEED",
                help="replay the rows in a seeded random order (random.Random(SEED)), so each analysis mixes "
                "a manifest ordered by source; unset = manifest order",
            )

    p = sub.add_parser("shadow", help="mirror traffic to the challenger and compare", formatter_class=fmt)
    common(p)
    p.add_argument("--requests", type=int, default=None, help="requests to send; unset = one per manifest row")
    p.add_argument("--out", default="canary-shadow", help="folder for pairs.jsonl and the report")
    p.set_defaults(func=_guard(_cmd_shadow))

    p = sub.add_parser("rollout", help="staged canary: steps, analysis, promote/roll back/hold", formatter_class=fmt)
    common(p)
    p.add_argument("--repository", default="triton_models", help="the server's model repository (live file, versions)")
    p.add_argument("--live-file", default=None, help="live file; unset = <repository>/<model>/live.json")
    p.add_argument("--requests-per-step", type=int, default=None, help="requests per analysis (overrides the policy)")
    p.add_argument("--dry-run", action="store_true", help="shadow only: change nothing, report what would happen")
    p.add_argument("--out", default="canary-rollout", help="folder for pairs.jsonl and the report")
    p.set_defaults(func=_guard(_cmd_rollout))

    p = sub.add_parser("kserve", help="write the policy as KServe InferenceService manifests", formatter_class=fmt)
    common(p, server=False)
    p.add_argument("--storage-uri", required=True, help="model repository URI of the challenger (s3://, gs://, pvc://)")
    p.add_argument("--name", default="edgeasr", help="InferenceService name")
    p.add_argument("--namespace", default="", help="Kubernetes namespace (empty: none written)")
    p.add_argument("--runtime-version", default="24.12-py3", help="Triton image tag (runtimeVersion)")
    p.add_argument("--out", default="kserve", help="folder for one YAML per step plus promote/rollback")
    p.set_defaults(func=_guard(_cmd_kserve))
    return parser
