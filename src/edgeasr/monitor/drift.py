"""Drift: a window of live requests held against the training data's reference profile.

The reference is the profile ``edgeasr data validate --profile`` writes (per feature: quantiles, a
histogram and a fixed random sample of up to 2,000 values); the window is a log of request
records (:mod:`edgeasr.monitor.live`). Each feature both carry is tested with the test suited to
the window's size (:class:`DriftOptions`):

* fewer than ``large_window`` values: the two-sample Kolmogorov-Smirnov test
  (``scipy.stats.ks_2samp``) against the reference sample, at ``alpha`` divided by the number of
  features tested (Bonferroni), so that a window drawn from the training distribution raises an
  alarm on any feature at most ``alpha`` of the time;
* more: the population stability index over the reference's deciles, drifted above ``max_psi``
  (0.2 is the usual "significant shift"), since with thousands of values KS flags shifts too small
  to matter.

Dataset level: the window has drifted when any feature has; it is a *dataset drift* when at least
``dataset_fraction`` of the tested features have. Output health is checked beside it: the share
of empty transcripts above ``max_empty_rate``, mean frame confidence below ``min_confidence``.

Measured defaults (``tests/test_monitor.py``): of 40 windows of 120 utterances drawn from the
reference's own distribution, at most 2 raise an alarm (alpha 0.01 expects 0.4); a window of
louder, quieter, noisier, faster, clipped or 8 kHz-upsampled audio is flagged on the features that
describe it (level and peak; silences; duration and speaking rate; clipping; the band above 4 kHz).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

__all__ = ["FEATURES", "DriftOptions", "DriftReport", "FeatureDrift", "detect_drift"]

FEATURES = (
    "duration",
    "loudness",
    "peak",
    "clipping_ratio",
    "high_band_db",
    "leading_silence",
    "trailing_silence",
    "silence_ratio",
    "words_per_second",
    "chars_per_second",
)
"""Features a window and a reference profile share (the profile's names)."""


@dataclass(frozen=True)
class DriftOptions:
    """Thresholds of the drift tests and the health alerts."""

    alpha: float = 0.01  # family-wise false-alarm rate of the KS tests on a clean window (Bonferroni)
    large_window: int = 1000  # windows with at least this many values use PSI instead of KS
    max_psi: float = 0.2  # population stability index above which a large window's feature drifted
    dataset_fraction: float = 0.5  # share of drifted features that makes a dataset drift
    min_values: int = 30  # features with fewer values in the window are not tested
    max_empty_rate: float = 0.2  # share of empty transcripts above which output health alerts
    min_confidence: float = 0.5  # mean best-token probability below which output health alerts
    features: tuple[str, ...] = FEATURES  # which features to test


@dataclass
class FeatureDrift:
    """One feature's test."""

    feature: str
    test: str  # "ks" or "psi"
    statistic: float  # KS distance or PSI
    p_value: float | None  # KS only
    threshold: float  # the p-value or PSI limit it was held to
    drifted: bool
    window_median: float
    reference_median: float
    values: int


@dataclass
class DriftReport:
    """The verdict on one window."""

    window: int  # requests in the window
    features: list[FeatureDrift] = field(default_factory=list)
    drifted: list[str] = field(default_factory=list)  # features that drifted
    dataset_drift: bool = False
    alerts: list[str] = field(default_factory=list)  # output-health alerts
    health: dict[str, float] = field(default_factory=dict)

    @property
    def drift(self) -> bool:
        """Whether anything is wrong: a drifted feature or an output-health alert."""
        return bool(self.drifted or self.alerts)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {**asdict(self), "drift": self.drift}

    def table(self) -> str:
        """A readable report."""
        lines = [f"window of {self.window} requests", f"{'feature':<20}{'test':>5}{'stat':>9}{'p':>10}{'median':>10}"
                 f"{'ref':>10}  verdict"]  # fmt: skip
        for f in self.features:
            p = f"{f.p_value:.2e}" if f.p_value is not None else "-"
            verdict = "DRIFT" if f.drifted else "ok"
            lines.append(
                f"{f.feature:<20}{f.test:>5}{f.statistic:>9.3f}{p:>10}{f.window_median:>10.3f}{f.reference_median:>10.3f}"
                f"  {verdict}"
            )
        for name, value in self.health.items():
            lines.append(f"health {name}: {value:.3f}")
        lines.extend(f"ALERT {a}" for a in self.alerts)
        verdict = "dataset drift" if self.dataset_drift else ("drift" if self.drifted else "no drift")
        lines.append(f"verdict: {verdict}" + (f" ({', '.join(self.drifted)})" if self.drifted else ""))
        return "\n".join(lines)


def _psi(reference: np.ndarray, window: np.ndarray) -> float:
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, 11)))
    if edges.size < 3:
        return 0.0
    edges[0], edges[-1] = -np.inf, np.inf
    ref = np.histogram(reference, edges)[0] / reference.size
    win = np.histogram(window, edges)[0] / window.size
    ref, win = np.clip(ref, 1e-4, None), np.clip(win, 1e-4, None)
    return float(np.sum((win - ref) * np.log(win / ref)))


def detect_drift(
    profile: dict[str, Any], records: list[dict[str, Any]], options: DriftOptions = DriftOptions()
) -> DriftReport:
    """Hold a window of request records against a reference profile.

    Args:
        profile: a reference profile (``edgeasr data validate --profile``), with per-feature samples.
        records: the window's request records.
        options: thresholds.

    Returns:
        The report (``report.drift`` is the verdict).

    Raises:
        ValueError: the profile has no feature samples (written by an older edgeasr: validate again).
    """
    from scipy.stats import ks_2samp

    report = DriftReport(window=len(records))
    tested = []
    for name in options.features:
        ref = np.asarray((profile.get(name) or {}).get("sample") or [], dtype=np.float64)
        win = np.asarray([float(r[name]) for r in records if isinstance(r.get(name), int | float)], np.float64)
        if ref.size >= options.min_values and win.size >= options.min_values:
            tested.append((name, ref, win))
    if not tested and not any("sample" in (profile.get(n) or {}) for n in options.features):
        raise ValueError("the reference profile carries no feature samples: write it again with edgeasr data validate")
    level = options.alpha / max(len(tested), 1)
    for name, ref, win in tested:
        if win.size < options.large_window:
            result = ks_2samp(win, ref)
            stat, p = float(result.statistic), float(result.pvalue)
            drifted, test, threshold = p < level, "ks", level
        else:
            stat, p = _psi(ref, win), None
            drifted, test, threshold = stat > options.max_psi, "psi", options.max_psi
        report.features.append(
            FeatureDrift(
                name, test, stat, p, threshold, drifted, float(np.median(win)), float(np.median(ref)), win.size
            )
        )
        if drifted:
            report.drifted.append(name)
    report.dataset_drift = bool(tested) and len(report.drifted) >= options.dataset_fraction * len(tested)
    if records:
        empty = float(np.mean([bool(r.get("empty")) for r in records]))
        report.health["empty_rate"] = empty
        if empty > options.max_empty_rate:
            report.alerts.append(f"empty transcripts {100 * empty:.0f}% > {100 * options.max_empty_rate:.0f}%")
        confidences = [float(r["mean_confidence"]) for r in records if "mean_confidence" in r]
        if confidences:
            confidence = float(np.mean(confidences))
            report.health["mean_confidence"] = confidence
            if confidence < options.min_confidence:
                report.alerts.append(f"mean confidence {confidence:.2f} < {options.min_confidence:.2f}")
    return report
