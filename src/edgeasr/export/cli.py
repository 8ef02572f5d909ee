"""``edgeasr export``: the export stage's command."""

from __future__ import annotations

import argparse
import sys

__all__ = ["add_parser"]


def _cmd_export(args: argparse.Namespace) -> int:
    from edgeasr.export.pipeline import export_checkpoint
    from edgeasr.export.target import ExportCheckError, ExportTarget

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
    except OSError as exc:  # a full disk, a read-only repository: publishing left nothing behind
        what = exc.strerror or str(exc)
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"edgeasr export: cannot write{where}: {what}; nothing written", file=sys.stderr)
        return 1
    where = f"version {result.version} at {result.path}" if result.version else str(result.path)
    print(f"exported {target.name}: {where}")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``edgeasr export`` on the command line's subparsers."""
    p = subparsers.add_parser(
        "export",
        help="export a checkpoint, checked, into a Triton repository",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("checkpoint", help="best.pt from edgeasr train")
    p.add_argument("--target", default="export/cpu-fp32.toml", help="export target (TOML)")
    p.add_argument("--repository", default="triton_models", help="Triton model repository")
    p.add_argument("--check-manifest", default=None, help="utterances for the checks (default: the recipe's dev set)")
    p.add_argument("--out", default=None, help="bundle folder for format=edge targets")
    p.set_defaults(func=_cmd_export)
    return p
