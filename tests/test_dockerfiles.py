"""Dockerfile.cpu / Dockerfile.gpu, read statically: base image, COPY sources, loaded models' platforms."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from edgeasr.export.repository import ModelRepository, RepositoryOptions

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILES = ["Dockerfile.cpu", "Dockerfile.gpu"]
PLATFORM = re.compile(r'^platform:\s*"([^"]+)"', re.MULTILINE)


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def arg_defaults(steps) -> dict[str, str]:
    return dict(rest.split("=", 1) for keyword, rest in steps if keyword == "ARG" and "=" in rest)


def expand(value: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), value)


def loaded_models(steps, args) -> list[str]:
    cmd = " ".join(rest for keyword, rest in steps if keyword in ("CMD", "ENTRYPOINT"))
    return [expand(m, args) for m in re.findall(r"--load-model[= ]([^\s\",\]]+)", cmd)]


@pytest.fixture(scope="module")
def published(tmp_path_factory, asr_onnx) -> Path:
    """A repository as publish() writes it (triton_models/ in the checkout may still be empty)."""
    root = tmp_path_factory.mktemp("triton_models")
    plan = root.parent / "model.plan"
    plan.write_bytes(b"plan")
    ModelRepository(root).publish("edgeasr", asr_onnx, card_fields={}, options=RepositoryOptions(), plan_path=plan)
    return root


@pytest.mark.parametrize("name", DOCKERFILES)
def test_base_image_is_nvidias_triton(name: str) -> None:
    steps = instructions(ROOT / name)
    image = expand(next(rest for keyword, rest in steps if keyword == "FROM"), arg_defaults(steps))
    assert re.fullmatch(r"nvcr\.io/nvidia/tritonserver:\d\d\.\d\d-py3", image), image


@pytest.mark.parametrize("name", DOCKERFILES)
def test_copied_paths_exist(name: str) -> None:
    steps = instructions(ROOT / name)
    copies = [shlex.split(rest) for keyword, rest in steps if keyword in ("COPY", "ADD")]
    assert copies, f"{name} copies nothing"
    for parts in copies:
        sources = [p for p in parts[:-1] if not p.startswith("--")]
        for src in sources:
            assert (ROOT / src).exists(), f"{name}: COPY source {src} is not in the repository"


@pytest.mark.parametrize(
    ("name", "platforms"),
    [("Dockerfile.cpu", {"onnxruntime_onnx"}), ("Dockerfile.gpu", {"onnxruntime_onnx", "tensorrt_plan"})],
)
def test_loaded_models_have_native_platforms(name: str, platforms: set[str], published: Path) -> None:
    steps = instructions(ROOT / name)
    args = arg_defaults(steps)
    models = loaded_models(steps, args)
    assert models, f"{name} loads no model explicitly"
    assert "--model-control-mode=explicit" in " ".join(rest for _, rest in steps)
    for model in models:
        for repo in (published, ROOT / "triton_models"):
            config = repo / model / "config.pbtxt"
            if repo == published or config.exists():
                match = PLATFORM.search(config.read_text())
                assert match and match.group(1) in platforms, f"{name}: {config} is not {platforms}"
    if "EDGEASR_MODEL" in args:  # the documented alternative build-arg value must work too
        for model in ("edgeasr_onnx", "edgeasr_trt"):
            assert PLATFORM.search((published / model / "config.pbtxt").read_text()).group(1) in platforms
