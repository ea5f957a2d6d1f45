"""Results laid out as the paper's Tables 3 and 4: rich tables, Markdown, CSV and JSON files.

Every function here reads result *summaries* (the ``results.json`` body, a plain dict), so
one run's tables and a comparison of several runs are drawn by the same code.

Files ``prist evaluate --out DIR`` writes (all of them, every run):

- ``results.json``: the summary (figures, problems by kind, settings).
- ``per_sample.jsonl``: one line of scores per reference sample, for error analysis.
- ``table3.md`` / ``table3.csv``: segmentation and response columns (Table 3 layout).
- ``table4.md`` / ``table4.csv``: judge columns (Table 4 layout); a note when the judge did not run.
- ``granularity.md`` / ``granularity.csv``: segmentation figures per granularity class.
- ``kinds.md`` / ``kinds.csv``: segmentation figures per target kind (``all``, ``single``,
  ``multi``, ``empty``) with GRES's N-acc and T-acc and the per-target mean IoU.

When a run holds other samples than single-target ones, Tables 3 and 4 and the granularity
table add one row per target kind (``name [multi]``, ``coarse [multi]``) after their own rows.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text

from prist_builder.evaluate.segmentation import GRANULARITIES, KINDS
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
KIND_COLUMNS = (
    ("gIoU", "gIoU"),
    ("cIoU", "cIoU"),
    ("Target mIoU", "target_mIoU"),
    ("N-acc", "N_acc"),
    ("T-acc", "T_acc"),
    ("Precision", "precision"),
    ("Recall", "recall"),
    ("F1", "F1"),
)
"""Columns of the target-kind table: (header, key in the segmentation figures)."""
JUDGE_COLUMNS = ("PR", "LC", "CC", "TR")
"""Table 4's rubric columns (Appendix C.4.2)."""
WIN_RATE = "Win Rate(%)"
"""Table 4's last column header."""
RESULTS_FILE = "results.json"
PER_SAMPLE_FILE = "per_sample.jsonl"
TABLE3, TABLE4, GRANULARITY, KIND_TABLE = "table3", "table4", "granularity", "kinds"
"""Stems of the table files (``.md`` and ``.csv`` each)."""


def _fmt(value: Any, digits: int = 2) -> str:
    return MISSING if value is None else f"{value:.{digits}f}"


def split_by_kind(summary: dict[str, Any]) -> bool:
    """Whether the tables get per-kind rows: the run holds a sample that is not single-target."""
    return any(kind != "single" for kind in summary.get("target_kinds") or {})


def kind_label(label: str, kind: str) -> str:
    """The first cell of a per-kind row: ``label [kind]``."""
    return f"{label} [{kind}]"


def _table3_row(label: str, seg: dict[str, Any], resp: dict[str, Any], meteor: str | None) -> Row:
    row: Row = {"Model": label}
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
    return row


def table3_rows(summaries: Sequence[dict[str, Any]]) -> list[Row]:
    """One Table 3 row per run: ``Model``, gIoU, cIoU, Precision, Recall, F1 (pixel-wise, micro),
    BLEU-4, Dist-1/2, ROUGE-L, METEOR (or ``METEOR (exact+stem)``), BERTScore; percent. A run
    with other than single-target samples is followed by one row per target kind present."""
    meteor = METEOR if all(METEOR in s["response"] for s in summaries) else None
    rows = []
    for s in summaries:
        rows.append(_table3_row(s["name"], s.get("segmentation") or {}, s["response"], meteor))
        if split_by_kind(s):
            for kind, part in s["target_kinds"].items():
                seg, resp = part.get("segmentation") or {}, part.get("response") or {}
                rows.append(_table3_row(kind_label(s["name"], kind), seg, resp, meteor))
    return rows


