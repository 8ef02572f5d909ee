"""Dockerfile.cpu / Dockerfile.gpu: NVIDIA's Triton base image, what they install, and their command
line run for real. There is no Docker engine here, so the closest check is to start the bundled
Triton with exactly the image's CMD (its flags, its repository layout) and transcribe through it."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILES = ["Dockerfile.cpu", "Dockerfile.gpu"]
TRITON_TENSORRT = {"24.12": "10.7.0"}  # NVIDIA's release notes: the image's TensorRT (10.7.0.23)
IMAGE_PATHS = {  # what the image has where the bundled server keeps it
    "/models": "repository",
    "/opt/tritonserver/bin/tritonserver": "binary",
    "/opt/tritonserver/backends": "backends",
}


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


def command(name: str) -> list[str]:
    """The image's CMD in exec form."""
    steps = instructions(ROOT / name)
    cmd = [rest for keyword, rest in steps if keyword == "CMD"]
    assert len(cmd) == 1, f"{name}: one CMD expected"
    return json.loads(cmd[0])


def image_version(name: str) -> str:
    steps = instructions(ROOT / name)
    image = expand(next(rest for keyword, rest in steps if keyword == "FROM"), arg_defaults(steps))
    match = re.fullmatch(r"nvcr\.io/nvidia/tritonserver:(\d\d\.\d\d)-py3", image)
    assert match, image
    return match.group(1)


@pytest.mark.parametrize("name", DOCKERFILES)
def test_base_image_is_nvidias_triton(name: str) -> None:
    assert image_version(name) in TRITON_TENSORRT


@pytest.mark.parametrize("name", DOCKERFILES)
def test_copied_paths_exist(name: str) -> None:
    steps = instructions(ROOT / name)
    copies = [shlex.split(rest) for keyword, rest in steps if keyword in ("COPY", "ADD")]
    assert copies, f"{name} copies nothing"
    for parts in copies:
        for src in (p for p in parts[:-1] if not p.startswith("--")):
            assert (ROOT / src).exists(), f"{name}: COPY source {src} is not in the repository"


@pytest.mark.parametrize("name", DOCKERFILES)
def test_the_image_installs_the_python_models_runtime(name: str) -> None:
    """The python backend needs edgeasr's runtime (numpy<2, onnxruntime, flashlight-text) in the image."""
    runs = " ".join(rest for keyword, rest in instructions(ROOT / name) if keyword == "RUN")
    assert re.search(r"pip install .*?/tmp/edgeasr", runs), runs
    deps = " ".join(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"])
    for needed in ("numpy>=1.24,<2", "onnxruntime", "flashlight-text", "tritonclient[grpc]"):
        assert needed in deps


def test_tensorrt_is_pinned_to_the_gpu_images_version() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert extras["gpu"] == [f"tensorrt=={TRITON_TENSORRT[image_version('Dockerfile.gpu')]}"]
    runs = " ".join(rest for keyword, rest in instructions(ROOT / "Dockerfile.gpu") if keyword == "RUN")
    assert "[gpu]" in runs


@pytest.mark.parametrize("name", DOCKERFILES)
def test_the_command_is_edgeasr_serve_on_the_images_server(name: str) -> None:
    cmd = command(name)
    assert cmd[:2] == ["edgeasr", "serve"]
    flags = dict(arg.split("=", 1) if "=" in arg else (arg, "") for arg in cmd[2:])
    assert "--public" in flags  # listening beyond loopback is a decision, stated on the command line
    assert "--allow-model-control" not in flags  # the model-repository API stays closed
    assert flags["--model-repository"] == "/models"
    assert flags["--tritonserver"] == "/opt/tritonserver/bin/tritonserver"
    assert flags["--backend-directory"] == "/opt/tritonserver/backends"
    assert (flags["--grpc-port"], flags["--http-port"], flags["--metrics-port"]) == ("8001", "8000", "8002")
    assert "--no-route" not in cmd  # clients that name no version get the champion
    steps = instructions(ROOT / name)
    exposed = " ".join(rest for keyword, rest in steps if keyword == "EXPOSE").split()
    assert exposed == ["8000", "8001", "8002"]
    copies = [shlex.split(rest) for keyword, rest in steps if keyword == "COPY"]
    assert ["triton_models/", "/models/"] in copies


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.triton
@pytest.mark.parametrize("name", DOCKERFILES)
def test_the_images_command_serves_the_shipped_model(name: str, tmp_path: Path) -> None:
    """The image's CMD, with the image's paths mapped onto the bundled server, answers TritonClient."""
    from edgeasr.client import TritonClient
    from edgeasr.serving.server import ServerError, find_tritonserver, prepare_backend_directory

    try:
        local = {"binary": str(find_tritonserver()), "backends": str(prepare_backend_directory())}
    except ServerError as exc:
        pytest.skip(reason=f"no bundled Triton server: {exc}")
    local["repository"] = str(tmp_path / "models")
    shutil.copytree(ROOT / "triton_models", local["repository"])  # COPY triton_models/ /models/
    ports = {"8001": _free_port(), "8000": _free_port(), "8002": _free_port()}
    args = []
    for arg in command(name)[2:]:
        if "=" not in arg:
            args.append(arg)
            continue
        flag, value = arg.split("=", 1)
        value = local.get(IMAGE_PATHS.get(value, ""), value)
        if flag.endswith("-port"):
            value = str(ports[value])
        if flag == "--bind":
            value = "127.0.0.1"  # the image listens on every interface; a test keeps to loopback
        args.append(f"{flag}={value}")
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgeasr", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                break
            lines.append(line)
            if "metrics" in line:
                break
        assert any("ready" in line for line in lines), "".join(lines)
        client = TritonClient(f"127.0.0.1:{ports['8001']}", "edgeasr", timeout_s=30)
        result = client.transcribe_file(str(ROOT / "samples" / "01-flite-rms.wav"))
        assert result.text == "is it windy in cincinnati right now"
        assert result.model_version == "31"  # the champion of triton_models/edgeasr/live.json
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
