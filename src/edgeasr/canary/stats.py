"""Champion-versus-challenger statistics for canary analysis, with bootstrap confidence intervals.

The input is a list of *pair records*, one per request, as :mod:`edgeasr.canary.router` makes them
and :class:`~edgeasr.serving.live.PairLog` writes them to JSONL::

    {"id": "...", "audio": "a.wav", "duration_s": 1.9, "reference": "turn on the light",
     "served_by": "champion",
     "champion":   {"version": "1", "text": "...", "latency_s": 0.012, "error": null},
     "challenger": {"version": "2", "text": "...", "latency_s": 0.015, "error": null}}

A side whose ``error`` is set failed; a side with ``skipped`` set (a mirror shed under load, or
cancelled at close) makes the record no pair at all. :func:`analyze` computes, each with a percentile bootstrap
interval over the pairs (numpy, seeded, so a report is reproducible):

* ``disagreement``: word edit distance of the challenger's text from the champion's, over pairs
  where both answered, divided by the champion's word count (at least 1 per utterance);
* ``wer_delta``: challenger WER minus champion WER against the manifest's reference (where rows
  have one; a failed side counts as an empty transcript, i.e. all deletions);
* ``error_rate_delta``: challenger minus champion request error rate;
* ``empty_rate_delta``: challenger minus champion rate of empty transcripts (answered requests);
* ``p50_latency_delta_s`` / ``p99_latency_delta_s``: challenger minus champion latency quantile.

**Short utterances** cannot raise false alarms on their own: in the text metrics (disagreement,
WER, empty rate) an utterance of ``d`` seconds counts with weight ``min(1, d / short_utterance_s)``,
so a 0.2 s "yes" that legitimately comes back empty or different weighs a fifth of a sentence.

**Verdicts** per metric: ``fail`` when the interval's *lower* bound is above the threshold (the
challenger is worse with the stated confidence), ``pass`` when the *upper* bound is within it,
``unsure`` otherwise. Overall (:class:`Analysis`): fewer than ``min_samples`` pairs is
``inconclusive`` whatever the numbers; else any ``fail`` is ``failure``, all ``pass`` is
``success``, anything else ``inconclusive``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

__all__ = [
    "METRICS",
    "Analysis",
    "AnalysisOptions",
    "MetricResult",
    "analyze",
    "bootstrap_interval",
    "word_edits",
]

SUCCESS, FAILURE, INCONCLUSIVE = "success", "failure", "inconclusive"
METRICS = (
    "disagreement",
    "wer_delta",
    "error_rate_delta",
    "empty_rate_delta",
    "p50_latency_delta_s",
    "p99_latency_delta_s",
)
"""Metric names, in report order."""


@dataclass(frozen=True)
class AnalysisOptions:
    """How a window of pairs is judged (the ``[analysis]`` table of a canary TOML)."""

    min_samples: int = 100  # pairs needed before any verdict; fewer is always "inconclusive"
    confidence: float = 0.95  # two-sided level of the bootstrap intervals
    bootstrap_resamples: int = 1000  # bootstrap resamples per metric
    seed: int = 0  # bootstrap random seed (reports are reproducible)
    short_utterance_s: float = 1.0  # text metrics weigh an utterance min(1, duration / this)
    max_disagreement: float = 0.10  # challenger-vs-champion word edit rate allowed
    max_wer_increase: float = 0.02  # challenger WER minus champion WER (references) allowed
    max_error_rate_increase: float = 0.01  # challenger minus champion error rate allowed
    max_empty_rate_increase: float = 0.02  # challenger minus champion empty-output rate allowed
    max_p50_latency_increase_s: float = 0.050  # median latency increase allowed, seconds
    max_p99_latency_increase_s: float = 0.250  # 99th-percentile latency increase allowed, seconds

    def __post_init__(self) -> None:
        if self.min_samples < 1 or self.bootstrap_resamples < 10:
            raise ValueError("min_samples must be >= 1 and bootstrap_resamples >= 10")
        if not 0.5 <= self.confidence < 1.0:
            raise ValueError(f"confidence must be in [0.5, 1), got {self.confidence}")
        if self.short_utterance_s <= 0:
            raise ValueError("short_utterance_s must be > 0")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], where: str = "[analysis]") -> AnalysisOptions:
        """Build options from a TOML table; absent keys keep their defaults.

        Args:
            data: the table.
            where: names the table in error messages.

        Returns:
            The options.

        Raises:
            ValueError: unknown keys or invalid values.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{where}: unknown keys {unknown}; known: {sorted(known)}")
        return cls(**dict(data))

    def threshold(self, metric: str) -> float:
        """Return the threshold of a metric (one of :data:`METRICS`)."""
        return {
            "disagreement": self.max_disagreement,
            "wer_delta": self.max_wer_increase,
            "error_rate_delta": self.max_error_rate_increase,
            "empty_rate_delta": self.max_empty_rate_increase,
            "p50_latency_delta_s": self.max_p50_latency_increase_s,
            "p99_latency_delta_s": self.max_p99_latency_increase_s,
        }[metric]


