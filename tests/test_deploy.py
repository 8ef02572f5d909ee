"""deploy/: the Prometheus alert rules and the Grafana dashboard name only metrics that edgeasr serve
serves, and promtool accepts the rules where it is installed (Debian: the prometheus package)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "deploy" / "prometheus" / "edgeasr-alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "edgeasr-dashboard.json"


def served_metric_names() -> set[str]:
    """edgeasr's own (served model and routing front) with their exposition suffixes, and Triton's used."""
    source = (ROOT / "src/edgeasr/serving/triton_model.py").read_text()  # imports pb_utils: read, not imported
    model = set(re.findall(r'"(edgeasr_request_[a-z_]+)":', source))
    names = set()
    for name in model:
        names |= {name} if name.endswith("_total") else {f"{name}_{s}" for s in ("sum", "count", "bucket")}
    front = (ROOT / "src/edgeasr/serving/metrics.py").read_text()
    names |= {f"{n}_total" for n in re.findall(r'"(edgeasr_front_[a-z]+)"', front)}
    return names | {"nv_inference_request_success", "nv_inference_request_failure"}


def _expressions() -> list[str]:
    rules = yaml.safe_load(RULES.read_text())
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    exprs += [t["expr"] for p in json.loads(DASHBOARD.read_text())["panels"] for t in p["targets"]]
    return exprs


def test_rules_and_dashboard_name_only_served_metrics() -> None:
    known = served_metric_names()
    assert {"edgeasr_request_empty_total", "edgeasr_request_level_dbfs_sum", "edgeasr_front_fallbacks_total"} <= known
    used = {m for e in _expressions() for m in re.findall(r"\b((?:edgeasr|nv_inference)_[a-z_]+)\b", e)}
    assert used and used <= known, used - known


def test_every_alert_has_a_summary_and_a_severity() -> None:
    rules = yaml.safe_load(RULES.read_text())
    alerts = [r for g in rules["groups"] for r in g["rules"]]
    assert len(alerts) >= 6
    assert all(r["alert"].startswith("Edgeasr") and r["labels"]["severity"] in ("warning", "critical") for r in alerts)
    assert all("{{ $labels.model }}" in r["annotations"]["summary"] for r in alerts)


def test_promtool_accepts_the_rules() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip(reason="promtool is not installed (Debian: apt-get install prometheus)")
    proc = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
