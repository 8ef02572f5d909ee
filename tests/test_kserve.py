"""KServe InferenceService manifests of a canary policy: fields as KServe v1beta1 defines them."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import yaml

from edgeasr.canary import cli as canary_cli
from edgeasr.canary.kserve import inference_service, to_yaml, validate_inference_service, write_manifests
from edgeasr.canary.policy import CanaryPolicy

ROOT = Path(__file__).resolve().parents[1]


def _load(text: str) -> object:
    """Read YAML with the library KServe's tooling would use (PyYAML), not with our own reader."""
    return yaml.safe_load(text)


def test_yaml_round_trip() -> None:
    doc = {
        "a": {"b": [1, "two: 2", {"c": True, "d": None}], "e": "x/y"},
        "serving.kserve.io/mode": "S",
        "f": [],
        "g": ["yes", "no", "on", "1.0", "null", "#x", "- y"],  # strings YAML 1.1 would read as other types
    }
    assert _load(to_yaml(doc)) == doc
    assert list(_load(to_yaml(doc))) == ["a", "serving.kserve.io/mode", "f", "g"]  # order kept


def test_manifests_per_step_promote_and_rollback(tmp_path: Path) -> None:
    policy = CanaryPolicy.from_toml(ROOT / "export" / "canary.toml")
    policy = CanaryPolicy(champion="1", challenger="2", steps=policy.steps)
    paths = write_manifests(policy, tmp_path, storage_uri="s3://models/edgeasr/repo-v2", namespace="asr")
    assert [p.name for p in paths] == [
        "step-1-5pct.yaml",
        "step-2-25pct.yaml",
        "step-3-50pct.yaml",
        "promote.yaml",
        "rollback.yaml",
    ]
    docs = [_load(p.read_text()) for p in paths]
    for doc in docs:
        assert validate_inference_service(doc) == []
        assert doc["apiVersion"] == "serving.kserve.io/v1beta1" and doc["kind"] == "InferenceService"
        assert doc["metadata"]["name"] == "edgeasr" and doc["metadata"]["namespace"] == "asr"
        assert doc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Serverless"
        model = doc["spec"]["predictor"]["model"]
        assert model["modelFormat"] == {"name": "triton"} and model["protocolVersion"] == "v2"
        assert model["storageUri"] == "s3://models/edgeasr/repo-v2" and model["runtimeVersion"] == "24.12-py3"
    assert [d["spec"]["predictor"].get("canaryTrafficPercent") for d in docs] == [5, 25, 50, None, 0]
    assert docs[0]["metadata"]["annotations"]["edgeasr/challenger"] == "2"


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda d: d["spec"]["predictor"].update(canaryTraffic=5), "unknown spec.predictor fields"),
        (lambda d: d["spec"]["predictor"].update(canaryTrafficPercent=150), "0..100"),
        (lambda d: d["spec"]["predictor"].update(triton={"storageUri": "s3://x"}), "exactly one"),
        (lambda d: d["spec"]["predictor"]["model"].update(storageURI="s3://x"), "unknown spec.predictor.model"),
        (lambda d: d["spec"]["predictor"]["model"].update(protocolVersion="v3"), "protocolVersion"),
        (lambda d: d["metadata"].update(name="Edge_ASR"), "DNS-1035"),
        (lambda d: d.update(apiVersion="serving.kubeflow.org/v1alpha2"), "apiVersion"),
    ],
)
def test_validation_catches_what_kserve_would_reject(change, problem: str) -> None:
    doc = inference_service("edgeasr", "gs://b/m", canary_percent=10)
    assert validate_inference_service(doc) == []
    change(doc)
    assert any(problem in p for p in validate_inference_service(doc)), validate_inference_service(doc)


def test_kserve_command(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    parser = argparse.ArgumentParser()
    canary_cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        [
            "canary",
            "kserve",
            "--policy",
            str(ROOT / "export" / "canary.toml"),
            "--challenger",
            "2",
            "--storage-uri",
            "pvc://models/edgeasr",
            "--out",
            str(tmp_path),
        ]
    )
    assert args.func(args) == 0
    assert len(capsys.readouterr().out.split()) == 5
    assert "canaryTrafficPercent: 25" in (tmp_path / "step-2-25pct.yaml").read_text()
