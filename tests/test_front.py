"""The routing front of `edgeasr serve` on a real Triton server: the champion answers every client
that names no version, publishing never changes who is live, a rollback survives the next export."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient

from edgeasr.canary.versions import live_policy, set_live
from edgeasr.client import TritonClient
from edgeasr.export.repository import ModelRepository, RepositoryOptions
from edgeasr.serving.front import RoutingFront
from edgeasr.serving.live import LiveState, live_file_for, read_live, write_live
from edgeasr.serving.server import ServerError, TritonServer, find_tritonserver

pytestmark = pytest.mark.triton

OPTIONS = RepositoryOptions(max_batch_size=8, warmup_seconds=0.5)


def _serve(tmp_path_factory: pytest.TempPathFactory, asr_onnx: Path, versions: int):
    try:
        find_tritonserver()
    except ServerError as exc:
        pytest.skip(reason=f"no bundled Triton server: {exc}")
    root = tmp_path_factory.mktemp("front_models")
    repo = ModelRepository(root)
    for version in range(1, versions + 1):
        assert repo.publish("edgeasr", asr_onnx, options=OPTIONS) == version
    pairs = root.parent / "pairs.jsonl"
    with TritonServer(root) as server, RoutingFront(server.grpc_url, root, pair_log=pairs) as front:
        yield repo, server, front, pairs


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, asr_onnx: Path):
    """Triton with versions 1 and 2 of "edgeasr" (1 the champion), the front before it (pair log on).

    Nothing reloads this server; the tests that publish and reload have servers of their own.
    """
    yield from _serve(tmp_path_factory, asr_onnx, 2)


@pytest.fixture
def fresh(tmp_path_factory: pytest.TempPathFactory, asr_onnx: Path):
    """A server of the test's own with version 1 only, for tests that publish and reload."""
    yield from _serve(tmp_path_factory, asr_onnx, 1)


def audio(seconds: float = 1.0, seed: int = 0) -> np.ndarray:
    return (0.2 * np.random.default_rng(seed).standard_normal(int(16000 * seconds))).astype(np.float32)


def load(server: TritonServer) -> None:
    """Reload "edgeasr" in Triton (explicit model control): new versions on disk get loaded."""
    grpcclient.InferenceServerClient(server.grpc_url).load_model("edgeasr")


def test_first_publish_names_the_champion(served) -> None:
    repo, _, _, _ = served
    state = read_live(live_file_for(repo.root, "edgeasr"))
    assert (state.model, state.champion, state.challenger) == ("edgeasr", "1", "")


def test_the_champion_answers_every_unversioned_client_until_promotion(fresh, asr_onnx: Path) -> None:
    repo, server, front, _ = fresh
    answered: list[str] = []
    errors: list[Exception] = []
    stop = threading.Event()

    def client_without_a_version() -> None:
        client = TritonClient(front.url, "edgeasr")
        while not stop.is_set():
            try:
                answered.append(client.transcribe(audio(0.5)).model_version)
            except Exception as exc:
                errors.append(exc)

    def wait_for(count: int) -> None:  # answers arrive as fast as a loaded machine allows
        deadline = time.monotonic() + 60
        while len(answered) < count and time.monotonic() < deadline:
            time.sleep(0.05)

    thread = threading.Thread(target=client_without_a_version)
    thread.start()
    try:
        wait_for(3)
        assert repo.publish("edgeasr", asr_onnx, options=OPTIONS) == 2  # a challenger lands on disk...
        load(server)  # ...and Triton loads it beside the champion
        assert grpcclient.InferenceServerClient(server.grpc_url).is_model_ready("edgeasr", "2")
        # Triton alone would now answer unversioned requests with version 2: the gap the front closes
        assert TritonClient(server.grpc_url, "edgeasr").transcribe(audio()).model_version == "2"
        seen = len(answered)
        wait_for(seen + 5)
        assert len(answered) >= seen + 5, "the client kept sending while the challenger was published"
        assert set(answered) == {"1"}, "only the champion may answer before promotion"
        write_live(live_file_for(repo.root, "edgeasr"), LiveState(model="edgeasr", champion="2", previous="1"))
        seen = len(answered)
        wait_for(seen + 6)
    finally:
        stop.set()
        thread.join(30)
    assert not errors, errors
    after = answered[seen + 1 :]  # one request may have been in flight across the promotion
    assert after and set(after) == {"2"}, "after promotion the new champion answers"


