"""``edgeasr bench``: the budget gate, the outputs, open loop, Triton statistics, the side-by-side suite.

Every test measures a real model (the tiny one trained by the pipeline fixtures, or the serving
tests' stand-in) and asserts what was measured and reported, never how fast: speed goals live in
``bench/budgets.toml``.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from edgeasr.bench.runner import BenchOptions, TritonBackend, Utterance, run_bench
from edgeasr.cli import main

ROOT = Path(__file__).resolve().parents[1]
PERF_ANALYZER_COLUMNS = [
    "Concurrency",
    "Inferences/Second",
    "Server Queue",
    "Server Compute Input",
    "Server Compute Infer",
    "Server Compute Output",
    "p50 latency",
    "p90 latency",
    "p95 latency",
    "p99 latency",
    "Avg latency",
]


@pytest.fixture(scope="module")
def manifest(tiny_corpus: Path) -> str:
    return str(tiny_corpus / "test.jsonl")


@pytest.fixture(scope="module")
def model(tiny_repository: Path) -> str:
    return str(tiny_repository / "edgeasr")


def _bench(capsys, *args: str) -> tuple[int, str]:
    code = main(["bench", "--quiet", *args])
    return code, capsys.readouterr().out


def _budgets(tmp_path: Path, body: str) -> str:
    path = tmp_path / "budgets.toml"
    path.write_text(f"[targets.x]\n{body}\n")
    return str(path)


def test_gate_fails_on_a_tightened_budget_and_says_by_how_much(capsys, tmp_path, manifest, model) -> None:
    tight = _budgets(tmp_path, "max_wer = 2.0\nmin_speed_x_realtime = 1e9\nmax_model_mb = 1e-6")
    code, out = _bench(
        capsys, "--manifest", manifest, "--model", model, "--concurrency", "1", "--budgets", tight, "--target", "x"
    )
    assert code == 1, out
    table = out[out.index("budget x: MISSED") :].splitlines()
    speed = next(line for line in table if "min_speed_x_realtime" in line)
    assert speed.split()[0] == "MISS" and "-100%" in speed  # measured far below 1e9
    assert next(line for line in table if "max_model_mb" in line).split()[0] == "MISS"
    assert next(line for line in table if "max_wer" in line).split()[0] == "ok"


def test_gate_passes_on_a_loose_budget(capsys, tmp_path, manifest, model) -> None:
    loose = _budgets(tmp_path, "max_wer = 2.0\nmin_speed_x_realtime = 0.001\nmax_memory_mb = 1e6\nmax_model_mb = 1e3")
    code, out = _bench(
        capsys, "--manifest", manifest, "--model", model, "--concurrency", "1", "--budgets", loose, "--target", "x"
    )
    assert code == 0, out
    assert "budget x: pass" in out and "MISS" not in out


def test_an_unmeasured_limit_fails_the_gate(capsys, tmp_path, manifest, model) -> None:
    budgets = _budgets(tmp_path, "min_batching_gain = 1.0")  # a suite-only measurement
    code, out = _bench(
        capsys, "--manifest", manifest, "--model", model, "--concurrency", "1", "--budgets", budgets, "--target", "x"
    )
    assert code == 1
    assert "not measured" in out


def test_unknown_limit_name_is_a_usage_error(capsys, tmp_path, manifest, model) -> None:
    budgets = _budgets(tmp_path, "max_wer = 0.5\nmax_latency = 3")
    code, out = _bench(capsys, "--manifest", manifest, "--model", model, "--budgets", budgets, "--target", "x")
    assert code == 2
    assert "max_latency" in out


def test_outputs_and_open_loop(capsys, tmp_path, tiny_corpus, model) -> None:
    out_dir = tmp_path / "out"
    code, out = _bench(
        capsys,
        "--manifest",
        f"test={tiny_corpus / 'test.jsonl'}",
        "--manifest",
        f"dev={tiny_corpus / 'dev.jsonl'}",
        "--model",
        model,
        "--concurrency",
        "1,2",
        "--rate",
        "50",
        "--out",
        str(out_dir),
    )
    assert code == 0
    assert "per split: dev WER" in out and "p99" in out
    result = json.loads((out_dir / "results.json").read_text())
    modes = [(lv["mode"], lv["concurrency"]) for lv in result["levels"]]
    assert modes[:2] == [("closed", 1), ("closed", 2)] and modes[2][0] == "open"
    open_level = result["levels"][2]
    assert open_level["offered_rate"] == 50 and open_level["requests"] + open_level["errors"] > 0
    s = result["summary"]
    assert set(s["splits"]) == {"dev", "test"} and s["wer"] >= 0 and s["peak_memory_mb"] > 0 and s["model_mb"] > 0
    assert all(lv["p50_ms"] <= lv["p90_ms"] <= lv["p95_ms"] <= lv["p99_ms"] for lv in result["levels"])
    assert "latencies_ms" not in result["levels"][0]
    assert result["machine"]["cpus"] >= 1
    with open(out_dir / "results.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0])[: len(PERF_ANALYZER_COLUMNS)] == PERF_ANALYZER_COLUMNS
    assert [r["Mode"] for r in rows] == ["closed", "closed", "open"]
    assert int(rows[0]["p99 latency"]) >= int(rows[0]["p50 latency"]) > 0  # microseconds
    for png in ("latency.png", "throughput.png", "wer_per_split.png"):
        assert (out_dir / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.triton
def test_triton_reports_batch_histogram_and_queue_compute_split(triton_server, speechlike) -> None:
    workload = [Utterance(w, "", f"w{i}", "synthetic") for i, w in enumerate(speechlike * 4)]
    backend = TritonBackend(triton_server.grpc_url)
    result = run_bench(backend, workload, BenchOptions(concurrency=(1, 8), rate=40.0, warmup=2), progress=False)
    for level in result["levels"]:
        server = level["server"]
        hist = server["batch_size_histogram"]
        assert sum(size * n for size, n in hist.items()) == level["requests"] == len(workload)
        assert server["executions"] == sum(hist.values())
        assert server["success"] == len(workload)
        assert server["queue_ms_per_request"] >= 0 and server["compute_infer_ms_per_request"] > 0
        assert server["compute_ms_per_request"] >= server["compute_infer_ms_per_request"]
    assert list(result["levels"][0]["server"]["batch_size_histogram"]) == [1]  # one in flight: no batching
    assert result["levels"][2]["mode"] == "open"


@pytest.mark.triton
def test_bench_cli_through_triton(capsys, triton_server, tmp_path, speechlike) -> None:
    import soundfile as sf

    rows = []
    for i, w in enumerate(speechlike[:4]):
        sf.write(tmp_path / f"{i}.wav", w, 16000)
        rows.append(json.dumps({"audio_filepath": f"{i}.wav", "text": "hello world", "duration": w.size / 16000}))
    (tmp_path / "m.jsonl").write_text("\n".join(rows) + "\n")
    code, out = _bench(
        capsys,
        "--manifest",
        str(tmp_path / "m.jsonl"),
        "--url",
        triton_server.grpc_url,
        "--concurrency",
        "1,4",
        "--out",
        str(tmp_path / "out"),
    )
    assert code == 0
    assert "WER" in out and "batch sizes" in out
    level = json.loads((tmp_path / "out" / "results.json").read_text())["levels"][1]
    assert level["server"]["batch_size_histogram"]


@pytest.fixture(scope="module")
def two_precision_repository(
    tiny_repository: Path, tiny_checkpoint: Path, tiny_corpus: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A copy of the tiny repository with an int8 export as version 2 beside fp32 version 1."""
    from edgeasr.export.pipeline import export_checkpoint
    from edgeasr.export.target import ExportTarget

    repo = tmp_path_factory.mktemp("two_precisions") / "triton_models"
    shutil.copytree(tiny_repository, repo)
    target = replace(ExportTarget(), name="cpu-int8", precision="int8", max_wer_increase=1.0)
    export_checkpoint(tiny_checkpoint, target, check_manifest=tiny_corpus / "dev.jsonl", repository=repo)
    return repo


