"""``edgeasr eval`` and ``edgeasr demo``: word and character error rates of an exported model.

Evaluation runs the exported ONNX model on device (what users ship), per split: each manifest
given, plus copies of each under listening conditions (pink noise at ``--noise-snr``, and the
sweep of ``--conditions``: level, silence, tempo, telephone, reverberation, noise; see
:mod:`edgeasr.training.conditions`), seeded so runs are comparable. ``--peers`` scores the same
audio with other recognizers in the same run (:mod:`edgeasr.training.peers`: pocketsphinx and
Whisper tiny.en), so every WER has references beside it. It lists the worst utterances so a person
can look at what goes wrong, and breaks each split down by a manifest field (``engine`` by
default: which synthesizer or which imported corpus an utterance came from), since an average over
voices hides the voice that fails. WER and CER come from jiwer.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import jiwer
import numpy as np

from edgeasr.audio import AudioError
from edgeasr.manifest import compute_data_version, load_row_audio, read_manifest, resolve_audio_path
from edgeasr.training.conditions import NOISE_SEED, Condition, parse_conditions

__all__ = ["SplitResult", "evaluate_split", "run_demo", "run_eval_command"]


@dataclass(frozen=True)
class SplitResult:
    """Error rates of one split."""

    name: str  # split name ("test", "test@10dB", ...)
    utterances: int  # rows decoded
    failed: int  # rows whose audio could not be read (counted, never dropped silently)
    wer: float  # corpus-level word error rate (jiwer), 0..1+
    cer: float  # corpus-level character error rate
    latency_p50_ms: float  # median on-device latency per utterance
    worst: list  # [{"audio", "reference", "hypothesis", "wer"}] sorted worst first
    groups: dict = field(default_factory=dict)  # {value of the group-by field: {"utterances", "wer", "cer"}}
    data_version: str = ""  # the manifest's content hash (edgeasr.manifest): which audio and labels were scored


def evaluate_split(
    recognizer,
    manifest: str | Path,
    name: str,
    snr_db: float | None = None,
    worst: int = 10,
    group_by: str | None = "engine",
    condition: Condition | None = None,
    allow_outside: bool = False,
) -> SplitResult:
    """Decode every row of ``manifest`` (optionally with pink noise at ``snr_db``, or under ``condition``) and score it.

    ``recognizer`` is anything with ``transcribe(wave, sample_rate)`` returning ``.text`` and
    ``.latency_s`` (a :class:`~edgeasr.recognizer.Recognizer`). Rows are also scored per value of
    the manifest field ``group_by`` (rows without it count under ``"-"``); None skips that. A
    ``group_by`` of ``"FIELD:SEP"`` groups by the part of the field before the first ``SEP``:
    ``"speaker:-"`` scores the real-speech dev split per corpus (speakers are ``cathy-...``,
    ``fsdd-...``), ``"source:/"`` per the folder a row was imported from.
    """
    rows = read_manifest(manifest)
    rng = np.random.default_rng(NOISE_SEED)
    if snr_db is not None:
        condition = Condition(f"{snr_db:g}dB", "noise", snr_db)
    refs, hyps, per, latencies, failed = [], [], [], [], 0
    grouped: dict[str, tuple[list, list]] = defaultdict(lambda: ([], []))
    group_field, _, group_sep = (group_by or "").partition(":")
    for row in rows:
        path = resolve_audio_path(row, manifest)
        try:
            wave = load_row_audio(row, manifest, allow_outside=allow_outside)
            if condition is not None:
                wave = condition.apply(wave, rng)
            res = recognizer.transcribe(wave, 16000)
        except AudioError as exc:
            print(f"edgeasr eval: failed: {exc}", file=sys.stderr)
            failed += 1
            continue
        refs.append(row["text"])
        hyps.append(res.text)
        if group_by:
            key = str(row.get(group_field, "-"))
            g_refs, g_hyps = grouped[key.split(group_sep, 1)[0] if group_sep else key]
            g_refs.append(row["text"])
            g_hyps.append(res.text)
        latencies.append(res.latency_s * 1000)
        per.append(
            {
                "audio": str(path),
                "reference": row["text"],
                "hypothesis": res.text,
                "latency_ms": res.latency_s * 1000,
                "wer": float(jiwer.wer(row["text"], res.text)) if row["text"] else float(bool(res.text)),
            }
        )
    per.sort(key=lambda r: -r["wer"])
    return SplitResult(
        name=name,
        utterances=len(refs),
        failed=failed,
        wer=float(jiwer.wer(refs, hyps)) if refs else float("nan"),
        cer=float(jiwer.cer(refs, hyps)) if refs else float("nan"),
        latency_p50_ms=statistics.median(latencies) if latencies else float("nan"),
        worst=per[:worst],
        groups={
            key: {"utterances": len(r), "wer": float(jiwer.wer(r, h)), "cer": float(jiwer.cer(r, h))}
            for key, (r, h) in sorted(grouped.items())
        },
        data_version=compute_data_version(rows, manifest),
    )


def _named_manifests(items: list[str]) -> list[tuple[str, Path]]:
    out = []
    for item in items:
        name, sep, path = item.partition("=")
        out.append((name, Path(path)) if sep else (Path(item).stem, Path(item)))
    return out


def _evaluate_backend(rec, splits, conditions, args) -> list[SplitResult]:
    results = []
    group_by = args.group_by or None
    outside = bool(getattr(args, "allow_outside", False))
    for name, manifest in splits:
        results.append(evaluate_split(rec, manifest, name, worst=args.worst, group_by=group_by, allow_outside=outside))
        for cond in conditions:
            results.append(
                evaluate_split(
                    rec,
                    manifest,
                    f"{name}@{cond.name}",
                    worst=args.worst,
                    group_by=group_by,
                    condition=cond,
                    allow_outside=outside,
                )
            )
    return results


def run_eval_command(args: argparse.Namespace) -> int:
    """Handler of ``edgeasr eval``: a table of WER/CER per split (and per peer), the worst utterances, optional JSON."""
    from edgeasr.recognizer import Recognizer, RecognizerOptions
    from edgeasr.training.peers import PeerUnavailable, load_peer

    try:
        conditions = [
            Condition(f"{float(s):g}dB", "noise", float(s)) for s in (args.noise_snr or "").split(",") if s.strip()
        ]
        conditions += parse_conditions(getattr(args, "conditions", "") or "")
    except ValueError as exc:
        print(f"edgeasr eval: {exc}", file=sys.stderr)
        return 2
    peer_names = [p.strip() for p in (getattr(args, "peers", "") or "").split(",") if p.strip()]
    try:
        peers = {name: load_peer(name, threads=args.threads) for name in peer_names}
    except (ValueError, PeerUnavailable) as exc:
        print(f"edgeasr eval: {exc}", file=sys.stderr)
        return 2
    rec = Recognizer(args.model, RecognizerOptions(threads=args.threads, decoder=args.decoder))
    splits = _named_manifests(args.manifests)
    results = _evaluate_backend(rec, splits, conditions, args)
    peer_results = {name: _evaluate_backend(peer, splits, conditions, args) for name, peer in peers.items()}
    print(
        f"model: {rec.model_path}  ({rec.card.get('precision', '?')}, data {rec.card.get('data_version', '?')}, "
        f"{rec.decoder_name} decoding)"
    )
    header = f"{'split':<30}{'utts':>6}{'failed':>8}{'WER %':>8}{'CER %':>8}{'p50 ms':>9}"
    header += "".join(f"{name + ' WER %':>24}{'p50 ms':>9}" for name in peer_results)
    print(header)
    for i, r in enumerate(results):
        line = (
            f"{r.name:<30}{r.utterances:>6}{r.failed:>8}{100 * r.wer:>8.2f}{100 * r.cer:>8.2f}{r.latency_p50_ms:>9.1f}"
        )
        line += "".join(f"{100 * p[i].wer:>24.2f}{p[i].latency_p50_ms:>9.1f}" for p in peer_results.values())
        print(line)
    clean = [(i, r) for i, r in enumerate(results) if "@" not in r.name and len(r.groups) > 1]
    if clean:
        print(f"\nper {args.group_by}:" + "".join(f"{name + ' WER %':>24}" for name in peer_results))
        for i, r in clean:
            for key, g in r.groups.items():
                line = f"  {r.name + ' / ' + key:<40}{g['utterances']:>6}{100 * g['wer']:>8.2f}{100 * g['cer']:>8.2f}"
                for p in peer_results.values():
                    pg = p[i].groups.get(key)
                    line += f"{100 * pg['wer']:>24.2f}" if pg else f"{'-':>24}"
                print(line)
    if results and args.worst:
        print("\nworst utterances of the first split:")
        for w in results[0].worst:
            print(f"  {100 * w['wer']:5.0f}%  ref: {w['reference']}\n         hyp: {w['hypothesis']}")
    if args.out:
        Path(args.out).write_text(
            json.dumps(
                {
                    "model": str(rec.model_path),
                    "decoder": rec.decoder_name,
                    "card": rec.card,
                    "splits": [asdict(r) for r in results],
                    "peers": {
                        name: {"version": peers[name].version, "splits": [asdict(r) for r in rs]}
                        for name, rs in peer_results.items()
                    },
                },
                indent=2,
            )
        )
    failed = sum(r.failed for r in results)
    if failed:  # scored on what was readable, but a row that could not be read is an error
        total = failed + sum(r.utterances for r in results)
        print(f"edgeasr eval: {failed} of {total} rows could not be read or decoded (see above)", file=sys.stderr)
        return 1
    return 0


def run_demo(model: str, manifests: str | Sequence[str], threads: int = 1) -> int:
    """The README's main job: transcribe the shipped samples, print each with WER and latency per manifest."""
    from edgeasr.recognizer import Recognizer, RecognizerOptions

    rec = Recognizer(model, RecognizerOptions(threads=threads))
    card = rec.card
    print(
        f"model {rec.model_path} (version {card.get('version', '?')}, {card.get('precision', '?')}, "
        f"{card.get('params', 0) / 1e6:.2f} M parameters, data {card.get('data_version', '?')})"
    )
    for manifest in [manifests] if isinstance(manifests, str) else manifests:
        result = evaluate_split(rec, manifest, Path(manifest).stem, worst=1_000_000)
        print(f"{manifest}:")
        for item in sorted(result.worst, key=lambda r: r["audio"]):
            print(f"  {Path(item['audio']).name:<28} {item['latency_ms']:6.1f} ms  {item['hypothesis']}")
            if item["hypothesis"] != item["reference"]:
                print(f"  {'':<28} {'':>9}  (reference: {item['reference']})")
        print(
            f"WER {100 * result.wer:.1f}%  CER {100 * result.cer:.1f}%  over {result.utterances} samples; "
            f"median latency {result.latency_p50_ms:.1f} ms per utterance on {threads} thread(s)"
        )
    return 0