def test_a_rollback_survives_the_next_export(fresh, asr_onnx: Path) -> None:
    repo, server, front, _ = fresh
    assert repo.publish("edgeasr", asr_onnx, options=OPTIONS) == 2
    load(server)
    live = live_file_for(repo.root, "edgeasr")
    set_live(repo, "edgeasr", [1])  # roll back: Triton serves version 1 only
    write_live(live, LiveState(model="edgeasr", champion="1", phase="rolled_back", previous="2"))
    version = repo.publish("edgeasr", asr_onnx, options=OPTIONS)  # the next export
    assert version == 3
    assert live_policy(repo.root, "edgeasr") == "specific [1]"
    assert read_live(live).champion == "1"
    load(server)
    assert TritonClient(front.url, "edgeasr").transcribe(audio()).model_version == "1"
    assert TritonClient(server.grpc_url, "edgeasr").transcribe(audio()).model_version == "1"


def test_canary_percentages_reach_unversioned_clients(served) -> None:
    repo, _, front, _ = served
    live = live_file_for(repo.root, "edgeasr")
    write_live(live, LiveState(model="edgeasr", champion="1", challenger="2", challenger_percent=50.0))
    client = TritonClient(front.url, "edgeasr")
    versions = [client.transcribe(audio(0.3, seed=i)).model_version for i in range(40)]
    assert set(versions) == {"1", "2"}  # all 40 one way would happen once in 2**39 runs
    write_live(live, LiveState(model="edgeasr", champion="1", challenger="2", challenger_percent=0.0))
    assert {client.transcribe(audio(0.3)).model_version for _ in range(10)} == {"1"}
    # a request that names its version is never rerouted
    assert TritonClient(front.url, "edgeasr", "2").transcribe(audio()).model_version == "2"


def test_a_failing_challenger_falls_back_to_the_champion(served) -> None:
    repo, _, front, pairs = served
    live = live_file_for(repo.root, "edgeasr")
    write_live(live, LiveState(model="edgeasr", champion="1", challenger="7", challenger_percent=100.0))
    before = front.stats["fallbacks"]
    result = TritonClient(front.url, "edgeasr", retries=0).transcribe(audio())
    assert result.model_version == "1"
    assert front.stats["fallbacks"] == before + 1
    record = [json.loads(line) for line in pairs.read_text().splitlines()][-1]
    assert record["served_by"] == "champion" and record["champion"]["version"] == "1"
    assert record["challenger"]["version"] == "7" and "7" in record["challenger"]["error"]
    write_live(live, LiveState(model="edgeasr", champion="1"))


def test_shadow_mirrors_each_request_and_logs_the_pair(served) -> None:
    repo, _, front, pairs = served
    live = live_file_for(repo.root, "edgeasr")
    write_live(live, LiveState(model="edgeasr", champion="1", challenger="2", shadow=True))
    before = len(pairs.read_text().splitlines()) if pairs.exists() else 0
    client = TritonClient(front.url, "edgeasr")
    texts = [client.transcribe(audio(1.0, seed=i)).text for i in range(3)]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(pairs.read_text().splitlines()) < before + 3:
        time.sleep(0.1)
    records = [json.loads(line) for line in pairs.read_text().splitlines()[before:]]
    assert len(records) == 3
    assert all(r["served_by"] == "champion" and r["champion"]["version"] == "1" for r in records)
    assert all(r["challenger"]["version"] == "2" and r["challenger"]["error"] is None for r in records)
    # the logged answers are the ones the client got (pairs are logged as their mirrors finish, in any order)
    assert sorted(r["champion"]["text"] for r in records) == sorted(texts) and len(set(texts)) == 3
    write_live(live, LiveState(model="edgeasr", champion="1"))


def test_other_calls_pass_through(served) -> None:
    _, _, front, _ = served
    client = grpcclient.InferenceServerClient(front.url)
    assert client.is_server_live() and client.is_server_ready()
    assert client.get_model_config("edgeasr").config.name == "edgeasr"
    with pytest.raises(Exception, match=r"unknown|not found"):
        client.get_model_metadata("no_such_model")