def test_stage_repository_serves_one_version_with_and_without_batching(two_precision_repository, tmp_path) -> None:
    from edgeasr.bench.suite import find_precision_versions, stage_repository

    assert find_precision_versions(two_precision_repository, "edgeasr") == {"fp32": 1, "int8": 2}
    names = stage_repository(two_precision_repository, "edgeasr", 2, tmp_path)
    assert names == ["edgeasr", "edgeasr_nobatch"]
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    on, off = (
        text_format.Parse((tmp_path / n / "config.pbtxt").read_text(), model_config_pb2.ModelConfig()) for n in names
    )
    assert on.HasField("dynamic_batching") and not off.HasField("dynamic_batching")
    assert (on.name, off.name) == ("edgeasr", "edgeasr_nobatch")
    on.ClearField("dynamic_batching")
    on.name = "edgeasr_nobatch"
    assert on == off  # the same config but for the batcher
    assert sorted(p.name for p in (tmp_path / "edgeasr_nobatch").iterdir()) == ["2", "config.pbtxt"]


@pytest.mark.triton
def test_suite_end_to_end(capsys, tmp_path, two_precision_repository, tiny_corpus) -> None:
    from edgeasr.serving.server import ServerError, find_tritonserver

    try:
        find_tritonserver()
    except ServerError as exc:
        pytest.skip(f"no bundled Triton server: {exc}")
    budgets = tmp_path / "budgets.toml"
    text = (ROOT / "bench" / "budgets.toml").read_text()
    budgets.write_text(text + '\n[targets.loose]\nsource = "triton"\nmax_wer = 2.0\nmin_batching_gain = 0.001\n')
    out_dir = tmp_path / "results"
    code, out = _bench(
        capsys,
        "--suite",
        "--manifest",
        f"test={tiny_corpus / 'test.jsonl'}",
        "--manifest",
        f"dev={tiny_corpus / 'dev.jsonl'}",
        "--model-repository",
        str(two_precision_repository),
        "--concurrency",
        "1,8",
        "--rate",
        "40",
        "--ab-rounds",
        "2",
        "--heldout",
        f"heldout={tiny_corpus / 'dev.jsonl'}",
        "--cold-start-runs",
        "1",
        "--cold-start-audio",
        str(ROOT / "samples" / "01-flite-rms.wav"),
        "--budgets",
        str(budgets),
        "--out",
        str(out_dir),
    )
    result = json.loads((out_dir / "results.json").read_text())
    assert set(result["runs"]) == {"device-fp32", "device-int8", "device-heldout", "triton", "triton-nobatch"}
    heldout = result["runs"]["device-heldout"]
    assert set(heldout["summary"]["splits"]) == {"heldout"} and heldout["summary"]["speed_x_realtime"] > 0
    assert [lv["concurrency"] for lv in heldout["levels"]] == [1]
    int8 = result["runs"]["device-int8"]["summary"]
    assert 0 < int8["cold_start_s"] < int8["cold_start_command_s"]  # the command also starts an interpreter
    assert "cold start (" in out
    assert result["served"]["version"] == 2 and result["served"]["precision"] == "int8"
    ratios = result["ratios"]
    for key in ("int8_wer_increase", "int8_speedup", "triton_over_device_p50", "batching_gain", "batching_gain_sweep"):
        assert np.isfinite(ratios[key]), key
    assert len(result["batching_ab"]["rounds"]) == 2
    # Triton serves the int8 version: its transcripts, and so its WER, equal the on-device int8 ones
    assert result["runs"]["triton"]["summary"]["wer"] == result["runs"]["device-int8"]["summary"]["wer"]
    assert result["runs"]["triton"]["levels"][-1]["mode"] == "open"
    assert result["runs"]["device-int8"]["summary"]["peak_memory_mb"] > 0
    reports = {r["target"]: r for r in result["budgets"]}
    assert set(reports) == {"device-cpu-int8", "triton-cpu", "device-heldout", "triton-gpu", "loose"}
    checked = {c["limit_name"] for c in reports["device-cpu-int8"]["checks"]}
    assert {"max_cold_start_s", "max_cold_start_command_s"} <= checked and not reports["device-heldout"]["skipped"]
    assert reports["triton-gpu"]["skipped"] and "SKIPPED" in out
    assert reports["loose"]["passed"]
    missed = [r for r in reports.values() if not r["skipped"] and not r["passed"]]
    assert code == (1 if missed else 0)
    assert "side by side" in out and "batching_gain" in out
    for name in ("results.csv", "report.txt", "latency.png", "throughput.png", "wer_per_split.png"):
        assert (out_dir / name).stat().st_size > 0
    with open(out_dir / "results.csv", newline="") as fh:
        backends = {row["Backend"] for row in csv.DictReader(fh)}
    assert backends == set(result["runs"])


