"""A canary policy as KServe ``InferenceService`` manifests, for Triton on Kubernetes.

KServe (``serving.kserve.io/v1beta1``, serverless deployment mode) runs canaries by revision: the
predictor's ``canaryTrafficPercent`` routes that share of requests to the *latest ready* revision
(the one created by the last change of the spec, i.e. the challenger's ``storageUri``) and the rest
to the *last rolled-out* revision (the champion). Removing the field promotes the latest revision to
100 %; setting it to 0 pins all traffic to the previous revision (rollback).

:func:`write_manifests` writes one manifest per policy step (``step-1-5pct.yaml``, ...) plus
``promote.yaml`` and ``rollback.yaml``; apply them in order with ``kubectl apply -f`` while
``edgeasr canary shadow``-style analyses (or KServe's own metrics) decide between the next step and
the rollback. The predictor uses the model-format form of the spec::

    spec:
      predictor:
        canaryTrafficPercent: 25
        model:
          modelFormat: {name: triton}
          protocolVersion: v2
          runtimeVersion: 24.12-py3
          storageUri: s3://bucket/edgeasr/repository-v2

``storageUri`` is a Triton model repository. Triton serves the highest version of a repository by
default, so point it at a snapshot whose ``config.pbtxt`` serves the challenger (e.g. written with
:func:`edgeasr.canary.versions.set_live`). Each manifest is checked by
:func:`validate_inference_service` against the fields KServe's v1beta1 API defines (the
``PredictorSpec``, ``ComponentExtensionSpec``, ``ModelSpec`` and ``PredictorExtensionSpec`` Go
types): unknown keys, a missing or second predictor implementation, a canary percentage outside
0..100 and an invalid name are errors.

The YAML is emitted by PyYAML (:func:`to_yaml`: ``safe_dump``, block style, keys in the order
written), so quoting and escaping are a YAML library's, not hand-written.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from edgeasr.canary.policy import CanaryPolicy

__all__ = [
    "API_VERSION",
    "COMPONENT_EXTENSION_FIELDS",
    "KIND",
    "MODEL_FIELDS",
    "PREDICTOR_IMPLEMENTATIONS",
    "inference_service",
    "to_yaml",
    "validate_inference_service",
    "write_manifests",
]

API_VERSION = "serving.kserve.io/v1beta1"
KIND = "InferenceService"
PREDICTOR_IMPLEMENTATIONS = frozenset(
    {
        "sklearn",
        "xgboost",
        "tensorflow",
        "pytorch",
        "triton",
        "onnx",
        "huggingface",
        "pmml",
        "lightgbm",
        "paddle",
        "model",
    }
)
"""``PredictorSpec`` one-of fields (exactly one must be set; ``model`` is the current form)."""
COMPONENT_EXTENSION_FIELDS = frozenset(
    {
        "minReplicas",
        "maxReplicas",
        "scaleTarget",
        "scaleMetric",
        "containerConcurrency",
        "timeout",
        "canaryTrafficPercent",
        "logger",
        "batcher",
        "labels",
        "annotations",
        "deploymentStrategy",
    }
)
"""``ComponentExtensionSpec`` fields, inlined into the predictor."""
_POD_FIELDS = frozenset(
    {
        "containers",
        "initContainers",
        "volumes",
        "serviceAccountName",
        "nodeSelector",
        "affinity",
        "tolerations",
        "imagePullSecrets",
        "priorityClassName",
        "schedulerName",
        "securityContext",
        "runtimeClassName",
        "hostNetwork",
        "dnsPolicy",
        "storageUris",
        "workerSpec",
    }
)
_CONTAINER_FIELDS = frozenset(
    {
        "name",
        "image",
        "command",
        "args",
        "workingDir",
        "ports",
        "env",
        "envFrom",
        "resources",
        "volumeMounts",
        "livenessProbe",
        "readinessProbe",
        "startupProbe",
        "imagePullPolicy",
        "securityContext",
    }
)
MODEL_FIELDS = frozenset({"modelFormat", "runtime", "storageUri", "runtimeVersion", "protocolVersion", "storage"}) | (
    _CONTAINER_FIELDS
)
"""``ModelSpec`` fields: modelFormat and runtime, plus the inlined ``PredictorExtensionSpec`` and container."""
PROTOCOLS = frozenset({"v1", "v2", "grpc-v1", "grpc-v2"})
_NAME_RE = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def inference_service(
    name: str,
    storage_uri: str,
    *,
    canary_percent: float | None = None,
    namespace: str = "",
    runtime_version: str = "24.12-py3",
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Return one InferenceService (as plain data) serving a Triton repository.

    Args:
        name: the InferenceService name (DNS-1035 label).
        storage_uri: the Triton model repository of this revision.
        canary_percent: ``canaryTrafficPercent``; None = no canary (promote / first rollout).
        namespace: Kubernetes namespace; "" = none written.
        runtime_version: the Triton image tag KServe runs.
        annotations: extra metadata annotations.

    Returns:
        The manifest.
    """
    metadata: dict[str, Any] = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    metadata["annotations"] = {"serving.kserve.io/deploymentMode": "Serverless", **(annotations or {})}
    predictor: dict[str, Any] = {}
    if canary_percent is not None:
        predictor["canaryTrafficPercent"] = round(float(canary_percent))
    predictor["model"] = {
        "modelFormat": {"name": "triton"},
        "protocolVersion": "v2",
        "runtimeVersion": runtime_version,
        "storageUri": storage_uri,
    }
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": {"predictor": predictor}}


