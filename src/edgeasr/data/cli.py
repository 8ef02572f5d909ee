"""``edgeasr data``: the data stage's command line (synth, normalize, import, validate, merge, split, sentences).

:func:`add_parser` registers the ``data`` command on the main parser's sub-parsers; each
sub-command's handler returns the process exit code (0 success, 1 problems found in the data,
2 bad usage or unusable input). Heavy modules are imported inside the handlers so that
``edgeasr --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["add_parser", "main"]

_FMT = argparse.ArgumentDefaultsHelpFormatter
_ALL_ENGINES = "espeak-ng,flite,festival,piper,hibari,kokoro"  # edgeasr.data.synth.ALL_ENGINES, without importing it


def _floats(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected two numbers like 0.9,1.1, got {text!r}") from None
    return (lo, hi)


def _weights(text: str) -> tuple[tuple[str, float], ...]:
    out = []
    for item in filter(None, (x.strip() for x in text.split(","))):
        name, _, value = item.partition("=")
        try:
            out.append((name, float(value)))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected ENGINE=WEIGHT pairs, got {item!r}") from None
    return tuple(out)


def _add_condition_args(p: argparse.ArgumentParser) -> None:
    from edgeasr.data.conditioning import ConditionOptions

    d = ConditionOptions()
    g = p.add_argument_group("audio conditioning (see edgeasr.data.conditioning)")
    g.add_argument("--no-trim", action="store_true", help="keep leading/trailing silence as it is")
    g.add_argument("--margin", type=float, default=d.margin_s, help="silence kept at each end after trimming (s)")
    g.add_argument(
        "--silence-threshold",
        type=float,
        default=d.relative_threshold_db,
        help="a frame is speech within this many dB of the loudest frame",
    )
    g.add_argument("--no-loudness", action="store_true", help="do not normalise loudness")
    g.add_argument(
        "--target-dbfs",
        type=float,
        default=d.target_dbfs,
        help="loudness target: RMS over speech frames (dBFS)",
    )


def _condition_options(args: argparse.Namespace):
    from edgeasr.data.conditioning import ConditionOptions

    return ConditionOptions(
        trim=not args.no_trim,
        margin_s=args.margin,
        relative_threshold_db=args.silence_threshold,
        normalize=not args.no_loudness,
        target_dbfs=args.target_dbfs,
    )


def _add_normalize_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("labelling convention (see edgeasr.text)")
    g.add_argument(
        "--fillers",
        choices=("remove", "keep"),
        default="remove",
        help="drop um/uh/er/hmm, or keep each as one canonical token",
    )


# ----------------------------------------------------------------------------------------------
# Handlers
# ----------------------------------------------------------------------------------------------


def _cmd_synth(args: argparse.Namespace) -> int:
    from edgeasr.data.synth import ENGINES, EngineUnavailable, SynthOptions, available_engines, synthesize_corpus

    engines = tuple(e.strip() for e in args.engines.split(",") if e.strip())
    if args.list_engines:
        for name, reason in available_engines(ENGINES).items():
            print(f"{name:10s} {'available' if reason is None else 'unavailable: ' + reason}")
        return 0
    if args.out is None:
        print("edgeasr data synth: --out is required", file=sys.stderr)
        return 2
    try:
        options = SynthOptions(
            num_sentences=args.num_sentences,
            text_file=args.text,
            engines=engines,
            engine_weights=args.engine_weights,
            max_voices_per_engine=args.max_voices_per_engine,
            voices=tuple(v.strip() for v in args.voices.split(",") if v.strip()),
            per_sentence=args.per_sentence,
            seed=args.seed,
            dev_fraction=args.dev_fraction,
            test_fraction=args.test_fraction,
            speed_range=args.speed_range,
            pitch_range=args.pitch_range,
            condition=_condition_options(args),
        )
        summary = synthesize_corpus(
            args.out,
            options,
            workers=args.workers,
            batch_size=args.batch_size,
            progress=not args.quiet,
            strict_engines=args.strict_engines,
            splits=tuple(x.strip() for x in args.splits.split(",") if x.strip()),
        )
    except (ValueError, EngineUnavailable, OSError) as exc:
        print(f"edgeasr data synth: {exc}", file=sys.stderr)
        return 2
    if summary.rejected_text:
        print(
            f"warning: {summary.rejected_text} lines of {args.text} not used (rejected_text.jsonl)",
            file=sys.stderr,
        )
    for name, reason in summary.unavailable.items():
        print(f"warning: engine {name} skipped: {reason}", file=sys.stderr)
    print(
        f"{summary.out_dir}: {', '.join(f'{k} {v}' for k, v in summary.counts.items())} "
        f"utterances from {summary.voices} voices "
        f"({', '.join(f'{k} {v}' for k, v in sorted(summary.engines.items()))}); "
        f"{summary.failed} failed (failures.jsonl), {summary.skipped_existing} resumed, "
        f"{summary.seconds:.1f} s"
    )
    return 1 if summary.failed else 0


def _cmd_normalize(args: argparse.Namespace) -> int:
    from edgeasr.manifest import read_manifest, write_manifest
    from edgeasr.text import NormalizeOptions, TextNormalizationError, normalize_text

    options = NormalizeOptions(fillers=args.fillers)
    if args.text is not None:
        try:
            print(normalize_text(args.text, options))
        except TextNormalizationError as exc:
            print(f"edgeasr data normalize: {exc}", file=sys.stderr)
            return 1
        return 0
    if args.input is None:
        print("edgeasr data normalize: give INPUT (a .jsonl manifest or a text file) or --text", file=sys.stderr)
        return 2
    src = Path(args.input)
    problems = 0
    try:
        if src.suffix == ".jsonl":
            rows = read_manifest(src)
            out_rows = []
            for i, row in enumerate(rows, 1):
                try:
                    out_rows.append({**row, "text": normalize_text(str(row.get("text", "")), options)})
                except TextNormalizationError as exc:
                    problems += 1
                    print(f"{src}:{i}: {exc}", file=sys.stderr)
                    out_rows.append(row)
            dest = Path(args.out) if args.out else src
            version = write_manifest(out_rows, dest)
            print(f"{dest}: {len(rows)} rows, {problems} with unknown characters (left unchanged); {version}")
        else:
            lines = src.read_text(encoding="utf-8").splitlines()
            out_lines = []
            for i, line in enumerate(lines, 1):
                try:
                    out_lines.append(normalize_text(line, options))
                except TextNormalizationError as exc:
                    problems += 1
                    print(f"{src}:{i}: {exc}", file=sys.stderr)
                    out_lines.append(line)
            text = "\n".join(out_lines) + ("\n" if out_lines else "")
            if args.out:
                Path(args.out).write_text(text, encoding="utf-8")
            else:
                sys.stdout.write(text)
    except (OSError, ValueError) as exc:
        print(f"edgeasr data normalize: {exc}", file=sys.stderr)
        return 2
    return 1 if problems else 0


def _cmd_import(args: argparse.Namespace) -> int:
    from edgeasr.data.importers import ImportOptions, import_corpus, read_path_list

    try:
        only = read_path_list(args.only_list) if args.only_list else frozenset()
        exclude = read_path_list(args.exclude_list) if args.exclude_list else frozenset()
        summary = import_corpus(
            args.source,
            args.out,
            ImportOptions(
                layout=args.layout,
                condition=_condition_options(args),
                workers=args.workers,
                split=args.split,
                max_rows=args.limit,
                only=only,
                exclude=exclude,
            ),
            progress=not args.quiet,
        )
    except (ValueError, OSError) as exc:
        print(f"edgeasr data import: {exc}", file=sys.stderr)
        return 2
    print(summary.describe())
    return 1 if summary.rejected else 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from edgeasr.data.validate import ValidateOptions, validate_manifest

    options = ValidateOptions(
        min_duration_s=args.min_duration,
        max_duration_s=args.max_duration,
        max_leading_silence_s=args.max_silence,
        max_trailing_silence_s=args.max_silence,
        fail_on_warnings=args.strict,
        allow_outside=args.allow_outside,
    )
    try:
        report = validate_manifest(args.manifest, options, progress=not args.quiet)
    except (ValueError, OSError) as exc:
        print(f"edgeasr data validate: {exc}", file=sys.stderr)
        return 2
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n")
    if args.profile:
        Path(args.profile).write_text(json.dumps(report.profile, indent=2) + "\n")
    print(report.table())
    return report.exit_code


def _cmd_merge(args: argparse.Namespace) -> int:
    from edgeasr.manifest import merge_manifests

    try:
        version, counts = merge_manifests(
            args.manifests, args.out, hold_out=args.hold_out, only_sentences_of=args.only_sentences_of
        )
    except (ValueError, OSError) as exc:
        print(f"edgeasr data merge: {exc}", file=sys.stderr)
        return 2
    print(
        f"{args.out}: {counts['kept']} rows (data version {version}); dropped {counts['held_out_text']} "
        f"with a held-out sentence, {counts['held_out_voice']} with a held-out voice, "
        f"{counts['duplicates']} duplicates, {counts['not_selected']} not selected"
    )
    return 0


def _cmd_sentences(args: argparse.Namespace) -> int:
    from edgeasr.data.text_sources import TEXT_SOURCES, source_sentences

    try:
        sentences = source_sentences(
            args.source, args.num or None, seed=args.seed, min_words=args.min_words, max_words=args.max_words
        )
    except FileNotFoundError as exc:
        print(f"edgeasr data sentences: {exc}", file=sys.stderr)
        return 2
    src = TEXT_SOURCES[args.source]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    header = f"# source: {src.name}, {src.kind}; licence: {src.licence}\n"  # prompts.TEXT_SOURCE_LINE
    Path(args.out).write_text(header + "".join(s + "\n" for s in sentences), encoding="utf-8")
    use = "held-out evaluation text" if src.held_out else "training prompts"
    print(f"{args.out}: {len(sentences)} sentences from {args.source} ({src.kind}; {src.licence}; for {use})")
    return 0


def _cmd_split(args: argparse.Namespace) -> int:
    from edgeasr.manifest import split_manifest

    try:
        counts = split_manifest(args.manifest, args.out, args.held_out, by=args.by, fraction=args.fraction)
    except (ValueError, OSError) as exc:
        print(f"edgeasr data split: {exc}", file=sys.stderr)
        return 2
    print(f"{args.out}: {counts['kept']} rows; {args.held_out}: {counts['held_out']} rows (no {args.by} on both)")
    return 0


# ----------------------------------------------------------------------------------------------
# Parser
# ----------------------------------------------------------------------------------------------


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``data`` and its sub-commands on the main parser's sub-parsers.

    Args:
        subparsers: what ``ArgumentParser.add_subparsers()`` returned; every leaf parser gets
            ``func`` set to a handler ``(args) -> int``.
    """
    data = subparsers.add_parser(
        "data",
        help="build, import, normalize and validate speech data",
        description=__doc__.splitlines()[0],
        formatter_class=_FMT,
    )
    sub = data.add_subparsers(dest="data_command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser(
        "synth",
        help="synthesize a labelled corpus with local TTS voices",
        formatter_class=_FMT,
        description="Synthesize train/dev/test manifests and 16 kHz WAVs (see edgeasr.data.synth).",
    )
    p.add_argument("--out", help="corpus folder (created; an interrupted run resumes here)")
    p.add_argument("--num-sentences", type=int, default=1000, help="distinct in-domain prompts to generate")
    p.add_argument("--text", help="your own sentences, one per line, instead of generated prompts")
    p.add_argument("--engines", default=_ALL_ENGINES, help="comma-separated engines (see --list-engines)")
    p.add_argument("--list-engines", action="store_true", help="list engines and whether they run here")
    p.add_argument(
        "--engine-weights", type=_weights, default=(), help="override shares, e.g. espeak-ng=0.5,kokoro=0.02"
    )
    p.add_argument("--max-voices-per-engine", type=int, default=0, help="cap voices per engine (0: all)")
    p.add_argument(
        "--voices",
        default="",
        help="only these voices: comma-separated shell patterns on voice ids or names, e.g. 'mbrola-mb-us?,mb-de1-en' "
        "(empty: every installed voice of the engines)",
    )
    p.add_argument("--per-sentence", type=int, default=1, help="voices speaking each sentence")
    p.add_argument("--seed", type=int, default=0, help="seed for prompts, splits, voices, speed and pitch")
    p.add_argument("--dev-fraction", type=float, default=0.05, help="share of sentences and voices for dev")
    p.add_argument("--test-fraction", type=float, default=0.05, help="share of sentences and voices for test")
    p.add_argument("--speed-range", type=_floats, default=(0.85, 1.15), help="tempo factor range, LO,HI")
    p.add_argument("--pitch-range", type=_floats, default=(-2.0, 2.0), help="pitch shift range (semitones)")
    p.add_argument("--workers", type=int, default=1, help="worker processes")
    p.add_argument("--batch-size", type=int, default=32, help="utterances per worker task (one voice each)")
    p.add_argument(
        "--splits", default="train,dev,test", help="splits to synthesize, e.g. test (the plan is the full corpus's)"
    )
    p.add_argument("--strict-engines", action="store_true", help="fail if an engine is unavailable")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_condition_args(p)
    p.set_defaults(func=_cmd_synth)

    p = sub.add_parser(
        "normalize",
        help="apply the labelling convention to text or a manifest",
        formatter_class=_FMT,
        description="Normalize labels (rules in edgeasr.text). Exit 1 if a line has unknown characters.",
    )
    p.add_argument("input", nargs="?", help="a .jsonl manifest (its text fields) or a text file (each line)")
    p.add_argument("--text", help="normalize this string and print it")
    p.add_argument("--out", help="write here (default: rewrite the manifest in place / print text to stdout)")
    _add_normalize_args(p)
    p.set_defaults(func=_cmd_normalize)

    p = sub.add_parser(
        "import",
        help="import an existing corpus as a 16 kHz manifest",
        formatter_class=_FMT,
        description="Import audio+text (folder of .wav/.txt pairs, LibriSpeech, Common Voice TSV, "
        "or a JSONL manifest), resampled to 16 kHz mono (see edgeasr.data.importers).",
    )
    p.add_argument("source", help="folder, LibriSpeech root, Common Voice .tsv, or .jsonl manifest")
    p.add_argument("--out", required=True, help="output folder (wavs/ and the manifest)")
    p.add_argument(
        "--layout",
        choices=("auto", "folder", "librispeech", "commonvoice", "jsonl"),
        default="auto",
        help="input layout",
    )
    p.add_argument("--split", default="train", help="manifest name and split field of the imported rows")
    p.add_argument("--limit", type=int, default=0, help="import at most this many rows (0: all)")
    p.add_argument("--only-list", default=None, help="import only the audio paths listed in this file (e.g. a dev.txt)")
    p.add_argument("--exclude-list", default=None, help="never import the audio paths listed in this file")
    p.add_argument("--workers", type=int, default=1, help="worker processes")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_condition_args(p)
    p.set_defaults(func=_cmd_import)

    p = sub.add_parser(
        "validate",
        help="check a manifest: schema, audio and statistics",
        formatter_class=_FMT,
        description="Validate a manifest (see edgeasr.data.validate). Exit 0 clean, 1 errors found "
        "(or warnings with --strict), 2 unusable input.",
    )
    p.add_argument("manifest", help="a JSONL manifest")
    p.add_argument("--json", help="write the full report here as JSON")
    p.add_argument("--profile", help="write the reference profile (distributions for drift checks) here")
    p.add_argument("--min-duration", type=float, default=0.3, help="shortest acceptable clip (s)")
    p.add_argument("--max-duration", type=float, default=20.0, help="longest acceptable clip (s)")
    p.add_argument("--max-silence", type=float, default=1.0, help="longest acceptable leading/trailing silence (s)")
    p.add_argument("--strict", action="store_true", help="exit 1 on warnings too")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--allow-outside", action="store_true", help="read audio the manifest names outside its own folder")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser(
        "sentences",
        help="labelled sentences from a general English text source (training prompts or held-out text)",
        formatter_class=_FMT,
        description="Write labelled sentences from a general English text source, one per line, for "
        "`edgeasr data synth --text` and `edgeasr lm --text` (see edgeasr.data.text_sources). "
        "wordnet is the held-out evaluation source: never train on it.",
    )
    from edgeasr.data.text_sources import TEXT_SOURCES  # stdlib only: cheap enough for the parser

    p.add_argument("--source", choices=tuple(TEXT_SOURCES), default="wordnet", help="the text source")
    p.add_argument("--num", type=int, default=300, help="how many sentences (0: all)")
    p.add_argument("--seed", type=int, default=0, help="which sentences")
    p.add_argument("--min-words", type=int, default=5, help="shorter sentences are not used")
    p.add_argument("--max-words", type=int, default=16, help="longer sentences are not used")
    p.add_argument("--out", required=True, help="text file to write")
    p.set_defaults(func=_cmd_sentences)

    p = sub.add_parser(
        "split",
        help="split a manifest in two with no speaker (or other field value) on both sides",
        formatter_class=_FMT,
        description="Hold out a deterministic share of the values of a field (see edgeasr.manifest.split_manifest).",
    )
    p.add_argument("manifest", help="the manifest to split")
    p.add_argument("--out", required=True, help="the rows that stay")
    p.add_argument("--held-out", required=True, help="the rows held out")
    p.add_argument("--by", default="speaker", help="field whose values are never on both sides")
    p.add_argument("--fraction", type=float, default=0.05, help="share of the field's values held out")
    p.set_defaults(func=_cmd_split)

    p = sub.add_parser(
        "merge",
        help="combine manifests without leaking held-out sentences or voices",
        formatter_class=_FMT,
        description="Concatenate manifests (audio stays where it is) and drop every row whose sentence "
        "or voice occurs in a --hold-out manifest (see edgeasr.manifest.merge_manifests).",
    )
    p.add_argument("manifests", nargs="+", help="manifests to combine, in order")
    p.add_argument("--out", required=True, help="the merged manifest (with its .version sidecar)")
    p.add_argument(
        "--hold-out",
        action="append",
        default=[],
        help="a manifest (e.g. dev or test) whose sentences and voices must not appear in the output; repeatable",
    )
    p.add_argument(
        "--only-sentences-of",
        action="append",
        default=[],
        help="keep only rows whose sentence occurs in this manifest (builds a seen-voices/unseen-sentences "
        "split); repeatable",
    )
    p.set_defaults(func=_cmd_merge)


def main(argv: list[str] | None = None) -> int:
    """Run ``data`` sub-commands on their own (``python -m edgeasr.data.cli synth ...``).

    Args:
        argv: arguments after ``data`` (default: ``sys.argv[1:]``).

    Returns:
        The exit code.
    """
    parser = argparse.ArgumentParser(prog="edgeasr", formatter_class=_FMT)
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["data", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