@dataclass(frozen=True)
class MetricResult:
    """One metric of an analysis: its value, bootstrap interval, threshold and verdict."""

    name: str  # one of METRICS
    value: float | None  # point estimate; None when no pair carries this metric
    low: float | None  # lower bound of the bootstrap interval
    high: float | None  # upper bound of the bootstrap interval
    threshold: float  # the allowed maximum
    n: int  # pairs that carry this metric
    verdict: str  # "pass", "fail", "unsure", or "n/a" (no data, not judged)


@dataclass(frozen=True)
class Analysis:
    """The judgement of one window of pairs."""

    outcome: str  # "success", "failure" or "inconclusive"
    reasons: tuple[str, ...]  # why, one line per failing/unsure metric or the sample-size gate
    pairs: int  # records that are pairs (the challenger side was not shed)
    metrics: dict[str, MetricResult] = field(default_factory=dict)  # by name, in METRICS order
    rates: dict[str, float] = field(default_factory=dict)  # raw rates per side (for reports)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "outcome": self.outcome,
            "reasons": list(self.reasons),
            "pairs": self.pairs,
            "metrics": {k: asdict(v) for k, v in self.metrics.items()},
            "rates": dict(self.rates),
        }


def word_edits(reference: str, hypothesis: str) -> tuple[int, int]:
    """Return (word edits, reference words) between two normalized texts (jiwer alignment).

    Args:
        reference: the reference text (may be empty: every hypothesis word is an insertion).
        hypothesis: the hypothesis text (may be empty: every reference word is a deletion).

    Returns:
        Substitutions + deletions + insertions, and the reference's word count.
    """
    ref, hyp = reference.split(), hypothesis.split()
    if not ref or not hyp:
        return max(len(ref), len(hyp)), len(ref)
    import jiwer

    out = jiwer.process_words(" ".join(ref), " ".join(hyp))
    return int(out.substitutions + out.deletions + out.insertions), len(ref)


def bootstrap_interval(
    statistic: Callable[[np.ndarray], np.ndarray],
    n: int,
    *,
    resamples: int,
    confidence: float,
    rng: np.random.Generator,
) -> tuple[float, float, float]:
    """Percentile bootstrap of a statistic over ``n`` items.

    Args:
        statistic: maps an index array of shape (R, n) to R values (row r = one resample);
            called once with ``np.arange(n)[None, :]`` for the point estimate.
        n: number of items (must be > 0).
        resamples: number of bootstrap resamples R.
        confidence: two-sided confidence level.
        rng: the random generator.

    Returns:
        (point estimate, lower bound, upper bound).
    """
    point = float(statistic(np.arange(n)[None, :])[0])
    idx = rng.integers(0, n, size=(resamples, n))
    values = statistic(idx)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return point, point, point
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(values, [alpha, 1.0 - alpha])
    return point, float(low), float(high)


