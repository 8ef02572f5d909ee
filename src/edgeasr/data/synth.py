"""``edgeasr data synth``: a labelled corpus from local text-to-speech voices.

Steps, all deterministic for a seed:

1. **Sentences** come from :func:`edgeasr.data.prompts.generate_prompts` (or a user's text list) and
   are split train/dev/test by sentence (:func:`edgeasr.data.prompts.split_sentences`).
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
5. **Conditioning** (:mod:`edgeasr.data.conditioning`): resampled to 16 kHz with soxr, silence
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
import fnmatch
import hashlib
import json
import os
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from edgeasr.audio import SAMPLE_RATE, valid_wav_seconds
from edgeasr.data.conditioning import ConditionOptions, condition_waveform
from edgeasr.data.prompts import PromptOptions, generate_prompts, split_sentences
from edgeasr.data.tts import (
    ALL_ENGINES,
    ENGINES,
    Engine,
    EngineUnavailable,
    Utterance,
    Voice,
    available_engines,
    get_engine,
)
from edgeasr.manifest import write_manifest

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
    # only the voices whose id ("mbrola-mb-de1-en") or name ("mb-de1-en") matches one of these
    # shell patterns (fnmatch), before max_voices_per_engine; empty: every installed voice
    voices: tuple[str, ...] = ()
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
        engine = get_engine(batch[0].voice.engine)
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
    # The licences of the data: {engine: licence of its voices} for every engine in the manifests, and
    # {"source", "licence"} of the text (generated prompts, or the `# source: ...; licence: ...` lines of
    # a --text file; a file without one says so). A data card is made from these.
    licences: dict = field(default_factory=dict)


def _config_dict(options: SynthOptions) -> dict:
    d = asdict(options)
    if options.voices:
        d["voices"] = list(options.voices)
    else:  # corpora made before voices could be chosen resume as they were
        del d["voices"]
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
    splits: Sequence[str] = SPLITS,
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
        splits: the splits to synthesize and write; the plan is the whole corpus's either way, so
            a test split made alone is the one the full corpus has (a fresh machine that only
            benchmarks needs only ``("test",)``). Other splits' manifests are left as they are;
            ``failures.jsonl`` and ``summary.json`` describe the splits of this run.

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
    voices = [v for name in options.engines if name not in unavailable for v in get_engine(name).voices()]
    for name in options.engines:
        if name not in unavailable:
            get_engine(name).prepare()
    if options.voices:
        voices = [v for v in voices if any(fnmatch.fnmatchcase(x, p) for p in options.voices for x in (v.id, v.name))]
        for name in options.engines:
            if name not in unavailable and not any(v.engine == name for v in voices):
                raise ValueError(f"no voice of {name} matches {', '.join(options.voices)}")
    if options.max_voices_per_engine > 0:
        kept: list[Voice] = []
        for name in options.engines:
            vs = [v for v in voices if v.engine == name]
            random.Random(f"{options.seed}:keep:{name}").shuffle(vs)
            kept += sorted(vs[: options.max_voices_per_engine], key=lambda v: v.name)
        voices = kept
    rejected_text = 0
    from edgeasr.data.prompts import PROMPTS_LICENCE

    text_sources = [{"source": "generated prompts", "licence": PROMPTS_LICENCE}]
    if sentences is not None:
        text_sources = [{"source": "sentences given by the caller", "licence": "not stated"}]
    elif options.text_file:
        from edgeasr.data.prompts import load_text_list

        loaded = load_text_list(options.text_file)
        text_sources = loaded.sources or [
            {
                "source": str(options.text_file),
                "licence": "not stated (a '# source: NAME; licence: LICENCE' line in the file records it)",
            }
        ]
        rejected_text = len(loaded.rejected)
        if loaded.rejected:
            (out / "rejected_text.jsonl").write_text(
                "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in loaded.rejected)
            )
        sentences = [("", s) for s in loaded.sentences]
    unknown_splits = set(splits) - set(SPLITS)
    if unknown_splits or not splits:
        raise ValueError(f"splits must be a non-empty subset of {', '.join(SPLITS)}, got {', '.join(splits)}")
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
    utts = [u for u in utts if u.split in splits]  # after the plan's hash: the corpus is the same one
    for u in utts:
        d = valid_wav_seconds(wav_dir / f"{u.utt_id}.wav")
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
    versions = {s: write_manifest(rows[s], out / f"{s}.jsonl") for s in SPLITS if s in splits}
    with open(out / "failures.jsonl", "w", encoding="utf-8") as fh:
        for f in failures:
            fh.write(json.dumps(f, ensure_ascii=False) + "\n")
    engines_count: dict[str, int] = {}
    for s in SPLITS:
        for r in rows[s]:
            engines_count[r["engine"]] = engines_count.get(r["engine"], 0) + 1
    summary = SynthSummary(
        out_dir=str(out),
        counts={s: len(rows[s]) for s in SPLITS if s in splits},
        failed=len(failures),
        skipped_existing=skipped,
        voices=len({r["voice"] for s in SPLITS for r in rows[s]}),
        engines=engines_count,
        versions=versions,
        seconds=round(time.monotonic() - start, 2),
        unavailable=unavailable,
        rejected_text=rejected_text,
        licences={
            "voices": {name: get_engine(name).licence for name in sorted(engines_count)},
            "text": text_sources,
        },
    )
    (out / "summary.json").write_text(json.dumps({**asdict(summary), **notes}, indent=2) + "\n")
    return summary
