"""The ``edgeasr`` command line (also ``python -m edgeasr``).

Sub-commands, each with ``--help`` showing its defaults, each owned by its stage:

    edgeasr demo         the shipped default model on the shipped samples    (training)
    edgeasr data ...     synthesize, import, normalize and validate corpora  (data)
    edgeasr train        train a CTC model by a recipe                       (training)
    edgeasr lm           build the word n-gram the beam-search decoder uses  (training)
    edgeasr eval         WER/CER per split of a model                        (training)
    edgeasr export       export a checkpoint (checked) into the repository   (export)
    edgeasr serve        run the real Triton server on a model repository    (serving)
    edgeasr transcribe   audio files to text, on device or through Triton    (runtime core)
    edgeasr bench        accuracy, latency and throughput against budgets    (bench)
    edgeasr canary ...   shadow traffic and staged rollouts                  (canary)

This module only assembles the parser: each stage registers its commands with the ``add_parser``
of its ``cli`` module, and every handler imports its stage's heavy modules (torch, tritonclient,
the TTS engines) when it runs, so ``edgeasr transcribe`` on a device never loads torch.
"""

from __future__ import annotations

import argparse
import json
import sys

from edgeasr.bench import cli as bench_cli
from edgeasr.canary import cli as canary_cli
from edgeasr.data import cli as data_cli
from edgeasr.export import cli as export_cli
from edgeasr.monitor import cli as monitor_cli
from edgeasr.serving import cli as serving_cli
from edgeasr.training import cli as training_cli

__all__ = ["build_parser", "main"]

_FMT = argparse.ArgumentDefaultsHelpFormatter


def _print_result(args: argparse.Namespace, audio: str, text: str, latency: float, extra: dict | None = None) -> None:
    if args.json:
        print(json.dumps({"audio": audio, "text": text, "latency_ms": round(1000 * latency, 2), **(extra or {})}))
    else:
        print(f"{audio}\t{text}")


def _naming(audio: str, exc: Exception) -> str:
    """The error's message, in one line, starting with the file it is about."""
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return message if message.startswith(audio) else f"{audio}: {message}"


def _cmd_transcribe(args: argparse.Namespace) -> int:
    from edgeasr.audio import AudioError
    from edgeasr.decoding import BIAS_BOOST, bias_boost

    try:
        boost = bias_boost(BIAS_BOOST if args.bias_boost is None else args.bias_boost)
    except ValueError as exc:
        print(f"edgeasr transcribe: {exc}", file=sys.stderr)
        return 2
    failures = 0
    if args.url:
        sent = None if args.bias_boost is None else boost  # absent: the server's default
        from edgeasr.audio import load_audio
        from edgeasr.client import ClientError, TritonClient

        client = TritonClient(args.url, args.model_name, args.model_version)
        for audio in args.audio:
            try:
                res = client.transcribe(load_audio(audio), bias=args.bias, bias_boost=sent)
            except (AudioError, ClientError) as exc:
                print(f"edgeasr transcribe: {_naming(audio, exc)}", file=sys.stderr)
                failures += 1
                continue
            _print_result(args, audio, res.text, res.latency_s, {"model_version": res.model_version})
        return 1 if failures else 0
    from edgeasr.recognizer import Recognizer, RecognizerOptions

    try:
        rec = Recognizer(args.model, RecognizerOptions(threads=args.threads, decoder=args.decoder))
    except (FileNotFoundError, RuntimeError) as exc:
        print(f"edgeasr transcribe: cannot load model: {exc}", file=sys.stderr)
        return 2
    for audio in args.audio:
        try:
            res = rec.transcribe(audio, bias=args.bias, bias_boost=boost)
        except AudioError as exc:
            print(f"edgeasr transcribe: {_naming(audio, exc)}", file=sys.stderr)
            failures += 1
            continue
        extra = {"words": [[w.text, round(w.start, 2), round(w.end, 2)] for w in res.words]} if args.words else None
        _print_result(args, audio, res.text, res.latency_s, extra)
    return 1 if failures else 0


def _add_transcribe(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("transcribe", help="audio files to text", formatter_class=_FMT)
    p.add_argument("audio", nargs="+", help="audio files")
    p.add_argument(
        "--model", default=training_cli.DEFAULT_MODEL, help="on-device model (dir, version dir, bundle or .onnx)"
    )
    p.add_argument("--url", default=None, help="Triton gRPC HOST:PORT; when given, transcribe through Triton")
    p.add_argument("--model-name", default="edgeasr", help="Triton model name (with --url)")
    p.add_argument("--model-version", default="", help="Triton model version (with --url; empty: latest)")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime threads (on device)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--words", action="store_true", help="include per-word timestamps (on device, with --json)")
    p.add_argument(
        "--bias",
        action="append",
        default=[],
        metavar="PHRASE",
        help="a phrase to favour (a contact or device name; repeatable): its words become possible even "
        "outside the lexicon (beam search, on device and through Triton)",
    )
    p.add_argument(
        "--bias-boost",
        type=str,
        default=None,
        metavar="LOG10",
        help="how strongly to favour the --bias phrases: log10 bonus per word, 0 to 10 (0: possible, not "
        "favoured; default: edgeasr.decoding.BIAS_BOOST, 2)",
    )
    training_cli.add_decoder_argument(p, where="on device: ")
    p.set_defaults(func=_cmd_transcribe)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    from edgeasr import __version__

    parser = argparse.ArgumentParser(prog="edgeasr", description=__doc__.split("\n\n")[0], formatter_class=_FMT)
    parser.add_argument("--version", action="version", version=f"edgeasr {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    training_cli.add_parser(sub)
    data_cli.add_parser(sub)
    export_cli.add_parser(sub)
    serving_cli.add_parser(sub)
    _add_transcribe(sub)
    bench_cli.add_parser(sub)
    canary_cli.add_parser(sub)
    monitor_cli.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except FileNotFoundError as exc:
        print(f"edgeasr {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
