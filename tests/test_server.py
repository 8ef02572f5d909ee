"""The bundled Triton server: start, readiness, metrics, python-only loading, clean stop and SIGTERM."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from edgeasr.canary.versions import set_live
from edgeasr.serving.server import SHM_DIR, ServerError, TritonServer, python_models
from processes import descendants, running

pytestmark = pytest.mark.triton


def http_json(url: str, data: bytes | None = None):
    with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=5) as resp:
        body = resp.read()
    return json.loads(body) if body else None


def test_serves_only_python_models(triton_server: TritonServer) -> None:
    repo = triton_server.model_repository
    assert sorted(p.name for p in repo.iterdir()) == ["edgeasr", "edgeasr_onnx"]
    assert python_models(repo) == triton_server.models == ["edgeasr"]
    index = {m["name"]: m.get("state") for m in http_json(f"{triton_server.http_url}/v2/repository/index", b"{}")}
    assert index["edgeasr"] == "READY"
    assert index.get("edgeasr_onnx") != "READY"
    assert triton_server.grpc_url.startswith("127.0.0.1:")


def test_metrics_port_exposes_prometheus_metrics(triton_server: TritonServer) -> None:
    with urllib.request.urlopen(triton_server.metrics_url, timeout=5) as resp:
        text = resp.read().decode()
    assert "nv_inference_request_success" in text
    assert 'model="edgeasr"' in text


def test_shm_regions_use_a_private_prefix(triton_server: TritonServer) -> None:
    assert triton_server.shm_files(), "the python backend should have created shared memory"
    assert all(p.name.startswith(triton_server.shm_prefix) for p in triton_server.shm_files())


def test_stop_leaves_no_process_or_shm(triton_server: TritonServer) -> None:
    server = TritonServer(triton_server.model_repository)
    with server:
        pid = server.pid
        assert server.is_running() and server.shm_files()
    assert not server.is_running()
    assert server.shm_files() == []
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_stop_removes_shm_left_by_a_crashed_server(triton_server: TritonServer) -> None:
    server = TritonServer(triton_server.model_repository).start()
    os.killpg(server.pid, signal.SIGKILL)  # server and stubs die without cleaning up
    server.wait(30)
    assert server.shm_files()
    server.stop()
    assert server.shm_files() == []
    assert server.log_path.is_file()  # a failed server's log is kept ...
    shutil.rmtree(server.log_path.parent)  # ... until someone removes it


def test_start_fails_with_log_tail(tmp_path: Path, triton_server: TritonServer) -> None:
    """A tampered model refuses to load (integrity check in model.py); start() says why."""
    repo = tmp_path / "models"
    shutil.copytree(triton_server.model_repository / "edgeasr", repo / "edgeasr")
    (repo / "edgeasr" / "1" / "vocab.json").write_text('["<blank>"]')
    server = TritonServer(repo)
    with pytest.raises(ServerError, match=r"vocab\.json does not match"):
        server.start(timeout_s=60)
    assert not server.is_running() and server.shm_files() == []
    shutil.rmtree(server.log_path.parent)
    with pytest.raises(ServerError, match="no models with backend"):
        TritonServer(tmp_path).start()


def _serve_script(root: Path) -> str:
    """A Python program that runs `edgeasr serve` on ``root`` with free ports (for SIGTERM tests)."""
    return textwrap.dedent(f"""
        import argparse, sys
        from edgeasr.serving.cli import add_parser as add_serve_parser
        parser = argparse.ArgumentParser(prog="edgeasr")
        add_serve_parser(parser.add_subparsers())
        args = parser.parse_args(["serve", "--model-repository", {str(root)!r},
                                  "--grpc-port", "0", "--http-port", "0", "--metrics-port", "0"])
        sys.exit(args.func(args))
    """)


def _until_serving(proc: subprocess.Popen) -> list[str]:
    """The output lines of `edgeasr serve` up to its announcement (it then serves)."""
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if "metrics" in line or ("serve:" in line and "ready" not in line):
            break
    assert any("gRPC" in line for line in lines), "".join(lines)
    return lines


def test_serve_exits_cleanly_on_sigterm(triton_server: TritonServer) -> None:
    script = _serve_script(triton_server.model_repository)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = _until_serving(proc)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, "".join(lines) + out
    assert "stopped (exit code 0)" in out
    assert not list(SHM_DIR.glob(f"triton_python_backend_shm_region_edgeasr{proc.pid}x*"))


def test_a_killed_serve_takes_its_server_with_it(triton_server: TritonServer) -> None:
    """SIGKILL of `edgeasr serve` alone: its tritonserver (a session of its own) and the stubs stop too."""
    script = _serve_script(triton_server.model_repository)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    tree = []
    try:
        _until_serving(proc)
        tree = descendants(proc.pid)
        assert len(tree) >= 2, tree  # tritonserver and at least one stub
        proc.kill()
        proc.wait(timeout=10)
        deadline = time.monotonic() + 60
        while any(running(p) for p in tree) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [p for p in tree if running(p)], "the server outlived the killed `edgeasr serve`"
    finally:
        if proc.poll() is None:
            proc.kill()
        for pid in tree:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def test_a_missing_server_fails_where_triton_is_required(tmp_path: Path) -> None:
    """Under ./run test (EDGEASR_REQUIRE_TRITON=1) a Triton test cannot pass by skipping."""
    tests = Path(__file__).resolve().parent
    (tmp_path / "conftest.py").write_text("from triton_required import pytest_runtest_makereport  # noqa: F401\n")
    (tmp_path / "test_probe.py").write_text(
        "import pytest\n"
        "@pytest.mark.triton\n"
        "def test_probe():\n"
        "    pytest.skip(reason='no bundled Triton server: (simulated)')\n"
        "def test_other_skip():\n"
        "    pytest.skip(reason='espeak-ng is not installed')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tests)}
    base = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "markers=triton: t", str(tmp_path)]
    required = subprocess.run(base, env={**env, "EDGEASR_REQUIRE_TRITON": "1"}, capture_output=True, text=True)
    assert required.returncode == 1 and "1 failed, 1 skipped" in required.stdout, required.stdout
    assert "Triton is required here" in required.stdout
    optional = subprocess.run(
        base, env={k: v for k, v in env.items() if k != "EDGEASR_REQUIRE_TRITON"}, capture_output=True, text=True
    )
    assert optional.returncode == 0 and "2 skipped" in optional.stdout, optional.stdout


def test_a_port_clash_is_retried_and_leaves_no_log_folder(triton_server: TritonServer, monkeypatch) -> None:
    import socket
    import tempfile

    import edgeasr.serving.server as server_module

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    real = server_module._free_ports
    calls = []

    def clashing(bind: str, count: int) -> list[int]:
        calls.append(count)
        if len(calls) == 1:  # the first port handed out is already taken
            return [taken.getsockname()[1], *real(bind, count - 1)]
        if len(calls) == 2:  # then HTTP and gRPC get the same port (what CI once drew)
            first, *rest = real(bind, count - 1)
            return [first, first, *rest]
        return real(bind, count)

    monkeypatch.setattr(server_module, "_free_ports", clashing)
    before = set(Path(tempfile.gettempdir()).glob("edgeasr-triton-*"))
    try:
        server = TritonServer(triton_server.model_repository, http_port=0, metrics_port=0)
        with server:
            assert server.is_running() and len(calls) == 3  # a third set of ports was drawn
    finally:
        taken.close()
    assert set(Path(tempfile.gettempdir()).glob("edgeasr-triton-*")) == before
    ports = server_module._free_ports("127.0.0.1", 3)
    assert len(set(ports)) == 3  # drawn together, never the same port twice


def test_serving_leaves_the_repository_as_published(triton_server: TritonServer) -> None:
    """No __pycache__ in version folders: the python backend's stub ignores PYTHONDONTWRITEBYTECODE."""
    from edgeasr.client import TritonClient
    from edgeasr.modelcard import ModelCard

    TritonClient(triton_server.grpc_url).transcribe(np.zeros(8000, np.float32))
    repo = triton_server.model_repository
    assert sorted(p.relative_to(repo).as_posix() for p in repo.rglob("__pycache__")) == []
    version = repo / "edgeasr" / "1"
    card = ModelCard.from_json(version)
    assert sorted(p.name for p in version.iterdir()) == sorted([*card.files, "model_card.json"])


