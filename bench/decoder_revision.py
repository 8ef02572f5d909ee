"""One version's transcripts with the working tree's beam search against a git revision's, on the same audio.

A change to ``edgeasr/decoding.py`` reaches every version folder (``ModelRepository.upgrade_runtime``), so it is
judged as a change of its own: the version's ``Recognizer`` transcribes each utterance once with the search of
``REVISION`` (the champion) and once with the working tree's (the challenger), the acoustic model and the pieces
heard being the same. Per split: WER and CER of each side, the paired WER change with its bootstrap interval and
the change in empty answers (:func:`edgeasr.canary.stats.analyze`, the canary's own statistics), how many
transcripts differ, and the seconds each side spent in all (model and search; the model's share is the same).

    python bench/decoder_revision.py triton_models/edgeasr/23 HEAD bench/results/eval-cpu-2core-epyc/STEM \\
        real-dev=work/real/dev.jsonl heldout=work/heldout/train.jsonl

Writes ``STEM.json`` (per split and per utterance) and ``STEM.txt`` (the table).
"""

from __future__ import annotations

import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jiwer
from _results import write_results  # bench/_results.py (scripts run as python bench/NAME.py)

from edgeasr.canary.stats import AnalysisOptions, analyze
from edgeasr.manifest import load_row_audio, read_manifest
from edgeasr.recognizer import Recognizer, RecognizerOptions

LOADS = 7
"""How many times each side's search is built for its load time."""


def decoding_at(revision: str):
    """``edgeasr.decoding`` as it stood at git ``revision``, imported under a name of its own."""
    source = subprocess.run(
        ["git", "show", f"{revision}:src/edgeasr/decoding.py"], check=True, capture_output=True, text=True
    ).stdout
    with tempfile.TemporaryDirectory() as folder:  # read once by exec_module, not needed after it
        path = Path(folder) / "decoding_at_revision.py"
        path.write_text(source)
        spec = importlib.util.spec_from_file_location("decoding_at_revision", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
        spec.loader.exec_module(module)
    return module


def main() -> None:
    model, revision, stem, specs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    rec = Recognizer(model, RecognizerOptions(threads=1))
    if rec.beam_search is None:
        raise SystemExit(f"{model}: no beam search to compare")
    folder, tokens = rec.model_path.parent, list(rec.tokens)
    classes = {"before": decoding_at(revision).BeamSearchDecoder, "after": type(rec.beam_search)}
    loads: dict[str, list[float]] = {side: [] for side in classes}
    for _ in range(LOADS):  # what a cold start pays for the search: its n-gram mapped, its lexicon trie built
        for side, cls in classes.items():
            started = time.perf_counter()
            cls.from_dir(folder, tokens)
            loads[side].append(time.perf_counter() - started)
    load_ms = {side: 1000 * statistics.median(times) for side, times in loads.items()}
    searches = {"before": classes["before"].from_dir(folder, tokens), "after": rec.beam_search}
    rows, lines = [], [f"# {model}: beam search at {revision} (before) and in the working tree (after)"]
    lines.append(f"# python bench/decoder_revision.py {model} {revision} {stem} {' '.join(specs)}")
    lines.append(
        f"# search load (n-gram and lexicon trie), median of {LOADS} alternating: "
        f"before {load_ms['before']:.1f} ms, after {load_ms['after']:.1f} ms"
    )
    lines.append(
        f"{'split':<16}{'utts':>6}  {'WER before':>10} {'after':>7}  {'CER before':>10} {'after':>7}"
        f"  {'WER change (95% CI)':>24}  {'empty change':>12} {'changed':>8}  {'seconds before/after':>20}"
    )
    for spec in specs:
        name, manifest = spec.split("=", 1)
        manifest_rows = read_manifest(manifest)
        waves = [load_row_audio(r, manifest, allow_outside=True) for r in manifest_rows]
        refs = [r["text"] for r in manifest_rows]
        texts, seconds = {}, {}
        for side, search in searches.items():
            rec.beam_search = search
            started = time.perf_counter()
            texts[side] = [rec.transcribe(w, 16000).text for w in waves]
            seconds[side] = time.perf_counter() - started
        rec.beam_search = searches["after"]
        records = [
            {
                "reference": ref,
                "duration_s": w.size / 16000,
                "champion": {"text": before},
                "challenger": {"text": after},
            }
            for ref, w, before, after in zip(refs, waves, texts["before"], texts["after"], strict=True)
        ]
        paired = analyze(records, AnalysisOptions(short_utterance_s=1e-6))  # every utterance weighs the same
        wer, empty = paired.metrics["wer_delta"], paired.metrics["empty_rate_delta"]
        row = {
            "split": name,
            "manifest": manifest,
            "utterances": len(refs),
            **{f"wer_{s}": 100 * jiwer.wer(refs, texts[s]) for s in searches},
            **{f"cer_{s}": 100 * jiwer.cer(refs, texts[s]) for s in searches},
            "wer_change": 100 * wer.value,
            "wer_change_ci": [100 * wer.low, 100 * wer.high],
            "empty_change": 100 * empty.value,
            "changed": sum(a != b for a, b in zip(texts["before"], texts["after"], strict=True)),
            **{f"seconds_{s}": seconds[s] for s in searches},
            "utterance_texts": [
                {"reference": r, "before": b, "after": a}
                for r, b, a in zip(refs, texts["before"], texts["after"], strict=True)
            ],
        }
        rows.append(row)
        lines.append(
            f"{name:<16}{len(refs):>6}  {row['wer_before']:>9.2f}% {row['wer_after']:>6.2f}%"
            f"  {row['cer_before']:>9.2f}% {row['cer_after']:>6.2f}%"
            f"  {row['wer_change']:>+8.2f} ({row['wer_change_ci'][0]:+.2f}..{row['wer_change_ci'][1]:+.2f})"
            f"  {row['empty_change']:>+11.2f}% {row['changed']:>8}  {seconds['before']:>9.1f} / {seconds['after']:.1f}"
        )
    args = {"model": model, "revision": revision, "splits": specs, "search_load_ms": load_ms}
    write_results(stem, args, rows, lines)


if __name__ == "__main__":
    main()
