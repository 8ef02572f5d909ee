"""``edgeasr bench``: accuracy, latency and throughput from one run, held against budgets.

One run over one or more manifests measures, on device (onnxruntime in process) or through Triton
(gRPC):

- accuracy: WER and CER (jiwer) of the transcripts of the first closed-loop pass, overall and
  per split (``--manifest test=a.jsonl --manifest dev=b.jsonl``);
- latency p50/p90/p95/p99, throughput (utterances/s, audio seconds/s) and the real-time factor
  per level of a closed-loop concurrency sweep (1, 2, 4, 8, ...), and optionally an open-loop
  pass with Poisson arrivals at ``--rate`` requests per second;
- with Triton: the server's own split of queue and compute time and the histogram of executed
  batch sizes, from ``get_inference_statistics`` deltas around each level;
- on device: the peak resident memory of the process and the model size.

Audio lengths are the manifest's, as they are; warm-up requests are excluded, and every client
connection exists before its level's clock starts. Outputs: a table on the terminal (with a
progress bar while it runs), and in ``--out``: ``results.json``, ``results.csv`` (perf_analyzer's
column names where they overlap, latencies in microseconds) and PNG plots. With ``--budgets`` and
``--target`` a missed limit makes the command exit 1 after printing what missed by how much.

``--suite`` runs the side-by-side comparison of :mod:`edgeasr.bench.suite` instead; the outputs
are written by :mod:`edgeasr.bench.report`.
"""

from __future__ import annotations

import contextlib
import os
import queue
import resource
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import jiwer
import numpy as np
from tqdm import tqdm

from edgeasr.manifest import load_row_audio, read_manifest, resolve_audio_path

__all__ = [
    "BenchOptions",
    "DeviceBackend",
    "LevelResult",
    "NativeTritonBackend",
    "TritonBackend",
    "Utterance",
    "champion_decoder_dir",
    "closed_loop",
    "level_at",
    "load_workload",
    "load_workloads",
    "measured_for_budget",
    "open_loop",
    "peak_memory_mb",
    "run_bench",
]


@dataclass(frozen=True)
class BenchOptions:
    """What one bench run measures."""

    concurrency: tuple[int, ...] = (1, 2, 4, 8)  # closed-loop levels; each sends ``requests`` requests
    requests: int = 0  # requests per level; 0 = every utterance of the workload once
    warmup: int = 3  # requests sent before measuring (not counted)
    rate: float = 0.0  # open-loop Poisson arrivals, requests per second (0 = no open-loop pass)
    seed: int = 0  # seeds the open-loop arrival times and the request order
    max_consecutive_errors: int = 20  # this many failures in a row stop the run (a dead server), results kept


@dataclass(frozen=True)
class Utterance:
    """One request of the workload."""

    audio: np.ndarray  # 16 kHz mono float32
    reference: str  # the manifest's text ("" when unlabelled)
    path: str  # the audio file
    split: str = ""  # the name of the manifest it came from ("test", "dev", ...)

    @property
    def seconds(self) -> float:
        """Duration in seconds."""
        return self.audio.size / 16000


@dataclass
class LevelResult:
    """Measurements of one concurrency level (or the open-loop pass)."""

    mode: str  # "closed" or "open"
    concurrency: int  # closed: in-flight requests; open: worker threads
    requests: int  # measured requests
    errors: int  # requests that failed
    wall_s: float  # wall time of the level
    audio_s: float  # audio seconds processed
    p50_ms: float = 0.0  # latency percentiles, milliseconds (open loop: from the scheduled arrival)
    p90_ms: float = 0.0
    p95_ms: float = 0.0
    p99_ms: float = 0.0
    mean_ms: float = 0.0  # mean latency, milliseconds
    throughput_utt_s: float = 0.0  # requests per wall second
    audio_s_per_s: float = 0.0  # audio seconds per wall second
    rtf: float = 0.0  # real-time factor: wall seconds per audio second (lower is faster)
    offered_rate: float = 0.0  # open loop: requested arrivals per second
    server: dict = field(default_factory=dict)  # Triton statistics deltas
    error_messages: dict = field(default_factory=dict)  # "Type: message" of failed requests -> count (10 kept)
    skipped: int = 0  # requests never sent because the run was stopped (see ``aborted``)
    aborted: str = ""  # why the run stopped early ("" = it did not)
    latencies_ms: list = field(default_factory=list, repr=False)  # every request's latency (plots only)
    durations_s: list = field(default_factory=list, repr=False)  # the audio seconds of each, same order
    ms_per_audio_s_p50: float = 0.0  # latency per second of audio (the per-second cost), median
    ms_per_audio_s_p99: float = 0.0  # ... and its 99th percentile
    p99_over_p50_similar: float = 0.0  # p99/p50 over the utterances within 0.8-1.25x the median length
    similar_requests: int = 0  # how many utterances that band holds


