"""Benchmark budgets: limits per deployment target, loaded from ``bench/budgets.toml``.

    [targets.device-cpu-int8]
    description = "on-device onnxruntime, int8, one thread"
    source = "device-int8"          # which measurement of a suite run this target is held against
    max_wer = 0.25
    min_speed_x_realtime = 100

A limit left out is not checked; a limit that the run did not measure fails (a gate must never
pass blind); an unknown key is an error (a typo must never pass silently). :func:`check_budget`
holds a flat dict of measurements against a budget and returns one :class:`BudgetCheck` per
limit; :func:`format_checks` renders the table of what missed by how much. ``requires = "gpu"``
marks a target that only a machine with a CUDA GPU can measure: a suite run elsewhere skips it with the
reason stated, never passes it.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

__all__ = [
    "LIMIT_MEASURES",
    "SOURCES",
    "Budget",
    "BudgetCheck",
    "check_budget",
    "check_eval_budget",
    "format_checks",
    "load_budget",
    "load_budgets",
]

SOURCES = ("", "device-fp32", "device-int8", "device-heldout", "triton", "triton-nobatch", "triton-gpu", "eval")
"""Measurements a target can name as ``source``: a suite run's ("device-heldout": the int8 version on device over
the suite's ``--heldout`` manifests), "" = the single run's result, or "eval" = the JSON report of
``edgeasr eval --out`` (accuracy per split, beside the peers)."""

LIMIT_MEASURES = {
    "max_wer": "wer",
    "max_cer": "cer",
    "max_p99_ms": "p99_ms_at",
    "max_p99_over_p50": "p99_over_p50",
    "max_p99_over_p50_similar": "p99_over_p50_similar",
    "min_throughput_utt_s": "throughput_utt_s_at",
    "min_speed_x_realtime": "speed_x_realtime",
    "max_memory_mb": "peak_memory_mb",
    "max_model_mb": "model_mb",
    "min_batching_gain": "batching_gain",
    "max_int8_wer_increase": "int8_wer_increase",
    "min_int8_speedup": "int8_speedup",
    "max_cold_start_s": "cold_start_s",
    "max_cold_start_command_s": "cold_start_command_s",
}
"""Limit name -> the key of the measured dict it is held against."""


@dataclass(frozen=True)
class Budget:
    """Limits for one target; a limit of ``None`` is not checked."""

    name: str = ""  # target name (the TOML table's key)
    description: str = ""  # what the target is, for people reading the table
    source: str = ""  # suite measurement held against it (see SOURCES); "" = the single run
    requires: str = ""  # "gpu": measurable only where a CUDA GPU exists (skipped elsewhere)
    at_concurrency: int = 1  # the closed-loop concurrency whose p99 and throughput are checked
    max_wer: float | None = None  # corpus WER on the bench manifest(s), 0..1
    max_cer: float | None = None  # corpus CER, 0..1
    max_p99_ms: float | None = None  # p99 latency at ``at_concurrency``, milliseconds
    max_p99_over_p50: float | None = None  # tail ratio p99/p50 at concurrency 1, over every utterance
    max_p99_over_p50_similar: float | None = None  # the same over utterances within 0.8-1.25x the median length
    min_throughput_utt_s: float | None = None  # utterances per second at ``at_concurrency``
    min_speed_x_realtime: float | None = None  # audio seconds per wall second at concurrency 1
    max_memory_mb: float | None = None  # peak resident memory of the on-device process, MiB
    max_model_mb: float | None = None  # size of the model file, MiB
    min_batching_gain: float | None = None  # Triton throughput, dynamic batching on / off, at 8
    max_int8_wer_increase: float | None = None  # int8 WER minus fp32 WER (absolute, 0.005 = 0.5 points)
    min_int8_speedup: float | None = None  # int8 speed over fp32 speed on device, same run (suite)
    max_cold_start_s: float | None = None  # median cold start in process: import + Recognizer + first transcript
    max_cold_start_command_s: float | None = None  # median of the whole `edgeasr transcribe` command (suite)
    split_wer: dict = field(default_factory=dict)  # eval: split -> largest WER allowed, e.g. {test = 0.10}
    below_peer: dict = field(default_factory=dict)  # eval: split -> peer whose WER there must be beaten
    wer_gap: dict = field(default_factory=dict)  # eval: "a - b" -> largest WER(a) - WER(b), two split names


@dataclass(frozen=True)
class BudgetCheck:
    """One limit held against one measurement."""

    limit_name: str  # e.g. "max_wer"
    limit: float  # the budget's value
    measured: float | None  # what the run measured (None: not measured in this run)
    passed: bool  # within the limit; an unmeasured limit fails

    @property
    def miss(self) -> str:
        """How far outside the limit, as text (``""`` when passed).

        Returns:
            e.g. ``"+0.023 (+23%)"`` above a maximum, ``"-0.4 (-27%)"`` below a minimum, or
            ``"not measured"``.
        """
        if self.passed:
            return ""
        if self.measured is None or math.isnan(self.measured):
            return "not measured"
        delta = self.measured - self.limit
        rel = f" ({100 * delta / abs(self.limit):+.0f}%)" if self.limit else ""
        return f"{delta:+.4g}{rel}"


def _parse_target(path: str | Path, name: str, table: dict) -> Budget:
    table = dict(table)
    known = {f.name for f in fields(Budget)} - {"name"}
    unknown = set(table) - known
    if unknown:
        raise ValueError(
            f"{path}: [targets.{name}] has unknown key(s): {', '.join(sorted(unknown))} "
            f"(known: {', '.join(sorted(known))})"
        )
    if table.get("source", "") not in SOURCES:
        raise ValueError(f"{path}: [targets.{name}] source must be one of {SOURCES}, not {table['source']!r}")
    if table.get("requires", "") not in ("", "gpu"):
        raise ValueError(f'{path}: [targets.{name}] requires must be "gpu" or absent')
    for key in LIMIT_MEASURES:
        value = table.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ValueError(f"{path}: [targets.{name}] {key} must be a number, not {value!r}")
    for key in ("split_wer", "below_peer", "wer_gap"):
        if not isinstance(table.get(key, {}), dict):
            raise ValueError(f"{path}: [targets.{name}] {key} must be a table, not {table[key]!r}")
    for gap in table.get("wer_gap", {}):
        if " - " not in gap:
            raise ValueError(f"{path}: [targets.{name}] wer_gap key {gap!r} must read 'split - split'")
    at = table.get("at_concurrency", 1)
    if isinstance(at, bool) or not isinstance(at, int) or at < 1:
        raise ValueError(f"{path}: [targets.{name}] at_concurrency must be a positive integer")
    return Budget(name=name, **table)


def load_budgets(path: str | Path) -> dict[str, Budget]:
    """Read every ``[targets.<name>]`` table of a budgets TOML.

    Args:
        path: the budgets file, e.g. ``bench/budgets.toml``.

    Returns:
        Target name -> budget, in file order.

    Raises:
        FileNotFoundError: no such file.
        ValueError: an unknown key, a non-numeric limit or a bad ``source``/``requires``.
    """
    with open(path, "rb") as fh:
        targets = tomllib.load(fh).get("targets", {})
    return {name: _parse_target(path, name, table) for name, table in targets.items()}


def load_budget(path: str | Path, target: str) -> Budget:
    """Read ``[targets.<target>]`` from a budgets TOML.

    Args:
        path: the budgets file.
        target: the target's name.

    Returns:
        The budget.

    Raises:
        KeyError: no such target (the message lists the ones there are).
        ValueError: an unknown limit name (typos must not pass silently) or a bad value.
    """
    budgets = load_budgets(path)
    if target not in budgets:
        raise KeyError(f"{path}: no budget target {target!r} (have: {', '.join(budgets) or 'none'})")
    return budgets[target]


def check_budget(budget: Budget, measured: dict) -> list[BudgetCheck]:
    """Hold measurements against every limit of a budget.

    Args:
        budget: the limits.
        measured: flat measurements, keyed as in :data:`LIMIT_MEASURES` (``wer``,
            ``p99_ms_at``, ``batching_gain``, ...); absent or ``None`` means not measured.

    Returns:
        One check per limit that the budget sets, in :data:`LIMIT_MEASURES` order.
    """
    checks = []
    for limit_name, key in LIMIT_MEASURES.items():
        limit = getattr(budget, limit_name)
        if limit is None:
            continue
        value = measured.get(key)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            checks.append(BudgetCheck(limit_name, float(limit), None, False))
            continue
        ok = value <= limit if limit_name.startswith("max_") else value >= limit
        checks.append(BudgetCheck(limit_name, float(limit), float(value), bool(ok)))
    return checks


def check_eval_budget(budget: Budget, report: dict) -> list[BudgetCheck]:
    """Hold an ``edgeasr eval --out`` report against a budget's accuracy limits.

    Args:
        budget: its ``split_wer``, ``below_peer`` and ``wer_gap`` tables (and ``max_wer``, held
            against the first split).
        report: the eval report (``splits`` of edgeasr, ``peers`` with their ``splits``).

    Returns:
        One check per limit; a split or peer the report lacks fails as not measured.
    """
    ours = {s["name"]: s["wer"] for s in report.get("splits", [])}
    peers = {name: {s["name"]: s["wer"] for s in p.get("splits", [])} for name, p in report.get("peers", {}).items()}

    def check(limit_name: str, limit: float | None, value: float | None, ok: bool) -> BudgetCheck:
        if limit is None or value is None or math.isnan(value) or math.isnan(limit):
            return BudgetCheck(limit_name, float("nan") if limit is None else float(limit), None, False)
        return BudgetCheck(limit_name, float(limit), float(value), bool(ok))

    checks = []
    if budget.max_wer is not None:
        first = next(iter(ours.values()), None)
        checks.append(check("max_wer", budget.max_wer, first, first is not None and first <= budget.max_wer))
    for split, limit in budget.split_wer.items():
        value = ours.get(split)
        checks.append(check(f"split_wer[{split}]", limit, value, value is not None and value <= limit))
    for split, peer in budget.below_peer.items():
        value, theirs = ours.get(split), peers.get(peer, {}).get(split)
        ok = value is not None and theirs is not None and value < theirs
        checks.append(check(f"below_peer[{split}<{peer}]", theirs, value, ok))
    for gap, limit in budget.wer_gap.items():
        a, b = (s.strip() for s in gap.split(" - ", 1))
        value = ours[a] - ours[b] if a in ours and b in ours else None
        checks.append(check(f"wer_gap[{gap}]", limit, value, value is not None and value <= limit))
    return checks


def format_checks(budget: Budget, checks: list[BudgetCheck], skipped: str = "") -> str:
    """Render the checks of one target as a table (what missed, by how much).

    Args:
        budget: the target's budget.
        checks: the result of :func:`check_budget`.
        skipped: a reason when the target was not measured on this machine.

    Returns:
        Lines of text, the first naming the target and its verdict.
    """
    if skipped:
        return f"budget {budget.name}: SKIPPED ({skipped})"
    verdict = "pass" if all(c.passed for c in checks) else "MISSED"
    at = f", at concurrency {budget.at_concurrency}" if budget.at_concurrency != 1 else ""
    lines = [f"budget {budget.name}: {verdict}{at}" + (f"  [{budget.description}]" if budget.description else "")]
    width = max([24, *(len(c.limit_name) + 2 for c in checks)])
    lines.append(f"  {'':<5}{'limit':<{width}}{'budget':>10}{'measured':>12}  miss")
    for c in checks:
        shown = "-" if c.measured is None else f"{c.measured:.4g}"
        lines.append(f"  {'ok' if c.passed else 'MISS':<5}{c.limit_name:<{width}}{c.limit:>10.4g}{shown:>12}  {c.miss}")
    return "\n".join(lines)