def _ratio(num: np.ndarray, den: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    def stat(idx: np.ndarray) -> np.ndarray:
        d = den[idx].sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(d > 0, num[idx].sum(axis=1) / np.where(d > 0, d, 1.0), np.nan)

    return stat


def _quantile_delta(a: np.ndarray, b: np.ndarray, q: float) -> Callable[[np.ndarray], np.ndarray]:
    def stat(idx: np.ndarray) -> np.ndarray:
        return np.quantile(b[idx], q, axis=1) - np.quantile(a[idx], q, axis=1)

    return stat


def _side(record: Mapping[str, Any], role: str) -> dict[str, Any]:
    side = record.get(role) or {}
    return side if isinstance(side, dict) else {}


def _is_pair(record: Mapping[str, Any]) -> bool:
    sides = (_side(record, "champion"), _side(record, "challenger"))
    return all(side and not side.get("skipped") for side in sides)


def _verdict(value: float | None, low: float | None, high: float | None, threshold: float) -> str:
    if value is None or low is None or high is None:
        return "unsure"
    if low > threshold:
        return "fail"
    if high <= threshold:
        return "pass"
    return "unsure"


def analyze(records: Sequence[Mapping[str, Any]], options: AnalysisOptions = AnalysisOptions()) -> Analysis:
    """Judge a window of pair records (see the module docstring for the metrics and rules).

    Args:
        records: pair records; those with a missing or skipped (shed) side are not pairs and ignored.
        options: thresholds, sample size gate and bootstrap settings.

    Returns:
        The analysis with every metric, its interval and the overall outcome.
    """
    pairs = [r for r in records if _is_pair(r)]
    n = len(pairs)
    rng = np.random.default_rng(options.seed)
    short = options.short_utterance_s
    weight = np.array(
        [min(1.0, float(r["duration_s"]) / short) if r.get("duration_s") else 1.0 for r in pairs], dtype=float
    )
    c_err = np.array([bool(_side(r, "champion").get("error")) for r in pairs], dtype=float)
    h_err = np.array([bool(_side(r, "challenger").get("error")) for r in pairs], dtype=float)
    c_text = [str(_side(r, "champion").get("text") or "") for r in pairs]
    h_text = [str(_side(r, "challenger").get("text") or "") for r in pairs]
    both = (c_err == 0) & (h_err == 0)
    samples: dict[str, tuple[Callable[[np.ndarray], np.ndarray], int] | None] = {}

    # disagreement over pairs where both answered
    ok = np.flatnonzero(both)
    if ok.size:
        edits = np.array([word_edits(c_text[i], h_text[i]) for i in ok], dtype=float)
        w = weight[ok]
        samples["disagreement"] = (_ratio(w * edits[:, 0], w * np.maximum(edits[:, 1], 1.0)), ok.size)
        c_empty = np.array([not c_text[i].strip() for i in ok], dtype=float)
        h_empty = np.array([not h_text[i].strip() for i in ok], dtype=float)
        samples["empty_rate_delta"] = (_ratio(w * (h_empty - c_empty), w), ok.size)
        c_lat = np.array([float(_side(pairs[i], "champion").get("latency_s") or 0.0) for i in ok])
        h_lat = np.array([float(_side(pairs[i], "challenger").get("latency_s") or 0.0) for i in ok])
        samples["p50_latency_delta_s"] = (_quantile_delta(c_lat, h_lat, 0.50), ok.size)
        samples["p99_latency_delta_s"] = (_quantile_delta(c_lat, h_lat, 0.99), ok.size)
    else:
        c_empty = h_empty = np.zeros(0)
        for name in ("disagreement", "empty_rate_delta", "p50_latency_delta_s", "p99_latency_delta_s"):
            samples[name] = None

    # WER against references; a failed side is an empty transcript
    refd = [i for i, r in enumerate(pairs) if str(r.get("reference") or "").strip()]
    if refd:
        rows = []
        for i in refd:
            ref = str(pairs[i]["reference"])
            ce, words = word_edits(ref, "" if c_err[i] else c_text[i])
            he, _ = word_edits(ref, "" if h_err[i] else h_text[i])
            rows.append((ce, he, words))
        arr = np.array(rows, dtype=float)
        w = weight[refd]
        samples["wer_delta"] = (_ratio(w * (arr[:, 1] - arr[:, 0]), w * arr[:, 2]), len(refd))
        wer_c = float((w * arr[:, 0]).sum() / max((w * arr[:, 2]).sum(), 1e-12))
        wer_h = float((w * arr[:, 1]).sum() / max((w * arr[:, 2]).sum(), 1e-12))
    else:
        wer_c = wer_h = float("nan")
    samples["error_rate_delta"] = (_ratio(h_err - c_err, np.ones(n)), n) if n else None

    metrics: dict[str, MetricResult] = {}
    for name in METRICS:
        threshold = options.threshold(name)
        entry = samples.get(name)
        if name == "wer_delta" and entry is None:
            metrics[name] = MetricResult(name, None, None, None, threshold, 0, "n/a")
            continue
        if entry is None:
            metrics[name] = MetricResult(name, None, None, None, threshold, 0, "unsure")
            continue
        stat, count = entry
        value, low, high = bootstrap_interval(
            stat, count, resamples=options.bootstrap_resamples, confidence=options.confidence, rng=rng
        )
        metrics[name] = MetricResult(name, value, low, high, threshold, count, _verdict(value, low, high, threshold))

    rates = {
        "champion_error_rate": float(c_err.mean()) if n else float("nan"),
        "challenger_error_rate": float(h_err.mean()) if n else float("nan"),
        "champion_empty_rate": float(c_empty.mean()) if c_empty.size else float("nan"),
        "challenger_empty_rate": float(h_empty.mean()) if h_empty.size else float("nan"),
        "champion_wer": wer_c,
        "challenger_wer": wer_h,
    }
    level = f"{100 * options.confidence:g}%"
    reasons = []
    for m in metrics.values():
        if m.verdict == "fail":
            reasons.append(f"{m.name} {m.value:.4g} ({level} CI {m.low:.4g}..{m.high:.4g}) > {m.threshold:g}")
        elif m.verdict == "unsure":
            if m.value is None:
                reasons.append(f"{m.name}: no pair where both versions answered")
            else:
                ci = f"({level} CI {m.low:.4g}..{m.high:.4g})"
                reasons.append(f"{m.name} {m.value:.4g} {ci} straddles {m.threshold:g}")
    if n < options.min_samples:
        outcome = INCONCLUSIVE
        reasons.insert(0, f"{n} pairs, fewer than the minimum sample size {options.min_samples}")
    elif any(m.verdict == "fail" for m in metrics.values()):
        outcome = FAILURE
        reasons = [r for r in reasons if "straddles" not in r and "no pair" not in r]
    elif all(m.verdict in ("pass", "n/a") for m in metrics.values()):
        outcome = SUCCESS
    else:
        outcome = INCONCLUSIVE
    return Analysis(outcome, tuple(reasons), n, metrics, rates)
