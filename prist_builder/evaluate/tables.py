"""Results laid out as the paper's Tables 3 and 4: rich tables, Markdown, CSV and JSON files.

Every function here reads result *summaries* (the ``results.json`` body, a plain dict), so
one run's tables and a comparison of several runs are drawn by the same code.

Files ``prist evaluate --out DIR`` writes (all of them, every run):

- ``results.json``: the summary (figures, problems by kind, settings).
- ``per_sample.jsonl``: one line of scores per reference sample, for error analysis.
- ``table3.md`` / ``table3.csv``: segmentation and response columns (Table 3 layout).
- ``table4.md`` / ``table4.csv``: judge columns (Table 4 layout); a note when the judge did not run.
- ``granularity.md`` / ``granularity.csv``: segmentation figures per granularity class.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text

from prist_builder.evaluate.segmentation import GRANULARITIES
from prist_builder.evaluate.text import METEOR, METEOR_EXACT_STEM

Row = dict[str, str]
MISSING = "-"
"""Cell text of a figure that was not computed."""
SEGMENTATION_COLUMNS = (
    ("gIoU", "gIoU"),
    ("cIoU", "cIoU"),
    ("Precision", "precision"),
    ("Recall", "recall"),
    ("F1", "F1"),
)
"""Table 3's segmentation columns: (header, key in the segmentation figures)."""
JUDGE_COLUMNS = ("PR", "LC", "CC", "TR")
"""Table 4's rubric columns (Appendix C.4.2)."""
WIN_RATE = "Win Rate(%)"
"""Table 4's last column header."""
RESULTS_FILE = "results.json"
PER_SAMPLE_FILE = "per_sample.jsonl"
TABLE3, TABLE4, GRANULARITY = "table3", "table4", "granularity"
"""Stems of the table files (``.md`` and ``.csv`` each)."""


def _fmt(value: Any, digits: int = 2) -> str:
    return MISSING if value is None else f"{value:.{digits}f}"


def table3_rows(summaries: Sequence[dict[str, Any]]) -> list[Row]:
    """One Table 3 row per run: ``Model``, gIoU, cIoU, Precision, Recall, F1 (pixel-wise, micro),
    BLEU-4, Dist-1/2, ROUGE-L, METEOR (or ``METEOR (exact+stem)``), BERTScore; percent."""
    meteor = METEOR if all(METEOR in s["response"] for s in summaries) else None
    rows = []
    for s in summaries:
        seg, resp = s.get("segmentation") or {}, s["response"]
        row: Row = {"Model": s["name"]}
        for header, key in SEGMENTATION_COLUMNS:
            row[header] = _fmt(seg.get(key))
        row["BLEU-4"] = _fmt(resp.get("BLEU-4"))
        row["Dist-1/2"] = f"{_fmt(resp.get('Dist-1'), 1)} / {_fmt(resp.get('Dist-2'), 1)}"
        row["ROUGE-L"] = _fmt(resp.get("ROUGE-L"))
        if meteor:
            row[METEOR] = _fmt(resp.get(METEOR))
        else:
            row[METEOR_EXACT_STEM] = _fmt(resp.get(METEOR_EXACT_STEM, resp.get(METEOR)))
        row["BERTScore"] = _fmt(resp.get("BERTScore"))
        rows.append(row)
    return rows


def table4_rows(summaries: Sequence[dict[str, Any]]) -> list[Row]:
    """Table 4 rows: ``Human`` (the judge's scores of the reference messages) first, then one per run
    that ran the judge; PR, LC, CC, TR on 0-5, win rate in percent."""
    judged = [s for s in summaries if s.get("judge")]
    if not judged:
        return []
    human = judged[0]["judge"]["human"]
    rows = [{"Model": "Human", **{k: _fmt(human.get(k)) for k in JUDGE_COLUMNS}, WIN_RATE: MISSING}]
    for s in judged:
        model = s["judge"]["model"]
        rows.append(
            {
                "Model": s["name"],
                **{k: _fmt(model.get(k)) for k in JUDGE_COLUMNS},
                WIN_RATE: _fmt(s["judge"].get("Win Rate"), 1),
            }
        )
    return rows