def test_stale_regions_of_a_killed_server_are_cleared_at_the_next_start(triton_server: TritonServer) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a pid that no longer runs
    stale = SHM_DIR / f"triton_python_backend_shm_region_edgeasr{dead.pid}x1_stale"
    live = SHM_DIR / f"triton_python_backend_shm_region_edgeasr{os.getpid()}x999_live"
    stale.write_bytes(b"x")
    live.write_bytes(b"x")
    try:
        with TritonServer(triton_server.model_repository):
            assert not stale.exists()  # the killed server's region is gone
            assert live.exists()  # a live process's region is not ours to remove
    finally:
        live.unlink(missing_ok=True)
        stale.unlink(missing_ok=True)


def test_serve_refuses_a_public_bind_without_public(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "edgeasr", "serve", "--model-repository", str(tmp_path), "--bind", "0.0.0.0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "--public" in proc.stderr and "authentication" in proc.stderr


def test_model_control_needs_the_admin_token_when_restricted(triton_server: TritonServer) -> None:
    import tritonclient.grpc as grpcclient

    from edgeasr.serving.server import ADMIN_HEADER

    with TritonServer(triton_server.model_repository, restrict_model_control=True) as server:
        load = f"{server.http_url}/v2/repository/models/edgeasr/load"
        with pytest.raises(urllib.error.HTTPError) as info:
            http_json(load, b"{}")
        assert info.value.code in (401, 403)
        request = urllib.request.Request(load, data=b"{}", headers={ADMIN_HEADER: server.admin_token})
        with urllib.request.urlopen(request, timeout=60) as resp:
            assert resp.status == 200
        client = grpcclient.InferenceServerClient(server.grpc_url)
        with pytest.raises(Exception, match=r"(?i)denied|unauthori|restricted|permission"):
            client.unload_model("edgeasr")
        assert client.is_model_ready("edgeasr")  # nothing was unloaded
        assert (
            client.infer("edgeasr", [_audio_input(grpcclient)], outputs=[grpcclient.InferRequestedOutput("TEXT")])
            .as_numpy("TEXT")
            .size
            == 1
        )  # inference stays open


def _audio_input(grpcclient):
    x = np.zeros((1, 8000), np.float32)
    tensor = grpcclient.InferInput("AUDIO", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x)
    return tensor


def test_a_broken_version_does_not_keep_the_good_ones_from_serving(tmp_path: Path, asr_onnx: Path) -> None:
    """Triton loads a model's versions all or nothing; the server serves those that load, and says which did not."""
    from conftest import _published_repo
    from edgeasr.client import TritonClient
    from edgeasr.export.repository import ModelRepository

    root = _published_repo(tmp_path / "models", asr_onnx)
    assert ModelRepository(root).publish("edgeasr", asr_onnx, card_fields={}) == 2
    (root / "edgeasr" / "2" / "model.onnx").write_bytes(b"corrupt")  # the newest version is broken
    with TritonServer(root) as server:
        assert list(server.unavailable) == ["edgeasr"] and list(server.unavailable["edgeasr"]) == [2]
        assert "integrity check failed" in server.unavailable["edgeasr"][2]
        assert TritonClient(server.grpc_url).transcribe(np.zeros(8000, np.float32)).model_version == "1"
    script = _serve_script(root)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if "UNAVAILABLE" in line:
                break
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert any("edgeasr version 2 UNAVAILABLE: " in line and "integrity" in line for line in lines), "".join(lines)
    assert proc.returncode == 3, "".join(lines) + out


def test_versions_side_by_side_then_rollback(triton_server: TritonServer, asr_onnx: Path) -> None:
    """Runs last in this module: publishes version 2 into the served repository."""
    from edgeasr.client import ClientError, TritonClient
    from edgeasr.export.repository import ModelRepository

    repo = ModelRepository(triton_server.model_repository)
    assert repo.publish("edgeasr", asr_onnx, card_fields={}) == 2
    load = f"{triton_server.http_url}/v2/repository/models/edgeasr/load"
    http_json(load, b"{}")
    audio = np.zeros(3200, np.float32)
    for version in ("1", "2", ""):
        result = TritonClient(triton_server.grpc_url, model_version=version).transcribe(audio)
        assert result.model_version == (version or "2")
    set_live(repo, "edgeasr", [1])  # roll back
    http_json(load, b"{}")
    assert TritonClient(triton_server.grpc_url).transcribe(audio).model_version == "1"
    with pytest.raises(ClientError, match="version 2 is not"):
        TritonClient(triton_server.grpc_url, model_version="2", retries=0).transcribe(audio)


def test_a_reload_keeps_serving_and_counting(tmp_path: Path) -> None:
    """A model reloaded while it serves (a version loaded or retired by the canary) keeps answering.

    Every instance registers the same custom metric families; when a replaced instance deleted its
    families, Triton 2.51 freed them under the new instances and crashed (SIGSEGV or heap
    corruption) within about 400 requests, in each of 6 tries. The request metrics still count after it.
    """
    import re
    import threading
    import urllib.request

    import tritonclient.grpc as grpcclient

    from conftest import build_tiny_asr_onnx
    from edgeasr.client import TritonClient
    from edgeasr.export.repository import ModelRepository, RepositoryOptions

    repo = ModelRepository(tmp_path / "repo")
    options = RepositoryOptions(max_batch_size=8, warmup_seconds=0.0)
    for seed in (0, 1):
        repo.publish("edgeasr", build_tiny_asr_onnx(tmp_path / f"m{seed}.onnx", seed=seed), options=options)
    audio = np.random.default_rng(0).normal(0, 0.05, 32000).astype(np.float32)

    def count(server: TritonServer, version: str) -> int:
        with urllib.request.urlopen(server.metrics_url, timeout=5) as resp:
            text = resp.read().decode()
        found = re.search(rf'edgeasr_request_audio_seconds_count{{model="edgeasr",version="{version}"}} (\d+)', text)
        return int(found.group(1)) if found else 0

    with TritonServer(repo.root, models=["edgeasr"]) as server:
        failures: list[str] = []

        def user(version: str) -> None:
            client = TritonClient(server.grpc_url, "edgeasr", version, timeout_s=5.0, retries=0)
            for _ in range(100):
                try:
                    client.transcribe(audio)
                except Exception as exc:
                    failures.append(str(exc))
                    return

        for _ in range(3):  # each reload: new instances replace the old ones, which are then unloaded
            grpcclient.InferenceServerClient(server.grpc_url).load_model("edgeasr")
            threads = [threading.Thread(target=user, args=(v,)) for v in ("1", "2", "1", "2")]
            [t.start() for t in threads]
            [t.join(timeout=120) for t in threads]
            assert not failures, failures[:2]
        assert server.is_running() and "Signal (" not in server.log_path.read_text(errors="replace")
        assert count(server, "1") >= 200 and count(server, "2") >= 200
