"""Carry a training set to a lent GPU machine: manifests packed into a few Ogg Opus streams, and back.

A lent GPU machine (the ``device`` tool: one H200, a 64 MiB working tree, nothing else reachable)
cannot synthesize or import audio, and the corpora of ``recipes/general-data.sh`` hold about 23 hours
(2.5 GB of 16-bit WAV). ``pack`` concatenates each manifest's audio into one Ogg Opus stream (one
stream, not one file per clip: an Ogg Opus file's headers alone cost about 1 kB) and writes an index
of where each row starts (gzipped JSONL); ``unpack`` (run there, with ``soundfile`` carried as a wheel) decodes the
streams and writes every row back as a 16 kHz WAV file under a manifest of its own. A clip that two
manifests share (cathy's rows are in ``train-fit2`` and ``cathy-fit``) is stored once.

Opus is lossy. At ``--level 0.97`` (soundfile's ``compression_level``; about 13 kbps on speech) the
general-7 model's greedy WER on the first 400 real-dev clips went from 75.1% (the WAV files) to
77.0% (encoded and decoded; 75.7% at 0.95, about 18 kbps; 85.4% at 1.0, about 6 kbps): measured
2026-12-04 with ``edgeasr eval --model work/bundles/general-7-greedy``. Training on the decoded audio
is one more codec condition; evaluation stays on the original files.

    python recipes/carry.py pack --out work/carry --level 0.97 \\
        real=work/real/train-fit2.jsonl cathy=work/real/cathy-fit.jsonl check3=work/real/check3.jsonl \\
        general=work/general/train.jsonl@3.5 hass=work/hass/train.jsonl@1.5 corpus=work/corpus/train.jsonl@1.5
    python recipes/carry.py unpack work/carry --out work/carried      # on the GPU machine

``NAME=MANIFEST@HOURS`` takes a seeded random subset of about that many hours. Manifests and their
audio are read and written by ``edgeasr.manifest`` (``src/`` on ``PYTHONPATH`` where edgeasr is not
installed, as ``recipes/gpu-train.sh`` sets it); needs ``soundfile`` with libsndfile 1.1 or later
(Opus).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf

from edgeasr.audio import SAMPLE_RATE
from edgeasr.manifest import load_row_audio, read_manifest, resolve_audio_path, write_manifest


def _index(path: Path) -> list[dict]:
    """A pack's index (gzipped JSONL: the rows, with where each clip lies in which stream)."""
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _subset(rows: list[dict], hours: float | None, seed: int) -> list[dict]:
    if hours is None:
        return rows
    order = np.random.default_rng(seed).permutation(len(rows))
    chosen, total = [], 0.0
    for i in order:
        if total >= hours * 3600:
            break
        chosen.append(int(i))
        total += float(rows[i]["duration"])
    return [rows[i] for i in sorted(chosen)]


def _encode(name: str, clips: list[tuple[dict, str]], out: str, level: float) -> tuple[str, list[int]]:
    """Concatenate the audio of ``(row, manifest)`` clips into ``out/name.ogg``; returns the name and
    each clip's length in samples."""
    waves = [load_row_audio(row, manifest, allow_outside=True) for row, manifest in clips]
    lengths = [int(w.size) for w in waves]
    stream = np.concatenate(waves) if waves else np.zeros(0, np.float32)
    sf.write(str(Path(out) / f"{name}.ogg"), stream, SAMPLE_RATE, format="OGG", subtype="OPUS", compression_level=level)
    return name, lengths


