"""Soak (slow): `edgeasr serve` with the shipped model under concurrency 16 for 5 minutes.

Held to: no errors; resident memory of the whole server tree (the serve process, tritonserver, the
python-backend stubs) grows less than 10% from the end of the warm-up to the end; p99 latency of
the last minute within 20% of the first minute's. ``EDGEASR_SOAK_SECONDS`` shortens or lengthens
it; ``EDGEASR_SOAK_OUT`` names a folder for ``soak.json`` (the committed run is in
``bench/results/soak-cpu-2core-epyc/``).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.triton]

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tree_rss_mb(root_pid: int) -> float:
    """Resident memory of a process and all its descendants (MiB), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    total, todo = 0.0, [root_pid]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            pass
    return total


def test_soak_at_concurrency_16(tmp_path: Path) -> None:
    from edgeasr.client import TritonClient
    from edgeasr.manifest import load_row_audio, read_manifest

    seconds = float(os.environ.get("EDGEASR_SOAK_SECONDS", "300"))
    manifest = ROOT / "samples" / "manifest.jsonl"
    waves = [load_row_audio(r, manifest) for r in read_manifest(manifest)]
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgeasr", "serve", "--model-repository", str(ROOT / "triton_models"),
         "--grpc-port", str(port), "--http-port", str(_free_port()), "--metrics-port", str(_free_port())],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        for line in proc.stdout:
            if "metrics" in line:
                break
        url = f"127.0.0.1:{port}"
        records: list[tuple[float, float, str]] = []  # (time, latency, error)
        lock = threading.Lock()
        stop = threading.Event()

        def worker(k: int) -> None:
            client = TritonClient(url, timeout_s=30)
            i = k
            while not stop.is_set():
                started = time.perf_counter()
                try:
                    client.transcribe(waves[i % len(waves)])
                    error = ""
                except Exception as exc:
                    error = str(exc)
                with lock:
                    records.append((time.monotonic(), time.perf_counter() - started, error))
                i += 16

        threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(16)]
        begin = time.monotonic()
        for t in threads:
            t.start()
        time.sleep(min(30.0, seconds / 5))  # warm-up
        memory_start = _tree_rss_mb(proc.pid)
        warm = time.monotonic()
        samples = [(time.monotonic() - begin, memory_start)]
        while time.monotonic() - warm < seconds:
            time.sleep(5)
            samples.append((time.monotonic() - begin, _tree_rss_mb(proc.pid)))
        stop.set()
        for t in threads:
            t.join(60)
        memory_end = _tree_rss_mb(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    measured = [r for r in records if r[0] >= warm]
    window = min(60.0, seconds / 4)
    first = [r[1] for r in measured if r[0] < warm + window]
    last = [r[1] for r in measured if r[0] >= warm + seconds - window]
    errors = [r[2] for r in measured if r[2]]
    result = {
        "seconds": seconds,
        "concurrency": 16,
        "requests": len(measured),
        "errors": len(errors),
        "error_examples": sorted(set(errors))[:5],
        "memory_mb_after_warmup": round(memory_start, 1),
        "memory_mb_end": round(memory_end, 1),
        "memory_growth": round(memory_end / memory_start - 1, 4),
        "p99_ms_first_window": round(1000 * float(np.percentile(first, 99)), 1),
        "p99_ms_last_window": round(1000 * float(np.percentile(last, 99)), 1),
        "window_s": window,
        "memory_samples": [[round(t, 1), round(m, 1)] for t, m in samples],
    }
    result["p99_change"] = round(result["p99_ms_last_window"] / result["p99_ms_first_window"] - 1, 4)
    print(json.dumps(result, indent=2))
    if os.environ.get("EDGEASR_SOAK_OUT"):
        out = Path(os.environ["EDGEASR_SOAK_OUT"])
        out.mkdir(parents=True, exist_ok=True)
        (out / "soak.json").write_text(json.dumps(result, indent=2) + "\n")
    assert result["requests"] > 100 and result["errors"] == 0, result["error_examples"]
    assert result["memory_growth"] < 0.10
    assert result["p99_change"] < 0.20