def test_an_oversized_request_is_refused_before_it_is_read(served) -> None:
    """The limit comes from max_audio_seconds; a larger request never reaches Triton."""
    from edgeasr.serving.front import max_request_bytes

    repo, server, _, _ = served
    assert max_request_bytes(repo.root) == 30 * 16000 * 4 * 8 + (1 << 20)  # 30 s of float32 in 8 rows, + 1 MiB
    with RoutingFront(server.grpc_url, repo.root, max_message_bytes=200_000) as front:  # a small limit, same code
        client = grpcclient.InferenceServerClient(front.url)
        x = np.zeros((1, 4 * 16000), np.float32)  # 256 kB
        tensor = grpcclient.InferInput("AUDIO", list(x.shape), "FP32")
        tensor.set_data_from_numpy(x)
        with pytest.raises(Exception, match=r"(?i)resource_exhausted|larger than max"):
            client.infer("edgeasr", [tensor])
        assert TritonClient(front.url, "edgeasr").transcribe(audio(1.0)).model_version == "1"  # still serving
        assert front.stats["routed"] == 1  # the oversized request was never forwarded


def test_stream_requests_are_routed_too(served) -> None:
    """Runs last in this module: Triton 2.51 has died with SIGSEGV soon after such a stream closed."""
    repo, _, front, _ = served
    write_live(live_file_for(repo.root, "edgeasr"), LiveState(model="edgeasr", champion="2"))
    answers: list = []
    done = threading.Event()

    def callback(result, error) -> None:
        answers.append(error if error is not None else result.get_response().model_version)
        done.set()

    client = grpcclient.InferenceServerClient(front.url)
    client.start_stream(callback=callback)
    try:
        x = audio().reshape(1, -1)
        tensor = grpcclient.InferInput("AUDIO", list(x.shape), "FP32")
        tensor.set_data_from_numpy(x)
        client.async_stream_infer("edgeasr", [tensor], outputs=[grpcclient.InferRequestedOutput("TEXT")])
        assert done.wait(20)
    finally:
        client.stop_stream()
        write_live(live_file_for(repo.root, "edgeasr"), LiveState(model="edgeasr", champion="1"))
    assert answers == ["2"]


def test_the_request_log_records_each_answered_request(served, tmp_path: Path) -> None:
    """`edgeasr serve --request-log`: the served path writes the device path's records (audio only if asked)."""
    import soundfile as sf

    from edgeasr.monitor.live import read_window

    _, server, _, _ = served
    log = tmp_path / "requests.jsonl"
    kept = tmp_path / "audio"  # asked for: the audio is kept too
    with RoutingFront(server.grpc_url, served[0].root, request_log=log, request_audio_dir=kept) as front:
        client = TritonClient(front.url, "edgeasr")
        texts = [client.transcribe(audio(1.0, seed=0)).text, client.transcribe(0.1 * audio(2.0, seed=1)).text]
        # raw int16, as a tritonclient user may send it
        pcm = (0.25 * audio(1.5, seed=2) * 32767).astype(np.int16).reshape(1, -1)
        inputs = [
            grpcclient.InferInput("AUDIO_INT16", list(pcm.shape), "INT16"),
            grpcclient.InferInput("SAMPLE_RATE", [1, 1], "INT32"),
        ]
        inputs[0].set_data_from_numpy(pcm)
        inputs[1].set_data_from_numpy(np.array([[16000]], np.int32))
        answer = grpcclient.InferenceServerClient(front.url).infer("edgeasr", inputs)
        texts.append(answer.as_numpy("TEXT").reshape(-1)[0].decode())
    records = read_window(log)  # stop() waited for the queued records
    assert len(records) == 3 and front.stats["records"] == 3
    sent = [(0.2, 1.0), (0.02, 2.0), (0.05, 1.5)]  # (RMS, seconds)
    for record, (rms, seconds), text in zip(records, sent, texts, strict=True):
        assert record["via"] == "front" and record["model"] == "edgeasr" and record["version"] == "1"
        assert record["sample_rate"] == 16000 and abs(record["duration"] - seconds) < 0.01
        assert abs(record["loudness"] - 20 * np.log10(rms)) < 1.5
        assert record["words"] == len(text.split()) and record["latency_ms"] > 0
        assert abs(sf.info(record["audio_file"]).duration - seconds) < 0.01
    assert len(list(kept.iterdir())) == 3