def test_a_suite_with_no_cold_start_audio_or_no_model_says_so_and_measures_nothing(capsys, tmp_path) -> None:
    manifest = f"test={ROOT / 'samples' / 'manifest.jsonl'}"
    missing = tmp_path / "missing.wav"
    out_dir = tmp_path / "results"
    args = ["--suite", "--manifest", manifest, "--cold-start-audio", str(missing), "--out", str(out_dir)]
    code, out = _bench(capsys, *args)
    assert code == 2 and f"--cold-start-audio {missing}: no such file" in out and not out_dir.exists()
    code, out = _bench(capsys, "--suite", "--manifest", manifest, "--model-repository", str(tmp_path))
    assert code == 2 and "edgeasr bench:" in out and str(tmp_path) in out


SHIPPED_MODEL = ROOT / "triton_models" / "edgeasr"
SAMPLES = ROOT / "samples" / "manifest.jsonl"


@pytest.mark.skipif(
    not (SHIPPED_MODEL.is_dir() and SAMPLES.is_file()),
    reason="the shipped default model (triton_models/edgeasr) and samples/manifest.jsonl are not committed yet",
)
def test_ci_budget_on_the_shipped_default_model() -> None:
    # a process of its own, so that peak memory is the bench's, not this test session's
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "edgeasr",
            "bench",
            "--quiet",
            "--manifest",
            str(SAMPLES),
            "--model",
            str(SHIPPED_MODEL),
            "--concurrency",
            "1",
            "--budgets",
            str(ROOT / "bench" / "budgets.toml"),
            "--target",
            "ci-device",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "budget ci-device: pass" in proc.stdout