def load_workload(
    manifest: str | Path, limit: int = 0, split: str = "", allow_outside: bool = False
) -> list[Utterance]:
    """Read a manifest's audio into memory.

    Args:
        manifest: a NeMo-style JSONL manifest.
        limit: use only the first ``limit`` rows (0 = all).
        split: the name recorded on each utterance (default: the manifest's file stem).
        allow_outside: read audio outside the manifest's folder (refused otherwise).

    Returns:
        The utterances, in manifest order.
    """
    rows = read_manifest(manifest)
    rows = rows[:limit] if limit else rows
    name = split or Path(manifest).stem
    out = []
    for r in rows:
        path = resolve_audio_path(r, manifest)
        audio = load_row_audio(r, manifest, allow_outside=allow_outside)
        out.append(Utterance(audio, r.get("text", ""), str(path), name))
    return out


def load_workloads(specs: list[str], limit: int = 0, allow_outside: bool = False) -> list[Utterance]:
    """Read several manifests given as ``NAME=PATH`` or ``PATH`` (named by file stem).

    Args:
        specs: manifest specifications.
        limit: rows per manifest (0 = all).

    Returns:
        All utterances, manifest after manifest.
    """
    work: list[Utterance] = []
    for spec in specs:
        name, sep, path = spec.partition("=")
        work += load_workload(path if sep else spec, limit, name if sep else "", allow_outside)
    return work


class DeviceBackend:
    """On-device recognition; one Recognizer shared by all threads (onnxruntime is thread-safe)."""

    kind = "device"

    def __init__(self, model: str | Path, threads: int = 1) -> None:
        from edgeasr.recognizer import Recognizer, RecognizerOptions

        self.recognizer = Recognizer(model, RecognizerOptions(threads=threads))
        self.model_mb = self.recognizer.model_path.stat().st_size / 2**20
        precision = self.recognizer.card.get("precision", "?")
        self.description = f"on-device onnxruntime {precision}, {threads} thread(s), {self.recognizer.model_path}"

    def prepare(self, workers: int) -> None:
        """Nothing to set up per worker on device."""

    def transcribe(self, audio: np.ndarray) -> str:
        """Text of one 16 kHz utterance."""
        return self.recognizer.transcribe(audio, 16000).text

    def statistics(self) -> dict:
        """No server statistics on device."""
        return {}


