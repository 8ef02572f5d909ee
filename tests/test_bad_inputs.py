"""A corpus of bad and unusual inputs, generated here, through all four paths: the Python API, the
command line on device, TritonClient, and the command line through Triton. Each kind has one
expected outcome (transcribed, or refused with a message naming the file and saying why); the one
kind whose outcome depends on the path is audio longer than the server's limit, which the device
decodes in windows and Triton refuses (INVALID_ARGUMENT, and the server keeps serving)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytestmark = pytest.mark.triton

ROOT = Path(__file__).resolve().parents[1]
SPEECH = ROOT / "samples" / "01-flite-rms.wav"


def _speech(rate: int = 16000) -> np.ndarray:
    from edgeasr.audio import load_audio, resample

    return resample(load_audio(SPEECH), 16000, rate) if rate != 16000 else load_audio(SPEECH)


def _write(folder: Path) -> dict[str, tuple[Path, str]]:
    """kind -> (file, expected): "ok", "ok on device" (refused by Triton) or a refusal's message."""
    x = _speech()
    cases: dict[str, tuple[str, object, str]] = {}
    out: dict[str, tuple[Path, str]] = {}

    def audio(kind: str, data: np.ndarray, rate: int, expected: str, **kw) -> None:
        path = folder / f"{kind.replace(' ', '_')}.{kw.pop('ext', 'wav')}"
        sf.write(path, data, rate, **kw)
        out[kind] = (path, expected)

    def raw(kind: str, data: bytes, expected: str, ext: str = "wav") -> None:
        path = folder / f"{kind.replace(' ', '_')}.{ext}"
        path.write_bytes(data)
        out[kind] = (path, expected)

    audio("8 kHz", _speech(8000), 8000, "ok")
    audio("44.1 kHz", _speech(44100), 44100, "ok")
    audio("48 kHz", _speech(48000), 48000, "ok")
    audio("stereo", np.stack([x, x], axis=1), 16000, "ok")
    audio("24-bit", x, 16000, "ok", subtype="PCM_24")
    audio("float", x, 16000, "ok", subtype="FLOAT")
    audio("flac", x, 16000, "ok", ext="flac")
    audio("ogg", x, 16000, "ok", ext="ogg", format="OGG", subtype="VORBIS")
    audio("31 s", np.tile(x, 12)[: 31 * 16000], 16000, "ok on device")
    audio("nan", np.full(16000, np.nan, np.float32), 16000, "NaN or Inf", subtype="FLOAT")
    audio("inf", np.full(16000, np.inf, np.float32), 16000, "NaN or Inf", subtype="FLOAT")
    audio("one sample", x[:1], 16000, "shorter than 50 ms")
    whole = SPEECH.read_bytes()
    raw("empty file", b"", "not a readable audio file")
    raw("header only", whole[:44], "truncated WAV file")
    raw("truncated", whole[: len(whole) // 10], "truncated WAV file")
    raw("random bytes", np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes(), "not a readable")
    raw("text", b"this is not audio\n", "not a readable audio file", ext="txt")
    del cases
    return out


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str]]:
    return _write(tmp_path_factory.mktemp("bad_inputs"))


def _outcome(run) -> str:
    try:
        text = run()
    except Exception as exc:
        return f"refused: {exc}"
    return "ok" if text else "ok (no words)"


def _check(kind: str, expected: str, got: str, path_name: str, via_triton: bool) -> None:
    if expected == "ok" or (expected == "ok on device" and not via_triton):
        assert got.startswith("ok"), f"{kind} via {path_name}: {got}"
    elif expected == "ok on device":
        assert got.startswith("refused") and "longer than the 30 s maximum" in got, f"{kind} via {path_name}: {got}"
    else:
        assert got.startswith("refused") and expected in got, f"{kind} via {path_name}: {got}"


def test_every_kind_has_one_outcome_on_the_python_paths(corpus, triton_server) -> None:
    from edgeasr.client import TritonClient
    from edgeasr.recognizer import Recognizer

    rec = Recognizer(triton_server.model_repository / "edgeasr")
    client = TritonClient(triton_server.grpc_url)
    for kind, (path, expected) in corpus.items():
        _check(kind, expected, _outcome(lambda p=path: rec.transcribe(p).text or "-"), "Recognizer", False)
        _check(kind, expected, _outcome(lambda p=path: client.transcribe_file(p).text or "-"), "TritonClient", True)
    assert client.transcribe_file(SPEECH).model_version == "1"  # the server kept serving through all of it


@pytest.mark.parametrize("via_triton", [False, True])
def test_every_kind_has_one_outcome_on_the_command_line(corpus, triton_server, via_triton: bool) -> None:
    files = [str(path) for path, _ in corpus.values()]
    where = (
        ["--url", triton_server.grpc_url]
        if via_triton
        else ["--model", str(triton_server.model_repository / "edgeasr")]
    )
    proc = subprocess.run(
        [sys.executable, "-m", "edgeasr", "transcribe", "--json", *where, *files],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr  # some refused, none crashed
    done = {json.loads(line)["audio"] for line in proc.stdout.splitlines()}
    errors = [line for line in proc.stderr.splitlines() if line.startswith("edgeasr transcribe:")]
    for kind, (path, expected) in corpus.items():
        mine = [e for e in errors if str(path) in e]
        got = "ok" if str(path) in done else f"refused: {mine[0] if mine else '(no message naming the file)'}"
        _check(kind, expected, got, "the command line" + (" through Triton" if via_triton else ""), via_triton)