def test_native_flavour_client_sends_the_onnx_contract_and_decodes(reference_text, asr_onnx, speechlike) -> None:
    """The GPU path's client (edgeasr_onnx/edgeasr_trt on NVIDIA's image), against onnxruntime in a fake client."""
    import onnxruntime as ort

    from edgeasr.bench.runner import NativeTritonBackend

    session = ort.InferenceSession(str(asr_onnx), providers=["CPUExecutionProvider"])
    seen = []

    class FakeResult:
        def __init__(self, outputs: dict) -> None:
            self.outputs = outputs

        def as_numpy(self, name: str) -> np.ndarray:
            return self.outputs[name]

    class FakeClient:
        def infer(self, model_name, inputs, model_version="", client_timeout=None):
            assert client_timeout == 30.0  # every call has a deadline
            feeds = {i.name(): i for i in inputs}
            seen.append((model_name, {k: (v.datatype(), v.shape()) for k, v in feeds.items()}))
            audio = np.frombuffer(feeds["audio"]._get_content(), np.float32).reshape(feeds["audio"].shape())
            length = np.frombuffer(feeds["audio_length"]._get_content(), np.int64).reshape(-1)
            logp, frames = session.run(None, {"audio": audio, "audio_length": length})
            return FakeResult({"logprobs": logp, "logprob_length": frames.reshape(-1, 1)})

    backend = NativeTritonBackend("gpu-host:8001", "edgeasr_onnx")
    wave = speechlike[3]
    from edgeasr.decoding import greedy_decode

    # a native flavour takes the audio as sent: its client brings it to the training level first, as the
    # python flavour does (no room tone here: no version folder says the model asks for one)
    from edgeasr.features import model_input

    sent = model_input(wave)
    assert not np.allclose(sent[: min(sent.size, wave.size)], wave[: min(sent.size, wave.size)])
    logp, frames = session.run(None, {"audio": sent[None, :], "audio_length": np.array([sent.size])})
    expected = greedy_decode(logp[0, : int(frames[0])]).text
    assert expected and backend._call(FakeClient(), wave) == expected
    name, shapes = seen[0]
    assert name == "edgeasr_onnx"
    assert shapes == {"audio": ("FP32", [1, sent.size]), "audio_length": ("INT64", [1, 1])}