class TritonBackend:
    """The python-flavour model on Triton over gRPC; clients are pooled, created before measuring."""

    kind = "triton"

    def __init__(self, url: str, model_name: str = "edgeasr", model_version: str = "") -> None:
        self.url, self.model_name, self.model_version = url, model_name, str(model_version or "")
        self.model_mb = None
        self._pool: queue.Queue = queue.Queue()
        self._made = 0
        self._lock = threading.Lock()
        self.description = f"Triton gRPC {url}, model {model_name} version {self.model_version or 'latest'}"

    def _client(self):
        from edgeasr.client import TritonClient

        return TritonClient(self.url, self.model_name, self.model_version)

    def _call(self, client, audio: np.ndarray) -> str:
        return client.transcribe(audio, 16000).text

    def prepare(self, workers: int) -> None:
        """Open connections until ``workers`` clients exist, each warmed by one tiny request."""
        with self._lock:
            while self._made < workers:
                client = self._client()
                self._call(client, np.zeros(1600, np.float32))
                self._pool.put(client)
                self._made += 1

    def transcribe(self, audio: np.ndarray) -> str:
        """Text of one 16 kHz utterance, on a pooled client."""
        if not self._made:
            self.prepare(1)
        client = self._pool.get()
        try:
            return self._call(client, audio)
        finally:
            self._pool.put(client)

    def statistics(self) -> dict:
        """Cumulative queue and compute times (ns) and executed batch sizes (:class:`~edgeasr.client.BatchStats`)."""
        from edgeasr.client import TritonClient

        with TritonClient(self.url, self.model_name, self.model_version) as client:
            stats = client.server_statistics()
        return {
            "queue_ns": stats.queue_ns,
            "compute_infer_ns": stats.compute_infer_ns,
            "compute_input_ns": stats.compute_input_ns,
            "compute_output_ns": stats.compute_output_ns,
            "success": stats.success_count,
            "executions": stats.execution_count,
            "batches": dict(stats.batch_sizes),
        }


