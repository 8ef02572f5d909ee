"""recipes/fresh_sentences.py: the new-voices data scripts' sentence choice (run as its command line)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "recipes" / "fresh_sentences.py"


def _run(tmp_path: Path, *args: str) -> list[str]:
    out = tmp_path / "out.txt"
    subprocess.run([sys.executable, str(SCRIPT), *args, "--out", str(out)], check=True, capture_output=True)
    return out.read_text(encoding="utf-8").splitlines()


def test_new_sentences_leave_out_every_avoided_text_and_keep_the_source_lines(tmp_path: Path) -> None:
    pool = tmp_path / "pool.txt"
    pool.write_text(
        "# source: bible, read prose; licence: public domain\n"
        "In the beginning was the Word.\n"  # avoided by a text file (as a raw sentence)
        "Turn the lights on please.\n"  # avoided by a manifest (as a label)
        "Too short.\n"  # fewer than 3 words
        "And God saw the light, that it was good.\n"
        "And God saw the light, that it was good.\n"  # a repeat
        "The evening and the morning were the first day.\n",
        encoding="utf-8",
    )
    avoid = tmp_path / "avoid.txt"
    avoid.write_text("In the beginning was the word\n", encoding="utf-8")
    manifest = tmp_path / "dev.jsonl"
    manifest.write_text(
        json.dumps({"audio_filepath": "a.wav", "duration": 1.0, "text": "turn the lights on please"}) + "\n"
    )
    lines = _run(
        tmp_path, "--seed", "1", "--pool", f"{pool}=10", "--avoid", str(avoid), "--avoid-manifest", str(manifest)
    )
    assert lines[0] == "# source: bible, read prose; licence: public domain"
    assert sorted(lines[1:]) == [
        "And God saw the light, that it was good.",
        "The evening and the morning were the first day.",
    ]


def test_pools_take_their_counts_and_the_seed_decides_the_order(tmp_path: Path) -> None:
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("".join(f"quotation number {n} is here\n" for n in range(20)), encoding="utf-8")
    b.write_text("".join(f"prose sentence {n} goes on\n" for n in range(20)), encoding="utf-8")
    first = _run(tmp_path, "--seed", "3", "--pool", f"{a}=4", "--pool", f"{b}=2")
    assert len(first) == 6
    assert sum(s.startswith("quotation") for s in first) == 4 and sum(s.startswith("prose") for s in first) == 2
    assert _run(tmp_path, "--seed", "3", "--pool", f"{a}=4", "--pool", f"{b}=2") == first
    assert _run(tmp_path, "--seed", "4", "--pool", f"{a}=4", "--pool", f"{b}=2") != first