def test_native_flavour_is_decoded_with_the_shipped_beam_search() -> None:
    """The GPU path scores with the champion's beam search and prepares the audio as on device (room tone included)."""
    import onnxruntime as ort

    from edgeasr.audio import load_audio
    from edgeasr.bench.runner import NativeTritonBackend, champion_decoder_dir
    from edgeasr.decoding import greedy_decode
    from edgeasr.recognizer import Recognizer

    folder = champion_decoder_dir(ROOT / "triton_models")
    if folder is None:
        pytest.skip(reason="no shipped model with a beam search in triton_models/")
    assert folder == ROOT / "triton_models" / "edgeasr" / "31"  # the champion of live.json
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])

    class Result:
        def __init__(self, outputs: dict) -> None:
            self.outputs = outputs

        def as_numpy(self, name: str) -> np.ndarray:
            return self.outputs[name]

    class NativeServer:  # what edgeasr_onnx answers: log-probabilities of the audio as sent
        def infer(self, model_name, inputs, model_version="", client_timeout=None):
            feeds = {i.name(): i for i in inputs}
            audio = np.frombuffer(feeds["audio"]._get_content(), np.float32).reshape(feeds["audio"].shape())
            logp, frames = session.run(None, {"audio": audio, "audio_length": np.array([audio.shape[1]])})
            return Result({"logprobs": logp, "logprob_length": frames.reshape(-1, 1)})

    wave = load_audio(str(ROOT / "samples" / "01-flite-rms.wav"))
    beam = NativeTritonBackend("gpu-host:8001", "edgeasr_onnx", decoder_dir=folder)
    greedy = NativeTritonBackend("gpu-host:8001", "edgeasr_onnx")
    assert beam._call(NativeServer(), wave) == "is it windy in cincinnati right now"
    assert beam.pad_seconds == 0.15 and greedy.pad_seconds == 0.0  # the champion asks for room; no folder, none
    device = greedy_decode(Recognizer(folder).logprobs(wave, 16000)).text
    assert NativeTritonBackend("gpu-host:8001", "edgeasr_onnx", decoder_dir=folder).pad_seconds == 0.15
    with_room = beam.decoder
    beam.decoder = None  # the same client, greedy: what the device's frames say
    assert beam._call(NativeServer(), wave) == device != greedy._call(NativeServer(), wave)
    beam.decoder = with_room


