"""The ``edgeasr`` command line (also ``python -m edgeasr``).

Sub-commands, each with ``--help`` showing its defaults:

    edgeasr demo         the shipped default model on the shipped samples: transcripts, WER, latency
    edgeasr data ...     synthesize, import, normalize and validate corpora
    edgeasr train        train a CTC model by a recipe
    edgeasr lm           build the word n-gram the beam-search decoder uses
    edgeasr export       export a checkpoint (checked) into the Triton repository or a device bundle
    edgeasr serve        run the real Triton server on a model repository
    edgeasr transcribe   audio files to text, on device or through Triton (--url)
    edgeasr eval         WER/CER per split of a model
    edgeasr bench        accuracy, latency and throughput over a manifest, against budgets
    edgeasr canary ...   shadow traffic and staged rollouts that compare what versions say

Heavy imports (torch, tritonclient) happen inside the handlers, so ``edgeasr transcribe`` on a
device never loads torch.
"""

from __future__ import annotations

import argparse
import json
import sys

__all__ = ["build_parser", "main"]

_FMT = argparse.ArgumentDefaultsHelpFormatter
DEFAULT_MODEL = "triton_models/edgeasr"


def _cmd_train(args: argparse.Namespace) -> int:
    from edgeasr.recipe import TrainRecipe
    from edgeasr.train import train

    recipe = TrainRecipe.from_toml(args.recipe)
    out = args.out or f"runs/{recipe.name}"
    result = train(
        recipe, out, resume=args.resume, init=args.init, max_steps=args.max_steps, max_minutes=args.max_minutes
    )
    print(f"best dev WER {100 * result.best_dev_wer:.2f}% after {result.steps} steps: {result.best_checkpoint}")
    return 0


def _cmd_lm(args: argparse.Namespace) -> int:
    from edgeasr.language_model import NGramModel, sentences_from_manifests
    from edgeasr.prompts import load_text_list

    sentences = sentences_from_manifests(args.manifests)
    for path in args.text or []:
        listed = load_text_list(path)
        for bad in listed.rejected:
            print(f"edgeasr lm: {path}:{bad['line']}: skipped ({bad['reason']})", file=sys.stderr)
        sentences += listed.sentences
    held = set(sentences_from_manifests(args.hold_out))
    kept = [s for s in sentences if s not in held]
    try:
        model = NGramModel.estimate(kept, order=args.order)
    except ValueError as exc:
        print(f"edgeasr lm: {exc} (give manifests with text, or --text files)", file=sys.stderr)
        return 2
    model.write_arpa(args.out)
    sizes = ", ".join(f"{len(t)} {n}-grams" for n, t in enumerate(model.entries, 1))
    print(
        f"{args.out}: {len(model.vocabulary)} words, {sizes} from {model.sentences} sentences "
        f"({len(sentences) - len(kept)} held-out sentences dropped)"
    )
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from edgeasr.export import ExportCheckError, ExportTarget, export_checkpoint

    target = ExportTarget.from_toml(args.target)
    try:
        result = export_checkpoint(
            args.checkpoint,
            target,
            check_manifest=args.check_manifest,
            repository=args.repository,
            repository_toml=args.target,
            out=args.out,
        )
    except ExportCheckError as exc:
        print(f"edgeasr export: check failed, nothing written: {exc}", file=sys.stderr)
        return 3
    where = f"version {result.version} at {result.path}" if result.version else str(result.path)
    print(f"exported {target.name}: {where}")
    return 0


def _print_result(args: argparse.Namespace, audio: str, text: str, latency: float, extra: dict | None = None) -> None:
    if args.json:
        print(json.dumps({"audio": audio, "text": text, "latency_ms": round(1000 * latency, 2), **(extra or {})}))
    else:
        print(f"{audio}\t{text}")


def _cmd_transcribe(args: argparse.Namespace) -> int:
    from edgeasr.audio import AudioError

    failures = 0
    if args.url:
        from edgeasr.client import ClientError, TritonClient

        client = TritonClient(args.url, args.model_name, args.model_version)
        for audio in args.audio:
            try:
                res = client.transcribe_file(audio)
            except (AudioError, ClientError) as exc:
                print(f"edgeasr transcribe: {exc}", file=sys.stderr)
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
            res = rec.transcribe(audio)
        except AudioError as exc:
            print(f"edgeasr transcribe: {exc}", file=sys.stderr)
            failures += 1
            continue
        extra = {"words": [[w.text, round(w.start, 2), round(w.end, 2)] for w in res.words]} if args.words else None
        _print_result(args, audio, res.text, res.latency_s, extra)
    return 1 if failures else 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from edgeasr.bench import run_bench_command

    return run_bench_command(args)


def _cmd_eval(args: argparse.Namespace) -> int:
    from edgeasr.evaluate import run_eval_command

    return run_eval_command(args)


