"""Shared by the bench scripts: write a measured table as ``<stem>.json`` (rows) and ``<stem>.txt`` (as printed)."""

from __future__ import annotations

import json
from pathlib import Path


def write_results(stem: str | Path, args: dict, rows: list[dict], lines: list[str]) -> None:
    """Write ``{"args", "rows"}`` to ``stem.json`` and ``lines`` to ``stem.txt``, then print the lines."""
    out = Path(stem)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"args": args, "rows": rows}, indent=2) + "\n")
    out.with_suffix(".txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
