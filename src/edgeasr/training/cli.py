"""``edgeasr train``, ``average``, ``lm``, ``eval`` and ``demo``: the training stage's commands."""

from __future__ import annotations

import argparse
import sys

__all__ = ["DEFAULT_MODEL", "add_decoder_argument", "add_parser"]

_FMT = argparse.ArgumentDefaultsHelpFormatter
DEFAULT_MODEL = "triton_models/edgeasr"
"""The shipped default model: what ``demo`` and ``eval`` run when no ``--model`` is given."""


def _cmd_train(args: argparse.Namespace) -> int:
    from edgeasr.training.recipe import TrainRecipe
    from edgeasr.training.train import train

    recipe = TrainRecipe.from_toml(args.recipe)
    out = args.out or f"runs/{recipe.name}"
    result = train(
        recipe,
        out,
        resume=args.resume,
        init=args.init,
        max_steps=args.max_steps,
        max_minutes=args.max_minutes,
        fit_schedule=args.fit_schedule,
    )
    print(f"best dev WER {100 * result.best_dev_wer:.2f}% after {result.steps} steps: {result.best_checkpoint}")
    return 0


def _cmd_average(args: argparse.Namespace) -> int:
    import torch

    from edgeasr.training.average import average_checkpoints, toward_pretrained

    try:
        least = 1 if args.toward_pretrained > 0 else 2
        averaged = average_checkpoints(args.checkpoints, name=args.name, least=least)
        if args.toward_pretrained > 0:
            averaged = toward_pretrained(averaged, args.toward_pretrained)
    except (ValueError, OSError) as exc:
        print(f"edgeasr average: {exc}", file=sys.stderr)
        return 2
    torch.save(averaged, args.out)
    moved = f", its encoder {args.toward_pretrained:g} of the way back to its own" if args.toward_pretrained > 0 else ""
    what = f"the mean of {len(args.checkpoints)} checkpoints" if len(args.checkpoints) > 1 else args.checkpoints[0]
    print(f"{args.out}: {what}{moved} ({averaged['recipe']['name']})")
    return 0


def _cmd_lm(args: argparse.Namespace) -> int:
    from edgeasr.data.prompts import load_text_list
    from edgeasr.training.language_model import NGramModel, general_english_unigrams, sentences_from_manifests

    sentences = sentences_from_manifests(args.manifests)
    for path in args.text or []:
        listed = load_text_list(path)
        for bad in listed.rejected:
            print(f"edgeasr lm: {path}:{bad['line']}: skipped ({bad['reason']})", file=sys.stderr)
        sentences += listed.sentences
    held = set(sentences_from_manifests(args.hold_out))
    kept = [s for s in sentences if s not in held]
    background = general_english_unigrams(args.general_vocabulary) if args.general_vocabulary > 0 else None
    try:
        model = NGramModel.estimate(
            kept,
            order=args.order,
            background=background,
            background_weight=args.general_weight,
            prune=args.prune or (),
        )
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


def _cmd_eval(args: argparse.Namespace) -> int:
    from edgeasr.training.evaluate import run_eval_command

    return run_eval_command(args)


def _cmd_demo(args: argparse.Namespace) -> int:
    from edgeasr.training.evaluate import run_demo

    manifests = args.manifest or ["samples/manifest.jsonl", "samples/real/manifest.jsonl"]
    return run_demo(args.model, manifests, threads=args.threads)


