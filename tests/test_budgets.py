"""Budgets: loading bench/budgets.toml, holding measurements against limits, the miss table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgeasr.bench.budgets import (
    LIMIT_MEASURES,
    Budget,
    BudgetCheck,
    check_budget,
    check_eval_budget,
    format_checks,
    load_budget,
    load_budgets,
)

ROOT = Path(__file__).resolve().parents[1]


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "budgets.toml"
    path.write_text(text)
    return path


def test_shipped_budgets_load_with_the_issues_starting_values() -> None:
    budgets = load_budgets(ROOT / "bench" / "budgets.toml")
    assert {"device-cpu-int8", "triton-cpu", "triton-gpu", "ci-device"} <= set(budgets)
    device, triton, gpu = budgets["device-cpu-int8"], budgets["triton-cpu"], budgets["triton-gpu"]
    assert device.source == "device-int8" and device.min_speed_x_realtime == 300 and device.min_int8_speedup == 1.5
    assert device.max_int8_wer_increase == 0.005 and device.max_p99_over_p50_similar == 2.0
    assert triton.source == "triton" and triton.min_batching_gain == 2.0 and triton.at_concurrency == 8
    assert gpu.requires == "gpu" and gpu.source == "triton-gpu"
    assert budgets["ci-device"].source == ""  # held against a single run, not part of the suite


def test_max_and_min_limits_pass_and_miss() -> None:
    budget = Budget(name="x", max_wer=0.2, min_speed_x_realtime=100, max_p99_ms=50, at_concurrency=4)
    checks = {c.limit_name: c for c in check_budget(budget, {"wer": 0.25, "speed_x_realtime": 150, "p99_ms_at": 50})}
    assert set(checks) == {"max_wer", "min_speed_x_realtime", "max_p99_ms"}
    assert not checks["max_wer"].passed and checks["max_wer"].miss == "+0.05 (+25%)"
    assert checks["min_speed_x_realtime"].passed and checks["min_speed_x_realtime"].miss == ""
    assert checks["max_p99_ms"].passed  # the limit itself is within budget
    low = check_budget(Budget(min_speed_x_realtime=100), {"speed_x_realtime": 60})[0]
    assert not low.passed and low.miss == "-40 (-40%)"


def test_an_unmeasured_limit_fails() -> None:
    (check,) = check_budget(Budget(min_batching_gain=1.5), {"wer": 0.1})
    assert check == BudgetCheck("min_batching_gain", 1.5, None, False)
    assert check.miss == "not measured"
    (nan,) = check_budget(Budget(max_wer=0.1), {"wer": float("nan")})
    assert not nan.passed and nan.miss == "not measured"


def test_unknown_limit_names_are_an_error(tmp_path: Path) -> None:
    path = _toml(tmp_path, "[targets.x]\nmax_wer = 0.1\nmax_werr = 0.2\n")
    with pytest.raises(ValueError, match="max_werr"):
        load_budget(path, "x")


@pytest.mark.parametrize(
    "body, message",
    [
        ('max_wer = "low"', "must be a number"),
        ("max_wer = true", "must be a number"),
        ('source = "cloud"', "source must be one of"),
        ('requires = "tpu"', "requires"),
        ("at_concurrency = 0", "at_concurrency"),
    ],
)
def test_bad_values_are_an_error(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_budgets(_toml(tmp_path, f"[targets.x]\n{body}\n"))


def test_unknown_target_lists_the_known_ones(tmp_path: Path) -> None:
    path = _toml(tmp_path, "[targets.a]\nmax_wer = 0.1\n[targets.b]\nmax_cer = 0.1\n")
    with pytest.raises(KeyError, match="have: a, b"):
        load_budget(path, "c")
    assert load_budget(path, "b") == Budget(name="b", max_cer=0.1)


def test_table_shows_what_missed_by_how_much() -> None:
    budget = Budget(name="tight", max_wer=0.1, min_throughput_utt_s=50, at_concurrency=8)
    text = format_checks(budget, check_budget(budget, {"wer": 0.3, "throughput_utt_s_at": 80}))
    lines = text.splitlines()
    assert lines[0].startswith("budget tight: MISSED, at concurrency 8")
    miss = next(line for line in lines if "max_wer" in line)
    assert miss.split()[0] == "MISS" and "+0.2 (+200%)" in miss
    assert next(line for line in lines if "min_throughput_utt_s" in line).split()[0] == "ok"
    assert format_checks(budget, [], "no CUDA GPU") == "budget tight: SKIPPED (no CUDA GPU)"


def test_every_limit_has_a_measure() -> None:
    limits = {f for f in Budget.__dataclass_fields__ if f.startswith(("max_", "min_"))}
    assert limits == set(LIMIT_MEASURES)


REPORT = {
    "splits": [
        {"name": "test", "wer": 0.09},
        {"name": "heldout", "wer": 0.16},
        {"name": "real-dev", "wer": 0.40},
        {"name": "test@level-40dBFS", "wer": 0.105},
        {"name": "test@level-20dBFS", "wer": 0.09},
    ],
    "peers": {"pocketsphinx": {"splits": [{"name": "real-dev", "wer": 0.45}, {"name": "test", "wer": 0.3}]}},
}


def test_an_eval_report_is_held_against_split_peer_and_gap_limits(tmp_path: Path) -> None:
    path = tmp_path / "b.toml"
    path.write_text(
        '[targets.accuracy]\nsource = "eval"\nsplit_wer = {test = 0.10, heldout = 0.15}\n'
        'below_peer = {real-dev = "pocketsphinx", test = "whisper-tiny-en"}\n'
        'wer_gap = {"heldout - test" = 0.05, "test@level-40dBFS - test@level-20dBFS" = 0.01}\n'
    )
    budget = load_budget(path, "accuracy")
    checks = {c.limit_name: c for c in check_eval_budget(budget, REPORT)}
    assert checks["split_wer[test]"].passed and not checks["split_wer[heldout]"].passed
    assert checks["below_peer[real-dev<pocketsphinx]"].passed  # 40% < 45%
    assert checks["below_peer[test<whisper-tiny-en]"].miss == "not measured"  # the peer was not run: fails
    assert not checks["wer_gap[heldout - test]"].passed  # 7 points > 5
    assert not checks["wer_gap[test@level-40dBFS - test@level-20dBFS]"].passed  # 1.5 points > 1
    text = format_checks(budget, list(checks.values()))
    assert "MISSED" in text and "below_peer[real-dev<pocketsphinx]" in text
    path.write_text('[targets.a]\nsource = "eval"\nwer_gap = {"heldout" = 0.05}\n')
    with pytest.raises(ValueError, match="split - split"):
        load_budget(path, "a")


def test_bench_gates_an_eval_report_from_the_command_line(tmp_path: Path) -> None:
    from edgeasr.cli import main

    report = tmp_path / "eval.json"
    report.write_text(json.dumps(REPORT))
    budgets = tmp_path / "b.toml"
    budgets.write_text('[targets.ok]\nsource = "eval"\nbelow_peer = {real-dev = "pocketsphinx"}\n')
    assert main(["bench", "--eval-report", str(report), "--budgets", str(budgets), "--target", "ok"]) == 0
    budgets.write_text('[targets.ok]\nsource = "eval"\nsplit_wer = {real-dev = 0.3}\n')
    assert main(["bench", "--eval-report", str(report), "--budgets", str(budgets), "--target", "ok"]) == 1
    assert main(["bench", "--eval-report", str(report)]) == 2
    # two reports gate together: the peer measured in one run, edgeasr's split in another
    ours, theirs = tmp_path / "ours.json", tmp_path / "theirs.json"
    ours.write_text(json.dumps({"splits": [{"name": "real-dev", "wer": 0.40}]}))
    theirs.write_text(json.dumps({"splits": [], "peers": REPORT["peers"]}))
    budgets.write_text('[targets.ok]\nsource = "eval"\nbelow_peer = {real-dev = "pocketsphinx"}\n')
    gate = ["--budgets", str(budgets), "--target", "ok"]
    assert main(["bench", "--eval-report", str(ours), "--eval-report", str(theirs), *gate]) == 0
    assert main(["bench", "--eval-report", str(ours), *gate]) == 1  # the peer alone is missing: not measured