def _cmd_demo(args: argparse.Namespace) -> int:
    from edgeasr.evaluate import run_demo

    return run_demo(args.model, args.manifest, threads=args.threads)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    parser = argparse.ArgumentParser(prog="edgeasr", description=__doc__.split("\n\n")[0], formatter_class=_FMT)
    from edgeasr import __version__

    parser.add_argument("--version", action="version", version=f"edgeasr {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("demo", help="run the shipped default model on the shipped samples", formatter_class=_FMT)
    p.add_argument("--model", default=DEFAULT_MODEL, help="model dir, version dir, bundle or .onnx")
    p.add_argument("--manifest", default="samples/manifest.jsonl", help="samples with reference texts")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime threads")
    p.set_defaults(func=_cmd_demo)

    try:
        from edgeasr.data_cli import add_data_parser
    except ImportError:  # pragma: no cover - the data stage is part of the package
        add_data_parser = None
    if add_data_parser is not None:
        add_data_parser(sub)

    p = sub.add_parser("train", help="train a CTC model by a recipe", formatter_class=_FMT)
    p.add_argument("--recipe", default="recipes/default.toml", help="training recipe (TOML)")
    p.add_argument("--out", default=None, help="run folder (default: runs/<recipe name>)")
    p.add_argument("--resume", action="store_true", help="continue from <out>/last.pt")
    p.add_argument("--init", default=None, help="start from this checkpoint's weights (fine-tuning)")
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many steps in total")
    p.add_argument(
        "--max-minutes", type=float, default=None, help="stop after this many minutes of training in this run"
    )
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser(
        "lm",
        help="build the word n-gram (ARPA) for the beam-search decoder",
        formatter_class=_FMT,
        description="Estimate an interpolated Kneser-Ney word n-gram from manifest texts (and your own "
        "sentences) and write it as ARPA; an export target with decoder = 'beam' ships it (edgeasr.language_model).",
    )
    p.add_argument("manifests", nargs="*", default=[], help="manifests whose text fields are the training text")
    p.add_argument("--text", action="append", help="a file of your own sentences, one per line; repeatable")
    p.add_argument("--hold-out", action="append", default=[], help="drop every sentence of this manifest; repeatable")
    p.add_argument("--order", type=int, default=4, help="longest n-gram")
    p.add_argument("--out", default="work/lm/lm.arpa", help="ARPA file to write")
    p.set_defaults(func=_cmd_lm)

    p = sub.add_parser("export", help="export a checkpoint, checked, into a Triton repository", formatter_class=_FMT)
    p.add_argument("checkpoint", help="best.pt from edgeasr train")
    p.add_argument("--target", default="export/cpu-fp32.toml", help="export target (TOML)")
    p.add_argument("--repository", default="triton_models", help="Triton model repository")
    p.add_argument("--check-manifest", default=None, help="utterances for the checks (default: the recipe's dev set)")
    p.add_argument("--out", default=None, help="bundle folder for format=edge targets")
    p.set_defaults(func=_cmd_export)

    from edgeasr.server import add_serve_parser

    add_serve_parser(sub)

    p = sub.add_parser("transcribe", help="audio files to text", formatter_class=_FMT)
    p.add_argument("audio", nargs="+", help="audio files")
    p.add_argument("--model", default=DEFAULT_MODEL, help="on-device model (dir, version dir, bundle or .onnx)")
    p.add_argument("--url", default=None, help="Triton gRPC HOST:PORT; when given, transcribe through Triton")
    p.add_argument("--model-name", default="edgeasr", help="Triton model name (with --url)")
    p.add_argument("--model-version", default="", help="Triton model version (with --url; empty: latest)")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime threads (on device)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--words", action="store_true", help="include per-word timestamps (on device, with --json)")
    p.add_argument(
        "--decoder",
        choices=("auto", "greedy", "beam"),
        default="auto",
        help="on device: auto uses the beam search when the model ships one",
    )
    p.set_defaults(func=_cmd_transcribe)

    p = sub.add_parser("eval", help="WER and CER per split", formatter_class=_FMT)
    p.add_argument("manifests", nargs="+", help="NAME=MANIFEST pairs or manifests (named by file stem)")
    p.add_argument("--model", default=DEFAULT_MODEL, help="model to evaluate")
    p.add_argument("--noise-snr", default="20,10,5", help="also evaluate noisy copies at these SNRs (dB); empty: none")
    p.add_argument("--worst", type=int, default=10, help="list this many worst utterances")
    p.add_argument(
        "--group-by", default="engine", help="also score each split per value of this manifest field ('': none)"
    )
    p.add_argument("--out", default=None, help="write the report as JSON here")
    p.add_argument("--threads", type=int, default=2, help="onnxruntime threads")
    p.add_argument(
        "--decoder",
        choices=("auto", "greedy", "beam"),
        default="auto",
        help="auto uses the beam search when the model ships one",
    )
    p.set_defaults(func=_cmd_eval)

    from edgeasr.bench import add_bench_arguments

    p = sub.add_parser("bench", help="accuracy, latency and throughput against budgets", formatter_class=_FMT)
    add_bench_arguments(p)
    p.set_defaults(func=_cmd_bench)

    from edgeasr.canary import add_canary_parser

    add_canary_parser(sub)
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
