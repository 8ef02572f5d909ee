"""The gRPC clients: transcripts, error messages, deadline, retries on UNAVAILABLE only, asyncio."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip("tritonclient.grpc")
from edgeasr.audio import resample
from edgeasr.client import AsyncTritonClient, ClientError, TritonClient


@pytest.fixture
def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"  # nothing listens once the socket closes


def count_calls(client, method: str) -> list:
    calls: list = []
    real = getattr(client._client, method)

    def wrapper(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    setattr(client._client, method, wrapper)
    return calls


def test_unavailable_is_retried_then_reported(closed_port_url: str) -> None:
    client = TritonClient(closed_port_url, retries=2, backoff_s=0.001, timeout_s=5)
    calls = count_calls(client, "infer")
    with pytest.raises(ClientError, match=r"unavailable after 3 attempt") as info:
        client.transcribe(np.zeros(1600, np.float32))
    assert info.value.status == "StatusCode.UNAVAILABLE"
    assert len(calls) == 3
    assert client.is_ready() is False


def test_async_unavailable_is_retried(closed_port_url: str) -> None:
    async def go():
        async with AsyncTritonClient(closed_port_url, retries=1, backoff_s=0.001) as client:
            await client.transcribe(np.zeros(1600, np.float32))

    with pytest.raises(ClientError, match=r"unavailable after 2 attempt"):
        asyncio.run(go())


def test_tritonclient_stays_off_the_non_client_modules() -> None:
    code = (
        "import sys, edgeasr.serving.server, edgeasr.recognizer, edgeasr.modelcard, edgeasr.audio, edgeasr.decoding;"
        "print(any(m.startswith('tritonclient') for m in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


@pytest.mark.triton
class TestAgainstServer:
    def test_transcribe(self, triton_server, speechlike, reference_text) -> None:
        with TritonClient(triton_server.grpc_url) as client:
            assert client.is_ready()
            result = client.transcribe(speechlike[4])
            assert result.text == reference_text(speechlike[4])
            assert result.model_version == "1" and result.latency_s > 0
            pcm = (speechlike[1] * 15000).astype(np.int16)
            assert client.transcribe(pcm).text == reference_text(pcm / np.float32(32768))
            assert client.logprobs(speechlike[4]).shape == (-(-speechlike[4].size // 320), 29)

    def test_other_sample_rates_are_resampled(self, triton_server, speechlike, reference_text) -> None:
        audio_8k = resample(speechlike[5], 16000, 8000)
        with TritonClient(triton_server.grpc_url) as client:
            assert client.transcribe(audio_8k, sample_rate=8000).text == reference_text(resample(audio_8k, 8000))

    def test_transcribe_file(self, triton_server, speechlike, reference_text, tmp_path) -> None:
        sf = pytest.importorskip("soundfile")
        path = tmp_path / "a.wav"
        sf.write(path, speechlike[2], 16000, subtype="FLOAT")
        with TritonClient(triton_server.grpc_url) as client:
            assert client.transcribe_file(path).text == reference_text(speechlike[2])

    def test_invalid_argument_is_not_retried(self, triton_server) -> None:
        client = TritonClient(triton_server.grpc_url, retries=3)
        calls = count_calls(client, "infer")
        with pytest.raises(ClientError, match=r"INVALID_ARGUMENT: AUDIO: audio is 31\.0 s long") as info:
            client.transcribe(np.zeros(31 * 16000, np.float32))  # the server holds the length limit
        assert info.value.status == "StatusCode.INVALID_ARGUMENT"
        assert len(calls) == 1

    def test_deadline(self, triton_server) -> None:
        client = TritonClient(triton_server.grpc_url, timeout_s=1e-6, retries=3)
        calls = count_calls(client, "infer")
        with pytest.raises(ClientError, match="deadline") as info:
            client.transcribe(np.zeros(16000 * 20, np.float32))
        assert info.value.status == "StatusCode.DEADLINE_EXCEEDED"
        assert len(calls) == 1

    def test_unknown_version(self, triton_server) -> None:
        with pytest.raises(ClientError, match="edgeasr/7"):
            TritonClient(triton_server.grpc_url, model_version="7").transcribe(np.zeros(1600, np.float32))

    def test_server_statistics(self, triton_server, speechlike) -> None:
        client = TritonClient(triton_server.grpc_url)
        # The module's server is shared: a request an earlier test gave up on (a deadline) can still
        # be counted after it returned. Start from statistics that hold still for half a second.
        before = client.server_statistics()
        settle = time.monotonic() + 10.0
        while time.monotonic() < settle:
            time.sleep(0.5)
            again = client.server_statistics()
            if again.inference_count == before.inference_count and again.execution_count == before.execution_count:
                break
            before = again
        client.transcribe(speechlike[0])
        deadline = time.monotonic() + 5.0  # Triton records a request's statistics just after answering it
        after = client.server_statistics()
        while after.inference_count == before.inference_count and time.monotonic() < deadline:
            time.sleep(0.05)
            after = client.server_statistics()
        assert after.inference_count == before.inference_count + 1
        assert sum(after.batch_sizes.values()) == after.execution_count
        assert after.success_count == before.success_count + 1
        assert after.compute_infer_ns > before.compute_infer_ns  # the model ran
        assert after.queue_ns >= before.queue_ns and after.compute_input_ns > before.compute_input_ns

    def test_async_client(self, triton_server, speechlike, reference_text) -> None:
        async def go():
            async with AsyncTritonClient(triton_server.grpc_url) as client:
                assert await client.is_ready()
                results = await asyncio.gather(*(client.transcribe(a) for a in speechlike))
                stats = await client.server_statistics()
                probs = await client.logprobs(speechlike[0])
                return results, stats, probs

        results, stats, probs = asyncio.run(go())
        assert [r.text for r in results] == [reference_text(a) for a in speechlike]
        assert all(r.model_version == "1" for r in results)
        assert stats.execution_count >= 1 and probs.shape[1] == 29


BAD_INPUTS = {  # kind -> (audio, sample rate, the message every path gives)
    "one sample": (np.zeros(1, np.float32), 16000, "audio is 0 ms long, shorter than 50 ms"),
    "empty": (np.zeros(0, np.float32), 16000, r"empty audio \(0 samples\)"),
    "nan": (np.full(1600, np.nan, np.float32), 16000, "audio contains NaN or Inf samples"),
    "absurd rate": (np.zeros(1600, np.float32), 10**9, "sample rate 1000000000 Hz is not an audio rate"),
}


@pytest.mark.parametrize("kind", list(BAD_INPUTS))
def test_bad_input_is_refused_the_same_way_on_device_client_and_server(triton_server, kind: str) -> None:
    """One validation (edgeasr.audio), one message: Recognizer, TritonClient and raw requests to Triton."""
    import tritonclient.grpc as grpcclient

    from edgeasr.audio import AudioError
    from edgeasr.recognizer import Recognizer

    audio, rate, message = BAD_INPUTS[kind]
    with pytest.raises(AudioError, match=message):
        Recognizer(triton_server.model_repository / "edgeasr").transcribe(audio, rate)
    with pytest.raises(AudioError, match=message):
        TritonClient(triton_server.grpc_url).transcribe(audio, rate)
    if rate == 16000 and audio.size:  # a raw request straight to Triton: refused by the served model alike
        raw = grpcclient.InferenceServerClient(triton_server.grpc_url)
        tensor = grpcclient.InferInput("AUDIO", [1, audio.size], "FP32")
        tensor.set_data_from_numpy(audio[None, :])
        with pytest.raises(Exception, match=message):
            raw.infer("edgeasr", [tensor])