def pack(specs: list[str], out: Path, level: float, seed: int, workers: int) -> dict:
    """Pack ``NAME=MANIFEST[@HOURS]`` specs into ``out``; returns the summary written to ``carry.json``."""
    out.mkdir(parents=True, exist_ok=True)
    stored: dict[Path, tuple[str, int]] = {}  # audio file -> (stream, index in that stream)
    plans: dict[str, dict] = {}
    for spec in specs:
        name, _, rest = spec.partition("=")
        manifest, _, hours = rest.partition("@")
        if not name or not manifest or not name.replace("-", "").replace("_", "").isalnum():
            raise SystemExit(f"carry: '{spec}' is not NAME=MANIFEST[@HOURS] with a plain NAME")
        rows = _subset(read_manifest(manifest), float(hours) if hours else None, seed)
        own, index = [], []
        for row in rows:
            path = resolve_audio_path(row, manifest).resolve()
            if path not in stored:
                stored[path] = (name, len(own))
                own.append((row, manifest))
            index.append((row, *stored[path]))
        plans[name] = {"manifest": manifest, "hours": hours or "all", "own": own, "index": index}
    lengths: dict[str, list[int]] = {}
    with ProcessPoolExecutor(max_workers=workers) as pool:
        jobs = [pool.submit(_encode, name, plan["own"], str(out), level) for name, plan in plans.items()]
        for job in jobs:
            name, lens = job.result()
            lengths[name] = lens
    offsets = {name: np.concatenate([[0], np.cumsum(lens)]).tolist() for name, lens in lengths.items()}
    summary: dict = {"level": level, "seed": seed, "sample_rate": SAMPLE_RATE, "manifests": {}}
    for name, plan in plans.items():
        with gzip.open(out / f"{name}.jsonl.gz", "wt") as f:  # the index: a tenth of its plain size
            for row, stream, i in plan["index"]:
                kept = {k: v for k, v in row.items() if k != "audio_filepath"}
                start, stop = offsets[stream][i], offsets[stream][i + 1]
                f.write(json.dumps({**kept, "_stream": stream, "_start": start, "_samples": stop - start}) + "\n")
        ogg = out / f"{name}.ogg"
        summary["manifests"][name] = {
            "source": plan["manifest"],
            "hours_asked": plan["hours"],
            "rows": len(plan["index"]),
            "hours": round(sum(float(r["duration"]) for r, _, _ in plan["index"]) / 3600, 3),
            "stored_clips": len(plan["own"]),
            "stream_bytes": ogg.stat().st_size,
        }
    (out / "carry.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _unpack_stream(src: str, name: str, dst: str, starts: list[tuple[int, int]]) -> int:
    stream, rate = sf.read(str(Path(src) / f"{name}.ogg"), dtype="float32")
    folder = Path(dst) / "wavs" / name
    folder.mkdir(parents=True, exist_ok=True)
    for start, samples in starts:
        if start + samples > stream.size:
            raise ValueError(f"{name}.ogg: {stream.size} samples decoded, the index needs {start + samples}")
        sf.write(str(folder / f"{start}.wav"), stream[start : start + samples], rate, subtype="PCM_16")
    return len(starts)


def unpack(src: Path, out: Path, workers: int) -> dict[str, int]:
    """Decode every stream of a pack into WAV files and a manifest per packed manifest (rows in order)."""
    out.mkdir(parents=True, exist_ok=True)
    summary = json.loads((src / "carry.json").read_text())
    wanted: dict[str, set[tuple[int, int]]] = {}
    manifests: dict[str, list[dict]] = {}
    for name in summary["manifests"]:
        rows = _index(src / f"{name}.jsonl.gz")
        manifests[name] = rows
        for row in rows:
            wanted.setdefault(row["_stream"], set()).add((row["_start"], row["_samples"]))
    with ProcessPoolExecutor(max_workers=workers) as pool:
        jobs = {s: pool.submit(_unpack_stream, str(src), s, str(out), sorted(v)) for s, v in wanted.items()}
        written = {s: job.result() for s, job in jobs.items()}
    for name, rows in manifests.items():
        unpacked = []
        for row in rows:
            stream, start = row.pop("_stream"), row.pop("_start")
            row.pop("_samples")
            unpacked.append({"audio_filepath": f"wavs/{stream}/{start}.wav", **row})
        write_manifest(unpacked, out / f"{name}.jsonl")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack", help="manifests -> Ogg Opus streams and their index")
    p.add_argument("specs", nargs="+", help="NAME=MANIFEST or NAME=MANIFEST@HOURS")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--level", type=float, default=0.97, help="soundfile compression_level (0.97: about 13 kbps)")
    p.add_argument("--seed", type=int, default=0, help="seeds the @HOURS subsets")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    u = sub.add_parser("unpack", help="a pack -> WAV files and manifests")
    u.add_argument("pack", type=Path)
    u.add_argument("--out", type=Path, required=True)
    u.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    if args.command == "pack":
        summary = pack(args.specs, args.out, args.level, args.seed, args.workers)
        for name, m in summary["manifests"].items():
            print(f"{name}: {m['rows']} rows, {m['hours']} h, {m['stream_bytes'] / 2**20:.1f} MiB")
    else:
        written = unpack(args.pack, args.out, args.workers)
        print(", ".join(f"{s}: {n} clips" for s, n in written.items()), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