def add_decoder_argument(p: argparse.ArgumentParser, where: str = "") -> None:
    """``--decoder auto|greedy|beam``, as ``eval`` and ``transcribe`` take it (``where`` prefixes the help)."""
    p.add_argument(
        "--decoder",
        choices=("auto", "greedy", "beam"),
        default="auto",
        help=f"{where}auto uses the beam search when the model ships one",
    )


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``demo``, ``train``, ``average``, ``lm`` and ``eval`` on the command line's subparsers."""
    p = subparsers.add_parser("demo", help="run the shipped default model on the shipped samples", formatter_class=_FMT)
    p.add_argument("--model", default=DEFAULT_MODEL, help="model dir, version dir, bundle or .onnx")
    p.add_argument(
        "--manifest",
        action="append",
        default=None,
        help="samples with reference texts; repeat for more (default: samples/manifest.jsonl, synthetic commands, "
        "and samples/real/manifest.jsonl, real people)",
    )
    p.add_argument("--threads", type=int, default=1, help="onnxruntime threads")
    p.set_defaults(func=_cmd_demo)

    p = subparsers.add_parser("train", help="train a CTC model by a recipe", formatter_class=_FMT)
    p.add_argument("--recipe", default="recipes/default.toml", help="training recipe (TOML)")
    p.add_argument("--out", default=None, help="run folder (default: runs/<recipe name>)")
    p.add_argument("--resume", action="store_true", help="continue from <out>/last.pt")
    p.add_argument("--init", default=None, help="start from this checkpoint's weights (fine-tuning)")
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many steps in total")
    p.add_argument(
        "--max-minutes", type=float, default=None, help="stop after this many minutes of training in this run"
    )
    p.add_argument(
        "--fit-schedule",
        action="store_true",
        help="fit the learning-rate schedule to --max-minutes (pace measured over the run's first 120 steps) "
        "instead of the recipe's max_steps: for a machine lent for a fixed time",
    )
    p.set_defaults(func=_cmd_train)

    p = subparsers.add_parser(
        "average",
        help="average the weights of checkpoints of one model (a model soup)",
        formatter_class=_FMT,
        description="The uniform mean of the checkpoints' weights (edgeasr.training.average): runs trained on "
        "from one parent with other seeds or stages; export it like any checkpoint.",
    )
    p.add_argument("checkpoints", nargs="+", help="checkpoints whose recipes build the same model (two or more)")
    p.add_argument("--out", required=True, help="checkpoint to write")
    p.add_argument("--name", default=None, help="recipe name it carries (default: the first's with -average)")
    p.add_argument(
        "--toward-pretrained",
        type=float,
        default=0.0,
        metavar="SHARE",
        help="then move the trained pretrained-encoder weights this share of the way back to the encoder's own "
        "(WiSE-FT; 0: not at all); with a share, one checkpoint is enough",
    )
    p.set_defaults(func=_cmd_average)

    p = subparsers.add_parser(
        "lm",
        help="build the word n-gram (ARPA) for the beam-search decoder",
        formatter_class=_FMT,
        description="Estimate an interpolated Kneser-Ney word n-gram from manifest texts (and your own "
        "sentences) and write it as ARPA; an export target with decoder = 'beam' ships it "
        "(edgeasr.training.language_model).",
    )
    p.add_argument("manifests", nargs="*", default=[], help="manifests whose text fields are the training text")
    p.add_argument("--text", action="append", help="a file of your own sentences, one per line; repeatable")
    p.add_argument("--hold-out", action="append", default=[], help="drop every sentence of this manifest; repeatable")
    p.add_argument("--order", type=int, default=4, help="longest n-gram")
    p.add_argument(
        "--prune",
        type=int,
        nargs="+",
        default=None,
        metavar="N",
        help="count cut-offs per order from the unigrams on, the last repeating (0 1: drop n-grams of order 2 and "
        "up seen once; back-off weights are computed again over what is kept); default: keep everything",
    )
    p.add_argument(
        "--general-vocabulary",
        type=int,
        default=0,
        help="mix the N most frequent English words (wordfreq) into the unigrams: an open vocabulary (0: none)",
    )
    p.add_argument(
        "--general-weight", type=float, default=0.1, help="weight of the general English words in the unigrams"
    )
    p.add_argument(
        "--out",
        default="work/lm/lm.arpa",
        help="ARPA file to write (a name ending in .gz: gzip-compressed, which the decoder reads as well)",
    )
    p.set_defaults(func=_cmd_lm)

    p = subparsers.add_parser("eval", help="WER and CER per split", formatter_class=_FMT)
    p.add_argument("manifests", nargs="+", help="NAME=MANIFEST pairs or manifests (named by file stem)")
    p.add_argument("--model", default=DEFAULT_MODEL, help="model to evaluate")
    p.add_argument("--noise-snr", default="20,10,5", help="also evaluate noisy copies at these SNRs (dB); empty: none")
    p.add_argument(
        "--conditions",
        default="",
        help="also evaluate under these listening conditions, e.g. 'level=-40,-20;silence=2;tempo=0.8;telephone;"
        "reverb=0.6;noise=10' (edgeasr.training.conditions; 'default' is the model card's sweep)",
    )
    p.add_argument(
        "--peers",
        default="",
        help="also score the same audio with these recognizers: pocketsphinx, whisper-tiny-en (comma-separated)",
    )
    p.add_argument("--worst", type=int, default=10, help="list this many worst utterances")
    p.add_argument(
        "--group-by",
        default="engine",
        help="also score each split per value of this manifest field ('': none); FIELD:SEP groups by the part "
        "before the first SEP ('speaker:-': per real-speech corpus)",
    )
    p.add_argument(
        "--allow-outside",
        action="store_true",
        help="read audio a manifest names outside its own folder (refused otherwise)",
    )
    p.add_argument("--out", default=None, help="write the report as JSON here")
    p.add_argument("--threads", type=int, default=2, help="onnxruntime threads")
    add_decoder_argument(p)
    p.set_defaults(func=_cmd_eval)
