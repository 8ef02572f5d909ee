"""Canary statistics, the policy file and the reports: pure Python, no server."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from edgeasr.canary.policy import CanaryPolicy
from edgeasr.canary.report import render_markdown, write_report
from edgeasr.canary.stats import AnalysisOptions, analyze, bootstrap_interval, word_edits

ROOT = Path(__file__).resolve().parents[1]
OPTS = AnalysisOptions(min_samples=30, bootstrap_resamples=300)


def _pair(
    champ: str | None,
    chall: str | None,
    *,
    dur: float = 2.0,
    ref: str | None = None,
    lat: tuple[float, float] = (0.010, 0.012),
    skipped: bool = False,
) -> dict:
    def side(text: str | None, latency: float, version: str) -> dict:
        return {"version": version, "text": text, "latency_s": latency, "error": None if text is not None else "boom"}

    challenger = {"version": "2", "skipped": "shed"} if skipped else side(chall, lat[1], "2")
    return {
        "id": "x",
        "duration_s": dur,
        "reference": ref,
        "served_by": "champion",
        "champion": side(champ, lat[0], "1"),
        "challenger": challenger,
    }


def test_word_edits() -> None:
    assert word_edits("turn on the light", "turn the lights") == (2, 4)
    assert word_edits("a b", "") == (2, 2)
    assert word_edits("", "a b c") == (3, 0)
    assert word_edits("", "") == (0, 0)


def test_identical_versions_succeed_and_every_metric_passes() -> None:
    pairs = [_pair("play some jazz", "play some jazz", ref="play some jazz") for _ in range(60)]
    result = analyze(pairs, OPTS)
    assert result.outcome == "success", result.reasons
    assert result.metrics["disagreement"].value == 0.0
    assert all(m.verdict == "pass" for m in result.metrics.values())


def test_below_minimum_sample_size_is_inconclusive_even_when_clearly_bad() -> None:
    pairs = [_pair("play some jazz", None) for _ in range(10)]
    result = analyze(pairs, OPTS)
    assert result.outcome == "inconclusive"
    assert "minimum sample size 30" in result.reasons[0]


def test_errors_garbage_and_slowness_fail() -> None:
    errors = analyze([_pair("play some jazz", None) for _ in range(40)], OPTS)
    assert errors.outcome == "failure"
    assert errors.metrics["error_rate_delta"].verdict == "fail" and errors.rates["challenger_error_rate"] == 1.0
    garbage = analyze([_pair("play some jazz", "zq xv") for _ in range(40)], OPTS)
    assert garbage.outcome == "failure" and garbage.metrics["disagreement"].verdict == "fail"
    slow = analyze([_pair("a b", "a b", lat=(0.01, 0.5)) for _ in range(40)], OPTS)
    assert slow.outcome == "failure" and slow.metrics["p50_latency_delta_s"].verdict == "fail"
    assert slow.metrics["p50_latency_delta_s"].value == pytest.approx(0.49)


def test_wer_against_references_counts_a_failed_side_as_empty() -> None:
    pairs = [_pair("play some jazz", "play some jazz", ref="play some jazz") for _ in range(30)]
    pairs += [_pair("play some jazz", None, ref="play some jazz") for _ in range(10)]
    result = analyze(pairs, replace(OPTS, max_error_rate_increase=1.0))
    assert result.rates["champion_wer"] == 0.0 and result.rates["challenger_wer"] == pytest.approx(0.25)
    assert result.metrics["wer_delta"].verdict == "fail"
    assert analyze([_pair("a", "a") for _ in range(40)], OPTS).metrics["wer_delta"].verdict == "n/a"


def test_short_utterances_cannot_raise_false_alarms() -> None:
    long = [_pair("set a timer for ten minutes", "set a timer for ten minutes", dur=2.5) for _ in range(180)]
    short = [_pair("yes", "", dur=0.1) for _ in range(20)]  # a 0.1 s "yes" comes back empty
    weighted = analyze(long + short, AnalysisOptions(min_samples=30, bootstrap_resamples=300))
    assert weighted.outcome == "success", weighted.reasons
    assert weighted.metrics["empty_rate_delta"].value < 0.02
    unweighted = analyze(long + short, AnalysisOptions(min_samples=30, bootstrap_resamples=300, short_utterance_s=0.01))
    assert unweighted.outcome == "failure"
    assert unweighted.metrics["empty_rate_delta"].value == pytest.approx(0.1)


def test_straddling_the_threshold_is_inconclusive_and_shed_mirrors_are_not_pairs() -> None:
    # every 10th utterance differs by one word in five: disagreement 0.02, threshold 0.02
    pairs = [_pair("a b c d e", "a b c d x" if i % 10 == 0 else "a b c d e") for i in range(100)]
    result = analyze(pairs, replace(OPTS, max_disagreement=0.02))
    assert result.outcome == "inconclusive" and result.metrics["disagreement"].verdict == "unsure"
    champion_shed = {**_pair("a", "b"), "served_by": "challenger", "champion": {"version": "1", "skipped": "shed"}}
    extra = [_pair("a", "", skipped=True)] * 50 + [champion_shed] * 50
    assert analyze(pairs + extra, replace(OPTS, max_disagreement=0.02)).pairs == 100


def test_bootstrap_interval_is_seeded_and_brackets_the_estimate() -> None:
    values = np.random.default_rng(3).normal(1.0, 0.5, 200)

    def mean(idx: np.ndarray) -> np.ndarray:
        return values[idx].mean(axis=1)

    a = bootstrap_interval(mean, 200, resamples=500, confidence=0.95, rng=np.random.default_rng(0))
    b = bootstrap_interval(mean, 200, resamples=500, confidence=0.95, rng=np.random.default_rng(0))
    assert a == b and a[1] < a[0] < a[2]
    assert a[2] - a[1] == pytest.approx(2 * 1.96 * 0.5 / math.sqrt(200), rel=0.25)


def test_policy_file_documents_the_defaults_and_rejects_unknown_keys(tmp_path: Path) -> None:
    assert CanaryPolicy.from_toml(ROOT / "export" / "canary.toml") == CanaryPolicy()
    bad = tmp_path / "bad.toml"
    bad.write_text("[canary]\nstpes = [5, 100]\n")
    with pytest.raises(ValueError, match="stpes"):
        CanaryPolicy.from_toml(bad)
    bad.write_text("[canary]\nsteps = [50, 25]\n")
    with pytest.raises(ValueError, match="increasing"):
        CanaryPolicy.from_toml(bad)
    bad.write_text("[analysis]\nconfidence = 1.5\n")
    with pytest.raises(ValueError, match="confidence"):
        CanaryPolicy.from_toml(bad)


def test_report_has_every_decision_in_json_markdown_and_plot(tmp_path: Path) -> None:
    ok = analyze([_pair("a b", "a b") for _ in range(40)], OPTS).to_dict()
    bad = analyze([_pair("a b", None) for _ in range(40)], OPTS).to_dict()
    decisions = [
        {
            "index": 0,
            "step": 0,
            "percent": 5.0,
            "outcome": "success",
            "action": "next step",
            "reasons": [],
            "pairs": 40,
            "analysis": ok,
        },
        {
            "index": 1,
            "step": 1,
            "percent": 25.0,
            "outcome": "failure",
            "action": "roll back",
            "reasons": bad["reasons"],
            "pairs": 40,
            "analysis": bad,
        },
    ]
    report = {
        "kind": "rollout",
        "final": "rolled_back",
        "exit_code": 3,
        "champion": "1",
        "challenger": "2",
        "dry_run": False,
        "policy": CanaryPolicy().to_dict(),
        "stats": {"requests": 80},
        "decisions": decisions,
        "live_before": {"champion": "1", "phase": "stable"},
        "live_after": {"champion": "1"},
    }
    paths = write_report(report, tmp_path)
    data = json.loads(paths["json"].read_text())  # strict JSON: NaN rates became null
    assert [d["action"] for d in data["decisions"]] == ["next step", "roll back"]
    assert data["decisions"][0]["analysis"]["rates"]["champion_wer"] is None
    md = render_markdown(report)
    assert "rolled_back (exit code 3)" in md and "| 1 | 2 | 25 | failure | roll back | 40 |" in md
    assert "error_rate_delta 1" in md
    assert paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