def granularity_rows(summary: dict[str, Any]) -> list[Row]:
    """One row per granularity class present: samples, gIoU, cIoU, Precision, Recall, F1 (percent)."""
    rows = []
    for name in GRANULARITIES:
        scores = summary.get("granularity", {}).get(name)
        if scores:
            rows.append(
                {
                    "Granularity": name,
                    "Samples": str(scores["samples"]),
                    **{h: _fmt(scores.get(k)) for h, k in SEGMENTATION_COLUMNS},
                }
            )
    return rows


def problem_rows(summary: dict[str, Any]) -> list[Row]:
    """Problem kinds with a non-zero count and one example each."""
    problems = summary["problems"]
    return [
        {"Problem": kind, "Count": str(count), "Example": (problems["examples"].get(kind) or [""])[0]}
        for kind, count in problems["counts"].items()
        if count
    ]


def rich_table(title: str, rows: list[Row]) -> Table:
    """A rich table of ``rows`` (first column left-aligned, the rest right-aligned); markup in cells is escaped."""
    table = Table(title=title, title_justify="left")
    for index, column in enumerate(rows[0] if rows else []):
        widest = max([len(column)] + [len(row[column]) for row in rows])
        table.add_column(column, justify="left" if index == 0 else "right", min_width=widest, no_wrap=True)
    for row in rows:
        table.add_row(*(Text(value) for value in row.values()))
    return table


def _escape_md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(rows: list[Row], note: str = "") -> str:
    """A Markdown (GitHub) table of ``rows``, with ``note`` as a paragraph after it."""
    if not rows:
        return (note or "No rows.") + "\n"
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(_escape_md(row[h]) for h in header) + " |" for row in rows]
    return "\n".join(lines) + ("\n\n" + note if note else "") + "\n"


def write_csv(path: Path, rows: list[Row], header: Sequence[str]) -> None:
    """Write ``rows`` as CSV (a header line even when there are no rows)."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0] if rows else header))
        writer.writeheader()
        writer.writerows(rows)


TABLE3_NOTE = (
    "Segmentation in percent; Precision/Recall/F1 are pixel-wise micro (all pixels pooled), "
    "macro figures are in results.json. Response metrics over {pairs} assistant messages."
)
TABLE4_NOTE = (
    "PR, LC, CC, TR: LLM judge on 0-5, each the mean of {repeats} repeats (Appendix C.4.2). "
    "Win Rate: share of samples whose mean score beats the reference (human) response's."
)
NO_JUDGE = "The LLM judge did not run (prist evaluate --judge)."


def write_outputs(out: Path, summary: dict[str, Any], per_sample: list[dict[str, Any]]) -> list[Path]:
    """Write every output file of one run into ``out`` (created); returns their paths.

    Each file is written whole to a temporary name and renamed, so a kill leaves no half file.
    """
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {
        RESULTS_FILE: json.dumps(summary, indent=2, ensure_ascii=False) + "\n",
        PER_SAMPLE_FILE: "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in per_sample),
        f"{TABLE3}.md": markdown(
            table3_rows([summary]), TABLE3_NOTE.format(pairs=summary["settings"].get("response_pairs", 0))
        ),
        f"{GRANULARITY}.md": markdown(granularity_rows(summary), "Granularity as prist stats defines it."),
    }
    judge = summary.get("judge")
    files[f"{TABLE4}.md"] = (
        markdown(table4_rows([summary]), TABLE4_NOTE.format(repeats=judge.get("repeats"))) if judge else NO_JUDGE + "\n"
    )
    written = []
    for name, text in files.items():
        tmp = out / f".{name}.tmp"
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(out / name)
        written.append(out / name)
    csvs = {
        TABLE3: (table3_rows([summary]), ()),
        TABLE4: (table4_rows([summary]), ("Model", *JUDGE_COLUMNS, WIN_RATE)),
        GRANULARITY: (granularity_rows(summary), ("Granularity", "Samples")),
    }
    for stem, (rows, header) in csvs.items():
        tmp = out / f".{stem}.csv.tmp"
        write_csv(tmp, rows, header)
        tmp.replace(out / f"{stem}.csv")
        written.append(out / f"{stem}.csv")
    return written
