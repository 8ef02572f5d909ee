"""The thin path end to end through the command line: synth, train, export, serve, transcribe.

Every stage is the real one: espeak-ng synthesis, torch training (a few steps of the tiny recipe),
ONNX export with its parity check, the real Triton server over gRPC on free loopback ports, and
onnxruntime in process. The gRPC and in-process transcripts must be identical.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.triton

ROOT = Path(__file__).resolve().parents[1]


def _edgeasr(*args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "edgeasr", *args], capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"edgeasr {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> dict:
    if shutil.which("espeak-ng") is None:
        pytest.skip(reason="espeak-ng is not installed (the README's set-up installs it)")
    pytest.importorskip("torch", reason="training needs torch (train extra)")
    from edgeasr.serving.server import ServerError, find_tritonserver

    try:
        find_tritonserver()
    except ServerError as exc:
        pytest.skip(reason=f"no bundled Triton server: {exc}")
    work = tmp_path_factory.mktemp("pipeline")
    corpus = work / "corpus"
    _edgeasr("data", "synth", "--out", str(corpus), "--num-sentences", "60", "--engines", "espeak-ng", "--quiet")
    recipe = (ROOT / "recipes" / "tiny.toml").read_text()
    recipe = recipe.replace("work/tiny/train.jsonl", str(corpus / "train.jsonl"))
    recipe = recipe.replace("work/tiny/dev.jsonl", str(corpus / "dev.jsonl"))
    (work / "tiny.toml").write_text(recipe)
    _edgeasr("train", "--recipe", str(work / "tiny.toml"), "--out", str(work / "run"), "--max-steps", "15")
    repo = work / "triton_models"
    out = _edgeasr(
        "export",
        str(work / "run" / "best.pt"),
        "--target",
        str(ROOT / "export" / "cpu-fp32.toml"),
        "--repository",
        str(repo),
    )
    assert "version 1" in out.stdout
    return {"corpus": corpus, "repo": repo}


@pytest.fixture(scope="module")
def served(pipeline: dict):
    grpc, metrics = _free_port(), _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edgeasr",
            "serve",
            "--model-repository",
            str(pipeline["repo"]),
            "--grpc-port",
            str(grpc),
            "--http-port",
            str(_free_port()),
            "--metrics-port",
            str(metrics),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = []
    deadline = time.time() + 120
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        lines.append(line)
        if "ready" in line:
            break
    assert any("ready" in line for line in lines), "".join(lines)
    yield {"url": f"127.0.0.1:{grpc}", "metrics": f"http://127.0.0.1:{metrics}/metrics", "proc": proc, **pipeline}
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def _wavs(corpus: Path) -> list[str]:
    rows = [json.loads(line) for line in (corpus / "test.jsonl").read_text().splitlines()]
    return [str(corpus / r["audio_filepath"]) for r in rows]


def test_grpc_and_in_process_transcripts_are_identical(served: dict) -> None:
    wavs = _wavs(served["corpus"])
    assert wavs
    remote = _edgeasr("transcribe", "--url", served["url"], "--json", *wavs)
    local = _edgeasr("transcribe", "--model", str(served["repo"] / "edgeasr"), "--json", *wavs)
    r = [json.loads(line) for line in remote.stdout.splitlines()]
    loc = [json.loads(line) for line in local.stdout.splitlines()]
    assert [x["audio"] for x in r] == [x["audio"] for x in loc] == wavs
    assert [x["text"] for x in r] == [x["text"] for x in loc]
    assert all(x["model_version"] == "1" for x in r)


def test_grpc_and_in_process_log_probabilities_agree(served: dict) -> None:
    """The tiny model's transcripts may be empty, so the numbers themselves are compared: text is not the point."""
    import numpy as np

    from edgeasr.audio import load_audio
    from edgeasr.client import TritonClient
    from edgeasr.recognizer import Recognizer

    client = TritonClient(served["url"])
    recognizer = Recognizer(served["repo"] / "edgeasr")
    for wav in _wavs(served["corpus"])[:4]:
        audio = load_audio(wav)
        remote, local = client.logprobs(audio), recognizer.logprobs(audio, 16000)
        assert remote.shape == local.shape and remote.shape[0] > 10
        assert np.isfinite(remote).all() and remote.std() > 0.01  # a real distribution, not a constant
        np.testing.assert_allclose(remote, local, atol=1e-4)


def test_the_metrics_port_serves_triton_and_the_front(served: dict) -> None:
    """One scrape: Triton's nv_inference_* and the routing front's counters, with model and version labels."""
    import urllib.request

    from edgeasr.client import TritonClient

    TritonClient(served["url"]).transcribe_file(_wavs(served["corpus"])[0])
    with urllib.request.urlopen(served["metrics"], timeout=10) as resp:
        text = resp.read().decode()
    assert 'nv_inference_request_success{model="edgeasr",version="1"}' in text
    line = next(x for x in text.splitlines() if x.startswith("edgeasr_front_requests_total{"))
    assert 'model="edgeasr"' in line and 'role="champion"' in line and 'version="1"' in line
    assert float(line.split()[-1]) >= 1
    # the served model's own statistics of the requests (custom metrics on Triton's port)
    assert 'edgeasr_request_audio_seconds_count{model="edgeasr",version="1"}' in text
    assert 'edgeasr_request_level_dbfs_bucket{model="edgeasr",version="1",le="-20"}' in text


def test_bench_over_the_manifest(served: dict) -> None:
    manifest = str(served["corpus"] / "test.jsonl")
    out = _edgeasr("bench", "--manifest", manifest, "--url", served["url"], "--concurrency", "1,4")
    assert re.search(r"WER [\d.]+%\s+CER [\d.]+%", out.stdout)
    assert "p99" in out.stdout
    local = _edgeasr("bench", "--manifest", manifest, "--model", str(served["repo"] / "edgeasr"), "--concurrency", "1")
    assert "WER" in local.stdout


def test_not_audio_gives_one_line_error_and_non_zero_exit(served: dict, tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.wav"
    bogus.write_text("definitely not audio\n")
    for extra in ([], ["--url", served["url"]]):
        proc = _edgeasr("transcribe", *extra, "--model", str(served["repo"] / "edgeasr"), str(bogus), check=False)
        assert proc.returncode != 0
        err = proc.stderr.strip().splitlines()
        assert len(err) == 1 and str(bogus) in err[0], proc.stderr
        assert "Traceback" not in proc.stderr


def test_bad_request_gets_an_error_and_the_server_keeps_serving(served: dict) -> None:
    import numpy as np

    from edgeasr.client import ClientError, TritonClient

    client = TritonClient(served["url"])
    with pytest.raises(ClientError, match=r"INVALID_ARGUMENT: AUDIO: audio is 31\.0 s long"):
        client.transcribe(np.zeros(31 * 16000, np.float32), 16000)
    wav = _wavs(served["corpus"])[0]
    after = client.transcribe_file(wav)  # the next request is answered, by the same model
    assert after.model_version == "1" and after.latency_s > 0
    assert client.logprobs(np.zeros(16000, np.float32), 16000).shape[0] == 51  # 1 s: (100 hops + 2) // 2 frames


def test_sigterm_stops_the_server_cleanly(served: dict) -> None:
    proc = served["proc"]
    # `edgeasr serve` names its python-backend regions after its own process id
    own = f"triton_python_backend_shm_region_edgeasr{proc.pid}x"
    assert [p for p in os.listdir("/dev/shm") if p.startswith(own)], "the served model should hold shared memory"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    assert [p for p in os.listdir("/dev/shm") if p.startswith(own)] == []
