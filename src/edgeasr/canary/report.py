"""Reports of ``edgeasr canary``: JSON (everything), markdown (for people) and a PNG plot.

Both commands hand :func:`write_report` one dict: ``kind`` (``"shadow"`` or ``"rollout"``),
``final`` (``promoted`` / ``rolled_back`` / ``held``, or the shadow analysis outcome),
``exit_code``, ``champion``, ``challenger``, ``dry_run``, ``policy``, ``stats`` and ``decisions``:
one entry per analysis with ``step``, ``percent``, ``outcome``, ``action``, ``reasons``, ``pairs``
and the :meth:`~edgeasr.canary.stats.Analysis.to_dict` of the analysis. Every decision taken is
therefore in all three files.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

__all__ = ["render_markdown", "render_plot", "write_report"]

_COLOURS = {"success": "tab:green", "failure": "tab:red", "inconclusive": "tab:orange"}


def _num(value: Any, scale: float = 1.0, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{scale * float(value):.{digits}g}"


def _metric(m: dict[str, Any] | None, scale: float = 1.0) -> str:
    if not m or m.get("value") is None:
        return "–"
    return f"{_num(m['value'], scale)} [{_num(m['low'], scale)}, {_num(m['high'], scale)}] {m['verdict']}"


def _finite(value: Any) -> Any:
    """Replace NaN/Inf by None so that the JSON is strict."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def render_markdown(report: dict[str, Any]) -> str:
    """Return the markdown report.

    Args:
        report: the report dict (see the module docstring).

    Returns:
        Markdown text.
    """
    policy = report.get("policy", {})
    analysis = policy.get("analysis", {})
    conf = 100 * float(analysis.get("confidence", 0.95))
    lines = [
        f"# Canary {report.get('kind', 'rollout')}: {report['final']} (exit code {report['exit_code']})",
        "",
        f"- model `{policy.get('model', '')}`, champion **{report['champion']}**, challenger **{report['challenger']}**"
        + (" (dry run: nothing changed)" if report.get("dry_run") and report.get("kind") == "rollout" else ""),
        f"- started {report.get('started', '')}, ended {report.get('ended', '')}",
    ]
    if report.get("kind") == "rollout":
        lines.append(
            f"- steps {policy.get('steps')} %, {policy.get('requests_per_step')} requests per analysis, "
            f"failure limit {policy.get('max_failures')}, holds per step {policy.get('max_holds')}"
        )
        before, after = report.get("live_before", {}), report.get("live_after", {})
        lines.append(
            f"- live before: champion {before.get('champion')} ({before.get('phase')}); after: "
            f"{json.dumps(after.get('would_be', after), sort_keys=True)}"
        )
        if report.get("retired"):
            lines.append(f"- retired from Triton's version policy: {', '.join(report['retired'])}")
    a = analysis.get
    lines.append(
        f"- thresholds: disagreement {a('max_disagreement')}, WER +{a('max_wer_increase')}, "
        f"errors +{a('max_error_rate_increase')}, empty +{a('max_empty_rate_increase')}, "
        f"p50 +{a('max_p50_latency_increase_s')} s, p99 +{a('max_p99_latency_increase_s')} s;"
        f" minimum {a('min_samples')} pairs; {conf:g}% bootstrap intervals"
    )
    lines += [
        "",
        "## Decisions",
        "",
        "Metrics are challenger minus champion (disagreement: challenger vs champion), value [CI] verdict.",
        "",
        "| # | step | % | outcome | action | pairs | disagreement | WER Δ | error rate Δ | empty rate Δ "
        "| p50 Δ ms | p99 Δ ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for d in report.get("decisions", []):
        m = d.get("analysis", {}).get("metrics", {})
        cells = [
            str(d["index"]),
            str(d["step"] + 1),
            f"{d['percent']:g}",
            d["outcome"],
            d.get("action", ""),
            str(d["pairs"]),
        ]
        cells += [_metric(m.get(k)) for k in ("disagreement", "wer_delta", "error_rate_delta", "empty_rate_delta")]
        cells += [_metric(m.get(k), 1000) for k in ("p50_latency_delta_s", "p99_latency_delta_s")]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "### Reasons", ""]
    for d in report.get("decisions", []):
        rates = d.get("analysis", {}).get("rates", {})
        why = "; ".join(d.get("reasons") or []) or "every metric within its threshold"
        sides = ", ".join(
            f"{label} {_num(rates.get('champion_' + key))} vs {_num(rates.get('challenger_' + key))}"
            for label, key in (("error rate", "error_rate"), ("empty", "empty_rate"), ("WER", "wer"))
        )
        lines.append(f"- **#{d['index']}** {d['outcome']} -> {d.get('action', '')}: {why} ({sides})")
    stats = report.get("stats", {})
    if stats:
        lines += ["", "## Traffic", "", "| counter | value |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in stats.items()]
    return "\n".join(lines) + "\n"


def render_plot(report: dict[str, Any], path: str | os.PathLike) -> Path:
    """Plot traffic steps, text metrics and latency deltas (with intervals) per analysis.

    Args:
        report: the report dict.
        path: the PNG to write.

    Returns:
        The path.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    decisions = report.get("decisions", [])
    xs = list(range(len(decisions)))
    fig, axes = plt.subplots(3, 1, figsize=(8, 8), sharex=True)
    ax = axes[0]
    ax.bar(xs, [d["percent"] for d in decisions], color=[_COLOURS.get(d["outcome"], "grey") for d in decisions])
    ax.set_ylabel("challenger %")
    ax.set_ylim(0, 105)
    ax.set_title(f"{report.get('kind', 'rollout')} {report['champion']} -> {report['challenger']}: {report['final']}")
    for x, d in zip(xs, decisions, strict=True):
        ax.annotate(d.get("action", ""), (x, d["percent"]), ha="center", va="bottom", fontsize=7)
    series = (
        ("disagreement", axes[1], 1.0),
        ("wer_delta", axes[1], 1.0),
        ("error_rate_delta", axes[1], 1.0),
        ("empty_rate_delta", axes[1], 1.0),
        ("p50_latency_delta_s", axes[2], 1000.0),
        ("p99_latency_delta_s", axes[2], 1000.0),
    )
    for k, (name, axis, scale) in enumerate(series):
        shift = 0.06 * (k % 4 - 1.5)
        pts = [(x + shift, d["analysis"]["metrics"].get(name)) for x, d in zip(xs, decisions, strict=True)]
        pts = [(x, m) for x, m in pts if m and m.get("value") is not None]
        if not pts:
            continue
        vals = [scale * m["value"] for _, m in pts]
        err = [[scale * (m["value"] - m["low"]) for _, m in pts], [scale * (m["high"] - m["value"]) for _, m in pts]]
        axis.errorbar([x for x, _ in pts], vals, yerr=err, fmt="o", capsize=3, label=name.removesuffix("_s"))
    axes[1].axhline(0, color="grey", lw=0.5)
    axes[1].set_ylabel("rate (challenger vs champion)")
    axes[1].legend(fontsize=7)
    axes[2].axhline(0, color="grey", lw=0.5)
    axes[2].set_ylabel("latency Δ ms")
    axes[2].set_xlabel("analysis #")
    axes[2].legend(fontsize=7)
    axes[2].set_xticks(xs)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_report(report: dict[str, Any], out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write ``report.json``, ``report.md`` and ``report.png`` into ``out_dir``.

    Args:
        report: the report dict (see the module docstring).
        out_dir: the folder (created).

    Returns:
        ``{"json": ..., "markdown": ..., "plot": ...}`` paths.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "report.json", "markdown": out / "report.md", "plot": out / "report.png"}
    paths["json"].write_text(json.dumps(_finite(report), indent=2, default=str) + "\n", encoding="utf-8")
    paths["markdown"].write_text(render_markdown(report), encoding="utf-8")
    render_plot(report, paths["plot"])
    return paths
