"""Benchmark budgets: limits per deployment target, loaded from ``bench/budgets.toml``.

    [targets.device-cpu-int8]
    max_wer = 0.10
    min_speed_x_realtime = 100

A limit left out is not checked. :func:`check_budget` compares a bench result with a budget and
returns one :class:`BudgetCheck` per limit; ``edgeasr bench`` exits non-zero when any fails and
prints what missed by how much.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

__all__ = ["Budget", "BudgetCheck", "check_budget", "load_budget"]


@dataclass(frozen=True)
class Budget:
    """Limits for one target; ``None`` means not checked."""

    name: str = ""  # target name (the TOML table's key)
    max_wer: float | None = None  # corpus WER on the bench manifest, 0..1
    max_cer: float | None = None  # corpus CER, 0..1
    max_p99_ms: float | None = None  # p99 latency at ``at_concurrency``, milliseconds
    at_concurrency: int = 1  # the concurrency whose p99 and throughput are checked
    max_p99_over_p50: float | None = None  # tail ratio p99/p50 at concurrency 1
    min_throughput_utt_s: float | None = None  # utterances per second at ``at_concurrency``
    min_speed_x_realtime: float | None = None  # audio seconds processed per wall second, concurrency 1
    max_memory_mb: float | None = None  # peak resident memory of the on-device path, MiB
    max_model_mb: float | None = None  # size of the model file, MiB
    min_batching_gain: float | None = None  # Triton: throughput with dynamic batching / without, at 8
    max_int8_wer_increase: float | None = None  # int8 WER minus fp32 WER (side-by-side runs)


@dataclass(frozen=True)
class BudgetCheck:
    """One limit held against one measurement."""

    limit_name: str  # e.g. "max_wer"
    limit: float  # the budget's value
    measured: float | None  # what the run measured (None: not measured in this run)
    passed: bool  # measured within the limit (an unmeasured limit fails: a gate must not pass blind)

    @property
    def miss(self) -> str:
        """How far outside the limit, as text ("" when passed)."""
        if self.passed:
            return ""
        if self.measured is None:
            return "not measured"
        return f"{self.measured - self.limit:+.4g}"


def load_budget(path: str | Path, target: str) -> Budget:
    """Read ``[targets.<target>]`` from a budgets TOML.

    Raises:
        KeyError: no such target (the message lists the ones there are).
        ValueError: an unknown limit name (typos must not pass silently).
    """
    with open(path, "rb") as fh:
        targets = tomllib.load(fh).get("targets", {})
    if target not in targets:
        raise KeyError(f"{path}: no budget target {target!r} (have: {', '.join(sorted(targets)) or 'none'})")
    table = dict(targets[target])
    table.pop("description", None)
    known = {f.name for f in fields(Budget)}
    unknown = set(table) - known
    if unknown:
        raise ValueError(f"{path}: [targets.{target}] has unknown limit(s): {', '.join(sorted(unknown))}")
    return Budget(name=target, **table)


_MEASURE_KEYS = {
    "max_wer": "wer",
    "max_cer": "cer",
    "max_p99_ms": "p99_ms_at",
    "max_p99_over_p50": "p99_over_p50",
    "min_throughput_utt_s": "throughput_utt_s_at",
    "min_speed_x_realtime": "speed_x_realtime",
    "max_memory_mb": "peak_memory_mb",
    "max_model_mb": "model_mb",
    "min_batching_gain": "batching_gain",
    "max_int8_wer_increase": "int8_wer_increase",
}


def check_budget(budget: Budget, measured: dict) -> list[BudgetCheck]:
    """Hold ``measured`` (the flat summary of a bench run) against every limit of ``budget``."""
    checks = []
    for limit_name, key in _MEASURE_KEYS.items():
        limit = getattr(budget, limit_name)
        if limit is None:
            continue
        value = measured.get(key)
        if value is None:
            checks.append(BudgetCheck(limit_name, limit, None, False))
            continue
        ok = value <= limit if limit_name.startswith("max_") else value >= limit
        checks.append(BudgetCheck(limit_name, float(limit), float(value), bool(ok)))
    return checks