def test_peak_memory_is_the_process_own_not_its_parents() -> None:
    """A child started by a process that grew to ~400 MiB reports its own peak, not the parent's."""
    code = (
        "import subprocess, sys, numpy as np\n"
        "big = np.ones(400 * 2**20 // 8)\n"
        "child = 'from edgeasr.bench.runner import peak_memory_mb; print(peak_memory_mb())'\n"
        "print(subprocess.run([sys.executable, '-c', child], capture_output=True, text=True, check=True).stdout)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert 5 < float(out) < 300, out


def test_failed_requests_keep_their_messages() -> None:
    """A bench loop counts a failure with its message; the report prints it."""
    from edgeasr.bench.runner import Utterance, closed_loop, open_loop

    class Flaky:
        def prepare(self, workers: int) -> None:
            pass

        def statistics(self) -> dict:
            return {}

        def transcribe(self, audio: np.ndarray) -> str:
            if audio.size % 2:
                raise ValueError(f"odd request of {audio.size} samples")
            return "ok"

    work = [Utterance(np.zeros(1600 + i, np.float32), "ok", f"u{i}.wav") for i in range(6)]
    level, texts = closed_loop(Flaky(), work, 2)
    assert level.errors == 3 and texts.count("ok") == 3
    assert level.error_messages == {
        "ValueError: odd request of 1601 samples": 1,
        "ValueError: odd request of 1603 samples": 1,
        "ValueError: odd request of 1605 samples": 1,
    }
    assert open_loop(Flaky(), work, 50.0, seed=0).error_messages == level.error_messages


def test_a_server_that_dies_mid_run_stops_the_bench_with_its_partial_results() -> None:
    from edgeasr.bench.runner import BenchOptions, Utterance, run_bench

    class Dying:
        kind, model_mb, description = "triton", None, "a server that dies after 10 answers"

        def __init__(self) -> None:
            self.calls = 0

        def prepare(self, workers: int) -> None:
            pass

        def statistics(self) -> dict:
            if self.calls > 12:
                raise ConnectionError("server gone")
            return {}

        def transcribe(self, audio: np.ndarray) -> str:
            self.calls += 1
            if self.calls > 12:  # 2 warm-up requests, then 10 answers
                raise ConnectionError("failed to connect to all addresses")
            return "ok"

    work = [Utterance(np.zeros(1600, np.float32), "ok", f"u{i}.wav") for i in range(100)]
    backend = Dying()
    result = run_bench(backend, work, BenchOptions(concurrency=(1, 4), warmup=2, max_consecutive_errors=5), False)
    assert result["aborted"].startswith("5 requests in a row failed; the last: ConnectionError: failed to connect")
    level = result["levels"][0]
    assert (level["requests"], level["errors"], level["skipped"]) == (10, 5, 85)
    assert len(result["levels"]) == 1  # the next level was never started
    assert backend.calls == 2 + 10 + 5  # nothing sent after the stop


def test_bench_against_no_server_is_one_line_and_exit_1(tmp_path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "edgeasr", "bench", "--manifest", str(SAMPLES), "--url", "127.0.0.1:9", "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr, proc.stderr


def test_the_tail_ratio_of_similar_lengths_separates_length_from_jitter() -> None:
    """Issue 18: p99/p50 over every utterance mixes in their lengths; the similar-length band does not."""
    from edgeasr.bench.runner import LevelResult, _summarize

    rng = np.random.default_rng(0)
    durations = list(np.clip(rng.lognormal(np.log(2.0), 0.6, 400), 0.3, 15.0))  # a few long ones
    steady = [10.0 * d + rng.uniform(0, 1) for d in durations]  # cost in proportion to length, no tail
    level = _summarize(
        LevelResult("closed", 1, 400, 0, 1.0, sum(durations), latencies_ms=steady, durations_s=durations)
    )
    assert level.p99_ms / level.p50_ms > 2.0  # lengths alone make a "tail"
    assert level.p99_over_p50_similar < 1.3 and level.similar_requests > 50
    assert 10.0 < level.ms_per_audio_s_p50 < 11.5
    stalls = [x * (5.0 if i % 20 == 0 else 1.0) for i, x in enumerate(steady)]  # one request in 20 stalls
    level = _summarize(
        LevelResult("closed", 1, 400, 0, 1.0, sum(durations), latencies_ms=stalls, durations_s=durations)
    )
    assert level.p99_over_p50_similar > 3.0
