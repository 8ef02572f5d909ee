"""Recovery times of `edgeasr serve` (issue 17): after a refused request, and after SIGKILL of the whole server tree.

python bench/recovery.py --out bench/results/recovery-cpu-2core-epyc/recovery
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
from _results import write_results  # bench/_results.py (scripts run as python bench/NAME.py)

from edgeasr.audio import load_audio
from edgeasr.client import ClientError, TritonClient
from edgeasr.serving.server import SHM_DIR, SHM_PREFIX


def _shm_files() -> set[str]:
    """Shared-memory regions of edgeasr's servers now in /dev/shm."""
    if not SHM_DIR.is_dir():
        return set()
    return {p.name for p in SHM_DIR.iterdir() if p.name.startswith(SHM_PREFIX + "edgeasr")}


def _tree(pid: int) -> list[int]:
    """``pid`` and every process below it (tritonserver runs in a session of its own)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        tree.append(todo.pop())
        todo.extend(children.get(tree[-1], []))
    return tree


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(repository: str) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    command = [sys.executable, "-m", "edgeasr", "serve", "--model-repository", repository, "--grpc-port", str(port),
               "--http-port", str(_free_port()), "--metrics-port", str(_free_port())]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    return proc, f"127.0.0.1:{port}"


def _first_answer(url: str, audio: np.ndarray, timeout_s: float = 120.0) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            return TritonClient(url, timeout_s=5.0, retries=0).transcribe(audio).text
        except ClientError:
            time.sleep(0.05)
    raise TimeoutError(f"no answer from {url} within {timeout_s} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repository", default="triton_models")
    parser.add_argument("--audio", default="samples/01-flite-rms.wav")
    parser.add_argument("--out", required=True, help="output stem: writes .json and .txt")
    args = parser.parse_args()
    audio = load_audio(args.audio)
    rows = []
    proc, url = _serve(args.repository)
    started = time.perf_counter()
    text = _first_answer(url, audio)
    rows.append({"event": "start", "seconds_to_first_answer": round(time.perf_counter() - started, 3), "text": text})
    client = TritonClient(url, timeout_s=5.0, retries=0)
    bad = np.full(16000, np.nan, np.float32)
    refused = ""
    try:
        client.transcribe(bad)
    except Exception as exc:  # the refusal is what the client checks before sending: send it raw
        refused = str(exc)
    import tritonclient.grpc as grpcclient

    raw = grpcclient.InferInput("AUDIO", [1, bad.size], "FP32")
    raw.set_data_from_numpy(bad[None])
    rate = grpcclient.InferInput("SAMPLE_RATE", [1, 1], "INT32")
    rate.set_data_from_numpy(np.array([[16000]], np.int32))
    try:
        grpcclient.InferenceServerClient(url).infer("edgeasr", [raw, rate])
    except Exception as exc:
        refused = f"{refused} | server: {str(exc)[:120]}"
    started = time.perf_counter()
    text = client.transcribe(audio).text
    rows.append({"event": "a NaN request refused", "refusal": refused,
                 "seconds_to_next_answer": round(time.perf_counter() - started, 3), "text": text})  # fmt: skip
    tree = _tree(proc.pid)  # serve, tritonserver, the python stubs
    for pid in tree:
        os.kill(pid, signal.SIGKILL)
    proc.wait()
    stale = _shm_files()
    proc, url = _serve(args.repository)
    started = time.perf_counter()
    text = _first_answer(url, audio)
    left = _shm_files()
    rows.append({"event": f"SIGKILL of the whole tree ({len(tree)} processes), then edgeasr serve again",
                 "stale_shm_regions_after_kill": len(stale), "of_them_left_after_restart": len(stale & left),
                 "seconds_to_first_answer": round(time.perf_counter() - started, 3), "text": text})  # fmt: skip
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)
    lines = [f"{r['event']}: " + ", ".join(f"{k} {v}" for k, v in r.items() if k != "event") for r in rows]
    write_results(args.out, vars(args), rows, lines)


if __name__ == "__main__":
    main()
