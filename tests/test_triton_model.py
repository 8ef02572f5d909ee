"""The python-backend model inside the real Triton server: ragged batching, parity, bad requests."""

from __future__ import annotations

import queue

import numpy as np
import pytest

pytestmark = pytest.mark.triton
grpcclient = pytest.importorskip("tritonclient.grpc")
from tritonclient.utils import InferenceServerException  # noqa: E402

from edgeasr.client import TritonClient  # noqa: E402


def make_inputs(audio=None, int16=None, rate=None):
    inputs = []
    for name, dtype, data in (
        ("AUDIO", "FP32", audio),
        ("AUDIO_INT16", "INT16", int16),
        ("SAMPLE_RATE", "INT32", rate),
    ):
        if data is not None:
            tensor = grpcclient.InferInput(name, list(data.shape), dtype)
            tensor.set_data_from_numpy(data)
            inputs.append(tensor)
    return inputs


@pytest.fixture(scope="module")
def grpc(triton_server):
    client = grpcclient.InferenceServerClient(triton_server.grpc_url)
    yield client
    client.close()


def infer_text(grpc, **inputs) -> str:
    result = grpc.infer("edgeasr", make_inputs(**inputs))
    return result.as_numpy("TEXT")[0, 0].decode()


def test_single_request_matches_onnxruntime(grpc, speechlike, reference_text) -> None:
    audio = speechlike[3]
    result = grpc.infer("edgeasr", make_inputs(audio=audio[None]))
    assert result.as_numpy("TEXT")[0, 0].decode() == reference_text(audio)
    assert result.as_numpy("LOGPROBS").shape == (1, -(-audio.size // 320), 29)
    assert result.get_response().model_version == "1"


def test_int16_input(grpc, speechlike, reference_text) -> None:
    pcm = (speechlike[2] * 20000).astype(np.int16)
    text = infer_text(grpc, int16=pcm[None], rate=np.array([[16000]], dtype=np.int32))
    assert text == reference_text(pcm.astype(np.float32) / 32768.0)


def test_ragged_batching_batches_different_lengths(grpc, triton_server, speechlike, reference_text) -> None:
    stats = TritonClient(triton_server.grpc_url)
    # A 29 s request first keeps the single model instance busy while the others queue up.
    t = np.arange(29 * 16000) / 16000  # noise that rises and falls like syllables (steady noise is not speech)
    blocker = (np.random.default_rng(2).uniform(-0.5, 0.5, t.size) * (0.55 + 0.45 * np.sin(8 * np.pi * t))).astype(
        np.float32
    )
    waves = [blocker, *speechlike]
    expected = [reference_text(a) for a in waves]
    for _ in range(20):  # concurrency makes batching likely, not certain: try a few rounds
        done: queue.Queue = queue.Queue()
        for i, audio in enumerate(waves):
            grpc.async_infer(
                "edgeasr",
                make_inputs(audio=audio[None]),
                callback=lambda result, error, i=i, done=done: done.put((i, result, error)),
            )
        answers = dict((i, (result, error)) for i, result, error in (done.get(timeout=60) for _ in waves))
        for i, (result, error) in answers.items():
            assert error is None, error
            assert result.as_numpy("TEXT")[0, 0].decode() == expected[i]  # batching changes nothing
        if stats.server_statistics().max_batch_size > 1:
            break
    assert stats.server_statistics().max_batch_size > 1, stats.server_statistics()


LONG = np.zeros((1, 30 * 16000 + 1), dtype=np.float32)
BAD_REQUESTS = {
    "empty": ({"audio": np.zeros((1, 0), np.float32)}, "empty"),
    "nan": ({"audio": np.array([[0.1, np.nan, 0.2] * 200], np.float32)}, "NaN or Inf"),
    "inf": ({"audio": np.array([[0.1, np.inf] * 300], np.float32)}, "NaN or Inf"),
    "too long": ({"audio": LONG}, "longer than the 30 s maximum"),
    "one sample": ({"audio": np.zeros((1, 1), np.float32)}, "shorter than 50 ms"),
    "sample rate": (
        {"audio": np.zeros((1, 800), np.float32), "rate": np.array([[8000]], np.int32)},
        "16000 Hz",
    ),
    "no audio": ({"rate": np.array([[16000]], np.int32)}, "exactly one of AUDIO"),
    "two audios": (
        {"audio": np.zeros((1, 800), np.float32), "int16": np.zeros((1, 800), np.int16)},
        "exactly one of AUDIO",
    ),
    "rank": ({"audio": np.zeros((1, 2, 800), np.float32)}, ""),  # refused by Triton before the model
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_request_is_invalid_argument_and_server_keeps_serving(grpc, speechlike, reference_text, case) -> None:
    inputs, message = BAD_REQUESTS[case]
    with pytest.raises(InferenceServerException) as info:
        infer_text(grpc, **inputs)
    assert info.value.status() == "StatusCode.INVALID_ARGUMENT"
    assert message in info.value.message()
    assert infer_text(grpc, audio=speechlike[0][None]) == reference_text(speechlike[0])


def test_bad_requests_do_not_fail_their_batch(grpc, speechlike, reference_text) -> None:
    done: queue.Queue = queue.Queue()
    plan = [("good", {"audio": a[None]}) for a in speechlike[:4]] + [
        (c, BAD_REQUESTS[c][0]) for c in ("empty", "nan", "sample rate")
    ]
    for i, (_, inputs) in enumerate(plan):
        grpc.async_infer(
            "edgeasr", make_inputs(**inputs), callback=lambda result, error, i=i: done.put((i, result, error))
        )
    answers = {i: (result, error) for i, result, error in (done.get(timeout=60) for _ in plan)}
    for i, (kind, _) in enumerate(plan):
        result, error = answers[i]
        if kind == "good":
            assert error is None and result.as_numpy("TEXT")[0, 0].decode() == reference_text(speechlike[i])
        else:
            assert error is not None and error.status() == "StatusCode.INVALID_ARGUMENT"


@pytest.mark.slow
def test_real_exported_model_matches_the_recognizer(tiny_repository, tiny_corpus) -> None:
    """The lead's exported tiny model, served here, transcribes as on device, alone and batched."""
    import asyncio
    import json

    from edgeasr.audio import load_audio
    from edgeasr.client import AsyncTritonClient
    from edgeasr.recognizer import Recognizer
    from edgeasr.serving.server import ServerError, TritonServer, find_tritonserver

    try:
        find_tritonserver()
    except ServerError as exc:
        pytest.skip(reason=f"no bundled Triton server: {exc}")
    items = [json.loads(line) for line in (tiny_corpus / "dev.jsonl").read_text().splitlines()[:8]]
    waves = [load_audio(tiny_corpus / item["audio_filepath"]) for item in items]
    expected = [Recognizer(tiny_repository / "edgeasr").transcribe(w, 16000).text for w in waves]

    async def transcribe_all(url: str) -> list[str]:
        async with AsyncTritonClient(url) as client:
            return [t.text for t in await asyncio.gather(*(client.transcribe(w) for w in waves))]

    with TritonServer(tiny_repository) as server:
        assert [TritonClient(server.grpc_url).transcribe(w).text for w in waves] == expected
        assert asyncio.run(transcribe_all(server.grpc_url)) == expected


def test_a_decoder_failure_fails_only_its_own_request(tmp_path, asr_onnx, speechlike, reference_text) -> None:
    """A version whose decoder raises on 44-frame inputs (0.88 s): those fail, their batch-mates do not."""
    import dataclasses

    from conftest import _published_repo
    from edgeasr.modelcard import ModelCard
    from edgeasr.serving.server import ServerError, TritonServer, find_tritonserver

    try:
        find_tritonserver()
    except ServerError as exc:
        pytest.skip(reason=f"no bundled Triton server: {exc}")
    # a 50 ms batching window: the concurrent requests share batches even on a loaded machine
    root = _published_repo(tmp_path / "models", asr_onnx, max_queue_delay_us=50_000)
    version = root / "edgeasr" / "1"
    with open(version / "decoding.py", "a") as fh:  # the fault: greedy decoding of 44 frames raises
        fh.write(
            "\n_greedy = greedy_decode\n\n\n"
            "def greedy_decode(logprobs, *args, **kwargs):\n"
            "    if logprobs.shape[0] == 44:\n"
            "        raise RuntimeError('injected decoder fault')\n"
            "    return _greedy(logprobs, *args, **kwargs)\n"
        )
    card = ModelCard.from_json(version)
    fields = {f.name: getattr(card, f.name) for f in dataclasses.fields(card) if f.name not in ("files", "size_bytes")}
    ModelCard.for_files(version, **fields).to_json(version)  # re-signed: the fault passes the integrity check
    with TritonServer(root) as server:
        client = grpcclient.InferenceServerClient(server.grpc_url)
        for _ in range(4):  # concurrent rounds, so that silent and spoken requests share batches
            done: queue.Queue = queue.Queue()
            plan = [("good", a[None]) for a in speechlike[:5]] + [
                ("faulty", 0.1 * np.random.default_rng(5).standard_normal((1, 14080)).astype(np.float32))
            ] * 3
            for i, (_, audio) in enumerate(plan):
                client.async_infer(
                    "edgeasr",
                    make_inputs(audio=audio),
                    callback=lambda result, error, i=i, done=done: done.put((i, result, error)),
                )
            answers = {i: (r, e) for i, r, e in (done.get(timeout=60) for _ in plan)}
            for i, (kind, audio) in enumerate(plan):
                result, error = answers[i]
                if kind == "good":
                    assert error is None, error
                    assert result.as_numpy("TEXT")[0, 0].decode() == reference_text(audio[0])
                else:
                    assert error is not None and "injected decoder fault" in error.message()
        stats = client.get_inference_statistics("edgeasr").model_stats[0].batch_stats
        assert any(s.batch_size > 1 for s in stats), "no batch formed: the test proved nothing"


def test_a_tone_gives_no_words_as_on_device(grpc) -> None:
    """The served model applies the on-device rule (features.not_speech): a steady tone is not speech."""
    t = np.arange(32000) / 16000
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
    assert infer_text(grpc, audio=tone) == ""


def test_a_model_that_asks_for_room_hears_the_same_room_served(tmp_path, asr_onnx, speechlike) -> None:
    """A version whose file asks for 0.5 s of room tone: Triton lays down what the Recognizer does."""
    import onnx

    from conftest import _published_repo
    from edgeasr.export.onnx import set_timing
    from edgeasr.recognizer import Recognizer, RecognizerOptions
    from edgeasr.serving.server import ServerError, TritonServer, find_tritonserver

    try:
        find_tritonserver()
    except ServerError as exc:
        pytest.skip(reason=f"no bundled Triton server: {exc}")
    proto = onnx.load(str(asr_onnx))
    set_timing(proto, 0.02, None, 0.5)
    padded = tmp_path / "padded.onnx"
    onnx.save(proto, str(padded))
    root = _published_repo(tmp_path / "models", padded)
    rec = Recognizer(root / "edgeasr", RecognizerOptions(decoder="greedy"))
    assert rec.pad_seconds == 0.5
    with TritonServer(root) as server:
        client = grpcclient.InferenceServerClient(server.grpc_url)
        for audio in speechlike[2:6]:
            result = client.infer("edgeasr", make_inputs(audio=audio[None]))
            served = result.as_numpy("LOGPROBS")[0]
            assert served.shape[0] == -(-(audio.size + 16000) // 320)  # 0.5 s of tone on each side
            np.testing.assert_allclose(served, rec.logprobs(audio, 16000), atol=1e-4)
            text = result.as_numpy("TEXT")[0, 0].decode()
            assert text and text == rec.transcribe(audio, 16000).text
        # a second of quiet room tone on each side is cut to 0.15 s before the model, as on device
        from edgeasr.features import pink_noise

        audio = speechlike[5]
        tone = pink_noise(32000, np.random.default_rng(1)) * np.float32(10 ** (-80 / 20))
        roomy = np.concatenate([tone[:16000], audio, tone[16000:]]).astype(np.float32)
        served = client.infer("edgeasr", make_inputs(audio=roomy[None])).as_numpy("LOGPROBS")[0]
        assert served.shape[0] == -(-(audio.size + 4800 + 16000) // 320)  # 0.15 s kept, 0.5 s of tone laid
        np.testing.assert_allclose(served, rec.logprobs(roomy, 16000), atol=1e-4)