class NativeTritonBackend(TritonBackend):
    """A native flavour (``edgeasr_onnx``/``edgeasr_trt``, e.g. on NVIDIA's GPU image) over gRPC.

    These take the ONNX contract: the client sends ``audio`` [1, T] and ``audio_length`` [1] and
    decodes the returned ``logprobs`` itself, as a GPU deployment's client would: with the shipped
    beam search of a python-flavour version folder (``decoder_dir``, its ``lm.arpa`` and
    ``decoder.json``), so the native path is scored with the same decoder as every other path, or
    greedily where no such folder is given. A native flavour takes the audio as sent, so the client
    prepares it as the python flavour does (:func:`edgeasr.features.model_input`: the training
    level, long quiet ends cut, and the room tone that ``decoder_dir``'s model file asks for; for a
    whole-input model, the pieces of :func:`edgeasr.features.model_pieces`, one request each,
    their words joined).

    Args:
        url: the server's gRPC address.
        model_name: the native model (``edgeasr_onnx`` or ``edgeasr_trt``).
        model_version: version to ask for ("" = Triton's choice).
        decoder_dir: a version folder with a beam search (:func:`edgeasr.decoding.has_beam_search`);
            None decodes greedily.
        timeout_s: deadline of each request, seconds.
    """

    kind = "triton"

    def __init__(
        self,
        url: str,
        model_name: str = "edgeasr_onnx",
        model_version: str = "",
        *,
        decoder_dir: str | os.PathLike | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        super().__init__(url, model_name, model_version)
        self.timeout_s = float(timeout_s)
        self.decoder = None
        self.pad_seconds = 0.0  # room tone the served model asks for (read from decoder_dir's model file)
        self.whole_input = False  # the served model hears the whole input: send it in pieces cut at pauses
        if decoder_dir is not None:
            import onnxruntime as ort

            from edgeasr.decoding import TOKENS, BeamSearchDecoder
            from edgeasr.features import input_pad_seconds
            from edgeasr.recognizer import WHOLE_INPUT_KEY

            self.decoder = BeamSearchDecoder.from_dir(decoder_dir, list(TOKENS))
            model = Path(decoder_dir) / "model.onnx"
            if model.is_file():
                meta = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"]).get_modelmeta()
                self.pad_seconds = input_pad_seconds(meta.custom_metadata_map)
                self.whole_input = meta.custom_metadata_map.get(WHOLE_INPUT_KEY) == "1"
            self.description += f", beam search of {decoder_dir}"
        else:
            self.description += ", greedy decoding"

    def _client(self):
        import tritonclient.grpc as grpcclient

        return grpcclient.InferenceServerClient(self.url)

    def _call(self, client, audio: np.ndarray) -> str:
        from edgeasr.features import apply_gain, level_gain_db, model_pieces

        x = np.asarray(audio, np.float32)
        pieces = model_pieces(apply_gain(x, level_gain_db(x)), self.pad_seconds, whole_input=self.whole_input)
        return " ".join(t for t in (self._piece(client, p) for p, _ in pieces) if t)

    def _piece(self, client, piece: np.ndarray) -> str:
        """The text of one model input (a request of its own)."""
        import tritonclient.grpc as grpcclient

        from edgeasr.decoding import greedy_decode

        wave = np.ascontiguousarray(piece, dtype=np.float32).reshape(1, -1)
        a = grpcclient.InferInput("audio", list(wave.shape), "FP32")
        a.set_data_from_numpy(wave)
        n = grpcclient.InferInput("audio_length", [1, 1], "INT64")
        n.set_data_from_numpy(np.array([[wave.shape[1]]], np.int64))
        res = client.infer(self.model_name, [a, n], model_version=self.model_version, client_timeout=self.timeout_s)
        frames = int(res.as_numpy("logprob_length").reshape(-1)[0])
        logprobs = res.as_numpy("logprobs")[0, :frames]
        if self.decoder is None:
            return greedy_decode(logprobs).text
        return " ".join(word for word, _, _ in self.decoder.search(logprobs))


def champion_decoder_dir(repository: str | os.PathLike, name: str = "edgeasr") -> Path | None:
    """The version folder whose beam search the native flavours are decoded with: the champion of
    ``<repository>/<name>/live.json``, else the highest version with a beam search; None if none."""
    from edgeasr.decoding import has_beam_search
    from edgeasr.serving.live import live_file_for, read_live

    folder = Path(repository) / name
    candidates = []
    with contextlib.suppress(ValueError, OSError):
        candidates.append(folder / read_live(live_file_for(repository, name)).champion)
    versions = sorted((int(p.name) for p in folder.glob("*") if p.name.isdigit()), reverse=True)
    candidates += [folder / str(v) for v in versions]
    return next((c for c in candidates if c.is_dir() and has_beam_search(c)), None)


class ErrorTally:
    """Counts of failed requests by their message (``"ClientError: ..."``), the first ``keep`` kept.

    A bench or replay loop never stops for one failed request, and never loses why it failed; it
    stops after ``max_consecutive`` failures in a row (a server that died), see :attr:`tripped`.
    """

    def __init__(self, keep: int = 10, max_consecutive: int = 0) -> None:
        self.keep = keep
        self.max_consecutive = int(max_consecutive)  # 0 = never stop
        self.count = 0
        self.skipped = 0
        self.messages: dict[str, int] = {}
        self.tripped = ""  # why the loop stopped ("" while it runs)
        self._run = 0
        self._lock = threading.Lock()

    def add(self, exc: BaseException) -> None:
        """Count one failure."""
        text = f"{type(exc).__name__}: {exc}".strip()[:300]
        with self._lock:
            self.count += 1
            self._run += 1
            if text in self.messages or len(self.messages) < self.keep:
                self.messages[text] = self.messages.get(text, 0) + 1
            if self.max_consecutive and self._run >= self.max_consecutive and not self.tripped:
                self.tripped = f"{self._run} requests in a row failed; the last: {text}"

    def ok(self) -> None:
        """Count one success (it ends a run of failures)."""
        with self._lock:
            self._run = 0

    def skip(self) -> bool:
        """True (and counted) when the loop has stopped and a request must not be sent."""
        with self._lock:
            if self.tripped:
                self.skipped += 1
            return bool(self.tripped)


def _statistics(backend) -> dict:
    """The backend's server statistics, or {} when the server cannot say (it may have died)."""
    try:
        return backend.statistics()
    except Exception:
        return {}


def _statistics_settled(backend, timeout_s: float = 1.0) -> dict:
    """Statistics that hold still for 50 ms: what earlier requests (a warm-up) add late is counted."""
    before = _statistics(backend)
    deadline = time.monotonic() + timeout_s
    while before and time.monotonic() < deadline:
        time.sleep(0.05)
        now = _statistics(backend)
        if not now or (now["success"], now["executions"]) == (before["success"], before["executions"]):
            break
        before = now
    return before


def _statistics_after(backend, before: dict, answered: int, timeout_s: float = 2.0) -> dict:
    """Statistics once the server has counted the ``answered`` requests of a level.

    Triton records a request's statistics just after it answers it, so a read right after the last
    answer can miss it (a level would report one success and one execution too few). Waits up to
    ``timeout_s`` for the success count to reach ``before + answered``, then returns what it has.
    """
    after = _statistics(backend)
    if not before or not after:
        return after
    deadline = time.monotonic() + timeout_s
    while after["success"] - before["success"] < answered and time.monotonic() < deadline:
        time.sleep(0.02)
        after = _statistics(backend) or after
    return after


def peak_memory_mb() -> float:
    """This process's own peak resident memory in MiB.

    Read from ``VmHWM`` in ``/proc/self/status``, which starts afresh at ``exec``; ``ru_maxrss``
    is only the fallback where there is no ``/proc``, because Linux carries it across ``exec``
    from the parent (a bench started by a large process would report the parent's peak).
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _stats_delta(before: dict, after: dict) -> dict:
    if not before:
        return {}
    delta = {k: after[k] - before[k] for k in before if k != "batches"}
    batches = {s: after["batches"].get(s, 0) - before["batches"].get(s, 0) for s in after["batches"]}
    delta["batch_size_histogram"] = {int(s): n for s, n in sorted(batches.items()) if n}
    n = max(1, delta["success"])
    delta["queue_ms_per_request"] = delta["queue_ns"] / n / 1e6
    for key in ("compute_input", "compute_infer", "compute_output"):
        delta[f"{key}_ms_per_request"] = delta[f"{key}_ns"] / n / 1e6
    delta["compute_ms_per_request"] = sum(
        delta[f"{k}_ms_per_request"] for k in ("compute_input", "compute_infer", "compute_output")
    )
    return delta


def _summarize(level: LevelResult) -> LevelResult:
    lat = np.array(level.latencies_ms) if level.latencies_ms else np.array([np.nan])
    level.p50_ms, level.p90_ms, level.p95_ms, level.p99_ms = (float(np.percentile(lat, q)) for q in (50, 90, 95, 99))
    level.mean_ms = float(lat.mean())
    if level.durations_s and len(level.durations_s) == len(level.latencies_ms):
        dur = np.array(level.durations_s)
        cost = lat / np.maximum(dur, 1e-3)
        level.ms_per_audio_s_p50, level.ms_per_audio_s_p99 = (float(np.percentile(cost, q)) for q in (50, 99))
        median = float(np.median(dur))
        similar = lat[(dur >= 0.8 * median) & (dur <= 1.25 * median)]
        level.similar_requests = int(similar.size)
        if similar.size:
            level.p99_over_p50_similar = float(np.percentile(similar, 99) / np.percentile(similar, 50))
    level.throughput_utt_s = level.requests / level.wall_s if level.wall_s else 0.0
    level.audio_s_per_s = level.audio_s / level.wall_s if level.wall_s else 0.0
    level.rtf = level.wall_s / level.audio_s if level.audio_s else 0.0
    return level


def closed_loop(
    backend, work: list[Utterance], concurrency: int, progress=None, max_consecutive_errors: int = 0
) -> tuple[LevelResult, list[str]]:
    """Send ``work`` with ``concurrency`` requests in flight (closed loop).

    Args:
        backend: the backend to measure.
        work: the requests, each sent once.
        concurrency: requests in flight; a new one leaves as soon as one returns.
        progress: a tqdm bar to advance per request, or None.
        max_consecutive_errors: stop sending after this many failures in a row (0 = never).

    Returns:
        The level's measurements and the transcripts in ``work`` order ("" for failed requests).
    """
    texts: list[str] = [""] * len(work)
    latencies: list[float] = []
    durations: list[float] = []
    errors = ErrorTally(max_consecutive=max_consecutive_errors)
    lock = threading.Lock()

    def one(i: int) -> None:
        if errors.skip():
            return
        t0 = time.perf_counter()
        try:
            text = backend.transcribe(work[i].audio)
        except Exception as exc:  # a failed request is counted with its message, never fatal to the run
            errors.add(exc)
            return
        errors.ok()
        dt = (time.perf_counter() - t0) * 1000
        with lock:
            texts[i] = text
            latencies.append(dt)
            durations.append(work[i].seconds)
        if progress is not None:
            progress.update(1)

    backend.prepare(concurrency)
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(lambda _: None, range(concurrency)))  # threads exist before the clock starts
        before = _statistics_settled(backend)
        start = time.perf_counter()
        list(pool.map(one, range(len(work))))
        wall = time.perf_counter() - start
    level = LevelResult(
        "closed",
        concurrency,
        len(latencies),
        errors.count,
        wall,
        sum(u.seconds for u in work),
        server=_stats_delta(before, _statistics_after(backend, before, len(latencies))),
        error_messages=errors.messages,
        skipped=errors.skipped,
        aborted=errors.tripped,
        latencies_ms=latencies,
        durations_s=durations,
    )
    return _summarize(level), texts


def open_loop(
    backend, work: list[Utterance], rate: float, seed: int, progress=None, max_consecutive_errors: int = 0
) -> LevelResult:
    """Send ``work`` at Poisson arrival times (open loop); latency counts from the scheduled arrival.

    Args:
        backend: the backend to measure.
        work: the requests, each sent once.
        rate: mean arrivals per second.
        seed: seeds the arrival times.
        progress: a tqdm bar to advance per request, or None.
        max_consecutive_errors: stop sending after this many failures in a row (0 = never).

    Returns:
        The level's measurements (``mode="open"``, ``offered_rate=rate``).
    """
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(1.0 / rate, len(work)))
    latencies: list[float] = []
    errors = ErrorTally(max_consecutive=max_consecutive_errors)
    lock = threading.Lock()
    workers = max(4, min(64, int(rate * 2)))

    def one(i: int, due: float) -> None:
        if errors.skip():
            return
        try:
            backend.transcribe(work[i].audio)
        except Exception as exc:  # counted with its message, as in closed_loop
            errors.add(exc)
            return
        errors.ok()
        with lock:  # from the scheduled arrival, so waiting for a free worker counts too
            latencies.append((time.perf_counter() - due) * 1000)
        if progress is not None:
            progress.update(1)

    backend.prepare(workers)
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda _: None, range(workers)))
        before = _statistics_settled(backend)
        start = time.perf_counter()
        for i, at in enumerate(arrivals):
            delay = start + at - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            pool.submit(one, i, start + at)
    wall = time.perf_counter() - start
    level = LevelResult(
        "open",
        workers,
        len(latencies),
        errors.count,
        wall,
        sum(u.seconds for u in work),
        offered_rate=rate,
        server=_stats_delta(before, _statistics_after(backend, before, len(latencies))),
        error_messages=errors.messages,
        skipped=errors.skipped,
        aborted=errors.tripped,
        latencies_ms=latencies,
    )
    return _summarize(level)


def _scores(pairs: list[tuple[str, str]]) -> dict:
    labelled = [(r, h) for r, h in pairs if r]
    if not labelled:
        return {}
    refs, hyps = [r for r, _ in labelled], [h for _, h in labelled]
    return {"wer": float(jiwer.wer(refs, hyps)), "cer": float(jiwer.cer(refs, hyps)), "utterances": len(labelled)}


def run_bench(
    backend, workload: list[Utterance], options: BenchOptions = BenchOptions(), progress: bool = True, label: str = ""
) -> dict:
    """Measure ``backend`` on ``workload``.

    Args:
        backend: a :class:`DeviceBackend`, :class:`TritonBackend` or :class:`NativeTritonBackend`.
        workload: the utterances (see :func:`load_workloads`).
        options: levels, requests, warm-up and the open-loop rate.
        progress: show a progress bar on stderr.
        label: a short name of this measurement ("device-int8", "triton", ...).

    Returns:
        The full result (JSON-ready): ``summary`` (accuracy overall and per split, p50/p99 and
        speed at the first level, memory, model size) and ``levels`` (one per pass).
    """
    rng = np.random.default_rng(options.seed)
    for u in workload[: options.warmup]:
        backend.transcribe(u.audio)
    n = options.requests or len(workload)
    order = [workload[i % len(workload)] for i in rng.permutation(max(n, len(workload)))[:n]]
    levels: list[LevelResult] = []
    summary: dict = {}
    total = n * len(options.concurrency) + (n if options.rate else 0)
    with tqdm(total=total, desc=f"bench {label or backend.kind}", unit="req", disable=not progress) as bar:
        for c in options.concurrency:
            level, texts = closed_loop(backend, order, c, bar, options.max_consecutive_errors)
            levels.append(level)
            if c == options.concurrency[0]:
                pairs = [(u.reference, h) for u, h in zip(order, texts, strict=True)]
                summary.update(_scores(pairs))
                splits = sorted({u.split for u in order})
                summary["splits"] = {
                    s: _scores([p for u, p in zip(order, pairs, strict=True) if u.split == s]) for s in splits
                }
            if level.aborted:
                break
        if options.rate and not levels[-1].aborted:
            levels.append(open_loop(backend, order, options.rate, options.seed, bar, options.max_consecutive_errors))
    first = levels[0]
    summary.update(
        p50_ms=first.p50_ms,
        p99_ms=first.p99_ms,
        p99_over_p50=first.p99_ms / first.p50_ms if first.p50_ms else None,
        p99_over_p50_similar=first.p99_over_p50_similar or None,
        similar_requests=first.similar_requests,
        ms_per_audio_s_p50=first.ms_per_audio_s_p50,
        ms_per_audio_s_p99=first.ms_per_audio_s_p99,
        speed_x_realtime=first.audio_s_per_s,
        rtf=first.rtf,
        utterances=len(order),
        audio_seconds=sum(u.seconds for u in order),
        mean_utterance_s=float(np.mean([u.seconds for u in order])),
        errors=sum(lv.errors for lv in levels),
    )
    aborted = next((lv.aborted for lv in levels if lv.aborted), "")
    if backend.kind == "device":
        summary["peak_memory_mb"] = peak_memory_mb()
    if backend.model_mb is not None:
        summary["model_mb"] = backend.model_mb
    return {
        "label": label or backend.kind,
        "backend": backend.description,
        "kind": backend.kind,
        "options": asdict(options),
        "summary": summary,
        "levels": [asdict(level) for level in levels],
        "aborted": aborted,
    }


def level_at(result: dict, concurrency: int) -> dict:
    """Find a closed-loop level of a result.

    Args:
        result: a :func:`run_bench` result.
        concurrency: the level's concurrency.

    Returns:
        The level, or ``{}`` when it was not measured.
    """
    for level in result["levels"]:
        if level["mode"] == "closed" and level["concurrency"] == concurrency:
            return level
    return {}


def measured_for_budget(result: dict, at_concurrency: int, extra: dict | None = None) -> dict:
    """Flatten a result into the measurements a budget is held against.

    Args:
        result: a :func:`run_bench` result.
        at_concurrency: the budget's concurrency for ``p99_ms_at`` and ``throughput_utt_s_at``.
        extra: run-wide measurements to add (suite ratios such as ``batching_gain``).

    Returns:
        A flat dict keyed as :data:`edgeasr.bench.budgets.LIMIT_MEASURES` expects.
    """
    measured = {k: v for k, v in result["summary"].items() if not isinstance(v, dict)}
    level = level_at(result, at_concurrency)
    measured["p99_ms_at"] = level.get("p99_ms")
    measured["throughput_utt_s_at"] = level.get("throughput_utt_s")
    return {**measured, **(extra or {})}


# -- command line ----------------------------------------------------------------------------------