def table4_rows(summaries: Sequence[dict[str, Any]]) -> list[Row]:
    """Table 4 rows: ``Human`` (the judge's scores of the reference messages) first, then one per run
    that ran the judge; PR, LC, CC, TR on 0-5, win rate in percent. Judge figures per target kind
    (``judge.kinds``) add ``Human [kind]`` and ``name [kind]`` rows."""
    judged = [s for s in summaries if s.get("judge")]
    if not judged:
        return []

    def row(label: str, scores: dict[str, Any], win: Any) -> Row:
        return {"Model": label, **{k: _fmt(scores.get(k)) for k in JUDGE_COLUMNS}, WIN_RATE: _fmt(win, 1)}

    rows = [row("Human", judged[0]["judge"]["human"], None)]
    for s in judged:
        rows.append(row(s["name"], s["judge"]["model"], s["judge"].get("Win Rate")))
    humans: set[str] = set()
    for s in judged:
        if not split_by_kind(s):
            continue
        for kind, table in (s["judge"].get("kinds") or {}).items():
            if kind not in humans:  # the reference answers' scores, from the first run that has the kind
                humans.add(kind)
                rows.append(row(kind_label("Human", kind), table["human"], None))
            rows.append(row(kind_label(s["name"], kind), table["model"], table.get("Win Rate")))
    return rows


def _seg_row(first: str, label: str, scores: dict[str, Any], columns: Sequence[tuple[str, str]]) -> Row:
    return {first: label, "Samples": str(scores["samples"]), **{h: _fmt(scores.get(k)) for h, k in columns}}


def granularity_rows(summary: dict[str, Any]) -> list[Row]:
    """One row per granularity class present: samples, gIoU, cIoU, Precision, Recall, F1 (percent);
    then, when the run is split by kind, one row per (class, kind) present (``coarse [multi]``)."""
    rows = []
    for name in GRANULARITIES:
        scores = summary.get("granularity", {}).get(name)
        if scores:
            rows.append(_seg_row("Granularity", name, scores, SEGMENTATION_COLUMNS))
    if split_by_kind(summary):
        for kind, part in summary["target_kinds"].items():
            for name in GRANULARITIES:
                scores = (part.get("granularity") or {}).get(name)
                if scores:
                    rows.append(_seg_row("Granularity", kind_label(name, kind), scores, SEGMENTATION_COLUMNS))
    return rows


def kind_rows(summary: dict[str, Any]) -> list[Row]:
    """Segmentation by target kind: an ``all`` row, then one per kind present, with samples scored,
    target masks, gIoU, cIoU, target mIoU, N-acc, T-acc, Precision, Recall, F1 (percent)."""
    overall = summary.get("segmentation")
    if not overall:
        return []
    parts = [("all", overall)] + [
        (kind, part["segmentation"])
        for kind in KINDS
        if (part := (summary.get("target_kinds") or {}).get(kind)) and part.get("segmentation")
    ]
    return [
        {"Kind": label, "Samples": str(s["samples"]), "Targets": str(s.get("targets", 0))}
        | {h: _fmt(s.get(k)) for h, k in KIND_COLUMNS}
        for label, s in parts
    ]


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
KIND_NOTE = (
    "Target kinds as GRES (gRefCOCO) defines them. An empty target scores IoU 100 when the model "
    "answered empty (no predicted pixel) and 0 otherwise; N-acc: empty targets answered empty; "
    "T-acc: other targets not answered empty. Target mIoU: each target's IoU with its "
    "Hungarian-matched predicted mask (unmatched: 0), mean over target masks."
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
        f"{KIND_TABLE}.md": markdown(kind_rows(summary), KIND_NOTE),
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
        KIND_TABLE: (kind_rows(summary), ("Kind", "Samples", "Targets")),
    }
    for stem, (rows, header) in csvs.items():
        tmp = out / f".{stem}.csv.tmp"
        write_csv(tmp, rows, header)
        tmp.replace(out / f"{stem}.csv")
        written.append(out / f"{stem}.csv")
    return written
