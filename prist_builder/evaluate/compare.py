"""``prist evaluate --compare A.json B.json ...``: several runs side by side, deltas and a PNG plot.

The first file is the baseline: deltas are each run's figure minus the baseline's.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from prist_builder.evaluate.text import METEOR, METEOR_EXACT_STEM

COMPARED = (
    "gIoU",
    "cIoU",
    "Target mIoU",
    "N-acc",
    "T-acc",
    "Precision",
    "Recall",
    "F1",
    "BLEU-4",
    "ROUGE-L",
    METEOR,
    METEOR_EXACT_STEM,
    "Dist-1",
    "Dist-2",
    "BERTScore",
    "PR",
    "LC",
    "CC",
    "TR",
    "Win Rate",
)
"""Figures compared, in plot order (those no run has are left out)."""
_SEGMENTATION_KEYS = {
    "gIoU": "gIoU",
    "cIoU": "cIoU",
    "Target mIoU": "target_mIoU",
    "N-acc": "N_acc",
    "T-acc": "T_acc",
    "Precision": "precision",
    "Recall": "recall",
    "F1": "F1",
}
FIGURE_WIDTH_IN, FIGURE_HEIGHT_IN, DPI = 12.0, 5.0, 120
"""Plot size in inches and resolution in dots per inch."""


class CompareError(ValueError):
    """A results file cannot be read; the message names the file."""


def load_summary(path: Path) -> dict[str, Any]:
    """A ``results.json`` written by ``prist evaluate``.

    Raises:
        CompareError: missing file, not JSON, or without the ``name``/``response`` fields.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise CompareError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except json.JSONDecodeError as exc:
        raise CompareError(f"{path}: not JSON ({exc.msg}, line {exc.lineno})") from None
    for key in ("name", "response"):
        if key not in data:
            raise CompareError(f"{path}: field '{key}' is missing; not a prist evaluate results.json")
    return data


def figures(summary: dict[str, Any]) -> dict[str, float]:
    """The comparable figures of one summary, by name (percent; judge rubric on 0-5)."""
    out: dict[str, float] = {}
    seg = summary.get("segmentation") or {}
    for name, key in _SEGMENTATION_KEYS.items():
        if seg.get(key) is not None:
            out[name] = float(seg[key])
    out.update({k: float(v) for k, v in summary["response"].items() if v is not None})
    judge = summary.get("judge") or {}
    out.update({k: float(v) for k, v in (judge.get("model") or {}).items() if k in COMPARED and v is not None})
    if judge.get("Win Rate") is not None:
        out["Win Rate"] = float(judge["Win Rate"])
    return out


def delta_rows(summaries: Sequence[dict[str, Any]]) -> list[dict[str, str]]:
    """One row per figure: the baseline's value and each later run's delta (``+1.23``), ``-`` if absent."""
    values = [figures(s) for s in summaries]
    names = [n for n in COMPARED if any(n in v for v in values)]
    rows = []
    for name in names:
        base = values[0].get(name)
        row = {"Metric": name, summaries[0]["name"]: "-" if base is None else f"{base:.2f}"}
        for summary, value in zip(summaries[1:], values[1:], strict=True):
            got = value.get(name)
            label = f"{summary['name']} (delta)"
            row[label] = "-" if got is None or base is None else f"{got - base:+.2f}"
        rows.append(row)
    return rows


def unique_names(summaries: list[dict[str, Any]], paths: Sequence[Path]) -> list[dict[str, Any]]:
    """Summaries renamed ``name (folder)`` where two runs share a name."""
    seen = [s["name"] for s in summaries]
    return [
        dict(s, name=f"{s['name']} ({Path(p).parent.name})") if seen.count(s["name"]) > 1 else s
        for s, p in zip(summaries, paths, strict=True)
    ]


def plot(summaries: Sequence[dict[str, Any]], out: Path) -> Path:
    """Grouped bar chart of every compared figure, one bar colour per run, written as PNG to ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = [figures(s) for s in summaries]
    names = [n for n in COMPARED if any(n in v for v in values)]
    width = 0.8 / max(len(summaries), 1)
    fig, ax = plt.subplots(figsize=(FIGURE_WIDTH_IN, FIGURE_HEIGHT_IN))
    for index, (summary, value) in enumerate(zip(summaries, values, strict=True)):
        xs = [i + index * width for i in range(len(names))]
        ax.bar(xs, [value.get(n, 0.0) for n in names], width=width, label=summary["name"])
    ax.set_xticks([i + width * (len(summaries) - 1) / 2 for i in range(len(names))])
    ax.set_xticklabels(names, rotation=30, ha="right")
    ax.set_ylabel("percent (PR, LC, CC, TR: 0-5)")
    ax.set_title("prist evaluate: run comparison")
    ax.legend()
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=DPI)
    plt.close(fig)
    return out