def validate_inference_service(doc: dict[str, Any]) -> list[str]:
    """Check a manifest against the fields KServe's v1beta1 InferenceService defines.

    Args:
        doc: the manifest.

    Returns:
        Problems found; empty when the manifest is valid.
    """
    problems = []
    if doc.get("apiVersion") != API_VERSION:
        problems.append(f"apiVersion must be {API_VERSION}, got {doc.get('apiVersion')!r}")
    if doc.get("kind") != KIND:
        problems.append(f"kind must be {KIND}, got {doc.get('kind')!r}")
    extra = sorted(set(doc) - {"apiVersion", "kind", "metadata", "spec", "status"})
    if extra:
        problems.append(f"unknown top-level fields {extra}")
    name = str((doc.get("metadata") or {}).get("name", ""))
    if not _NAME_RE.match(name) or len(name) > 63:
        problems.append(f"metadata.name {name!r} is not a DNS-1035 label")
    spec = doc.get("spec") or {}
    extra = sorted(set(spec) - {"predictor", "transformer", "explainer"})
    if extra:
        problems.append(f"unknown spec fields {extra}")
    predictor = spec.get("predictor")
    if not isinstance(predictor, dict):
        return [*problems, "spec.predictor is required"]
    unknown = sorted(set(predictor) - PREDICTOR_IMPLEMENTATIONS - COMPONENT_EXTENSION_FIELDS - _POD_FIELDS)
    if unknown:
        problems.append(f"unknown spec.predictor fields {unknown}")
    impls = sorted(set(predictor) & PREDICTOR_IMPLEMENTATIONS)
    if len(impls) != 1:
        problems.append(f"exactly one predictor implementation must be set, got {impls}")
    pct = predictor.get("canaryTrafficPercent")
    if pct is not None and (not isinstance(pct, int) or isinstance(pct, bool) or not 0 <= pct <= 100):
        problems.append(f"canaryTrafficPercent must be an integer in 0..100, got {pct!r}")
    lo, hi = predictor.get("minReplicas"), predictor.get("maxReplicas")
    if isinstance(lo, int) and isinstance(hi, int) and hi and lo > hi:
        problems.append("minReplicas cannot be greater than maxReplicas")
    for impl in impls:
        body = predictor[impl] or {}
        allowed = MODEL_FIELDS if impl == "model" else MODEL_FIELDS - {"modelFormat", "runtime"}
        unknown = sorted(set(body) - allowed)
        if unknown:
            problems.append(f"unknown spec.predictor.{impl} fields {unknown}")
        if impl == "model":
            fmt = body.get("modelFormat")
            if not isinstance(fmt, dict) or not fmt.get("name") or set(fmt) - {"name", "version"}:
                problems.append("spec.predictor.model.modelFormat needs a name (and optionally a version)")
        proto = body.get("protocolVersion")
        if proto is not None and proto not in PROTOCOLS:
            problems.append(f"protocolVersion must be one of {sorted(PROTOCOLS)}, got {proto!r}")
        if not body.get("storageUri") and not predictor.get("storageUris"):
            problems.append(f"spec.predictor.{impl}.storageUri is required")
    return problems


def to_yaml(doc: Any) -> str:
    """Return block-style YAML for plain data (mappings, lists, strings, numbers, booleans, None).

    Args:
        doc: the data.

    Returns:
        YAML text ending with a newline (PyYAML's ``safe_dump``; keys keep their order).
    """
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, allow_unicode=True)


def write_manifests(
    policy: CanaryPolicy,
    out_dir: str | os.PathLike,
    *,
    storage_uri: str,
    name: str = "edgeasr",
    namespace: str = "",
    runtime_version: str = "24.12-py3",
) -> list[Path]:
    """Write the policy's steps, promotion and rollback as InferenceService YAML files.

    Args:
        policy: the canary policy (its steps; champion/challenger go into annotations).
        out_dir: the folder (created).
        storage_uri: the challenger's Triton repository URI.
        name: InferenceService name.
        namespace: Kubernetes namespace ("" = none).
        runtime_version: Triton image tag.

    Returns:
        The written files, in the order to apply them (steps, promote), then rollback.

    Raises:
        ValueError: a manifest failed :func:`validate_inference_service`.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    notes = {
        "edgeasr/model": policy.model,
        "edgeasr/champion": policy.champion,
        "edgeasr/challenger": policy.challenger,
    }
    plan: list[tuple[str, float | None]] = [
        (f"step-{i + 1}-{round(p)}pct.yaml", p) for i, p in enumerate(policy.steps) if p < 100
    ]
    plan += [("promote.yaml", None), ("rollback.yaml", 0.0)]
    written = []
    for filename, pct in plan:
        doc = inference_service(
            name,
            storage_uri,
            canary_percent=pct,
            namespace=namespace,
            runtime_version=runtime_version,
            annotations={**notes, "edgeasr/stage": filename.removesuffix(".yaml")},
        )
        problems = validate_inference_service(doc)
        if problems:
            raise ValueError(f"{filename}: {'; '.join(problems)}")
        path = out / filename
        path.write_text(to_yaml(doc), encoding="utf-8")
        written.append(path)
    return written
