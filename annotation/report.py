"""Agreement reports: the paper's Table 1 layout (groups as columns; IoU and kappa rows) as
Markdown, CSV and JSON, and a per-sample CSV for error analysis.

Files written under ``--out DIR`` by :func:`write_report`:

- ``agreement.md``: Table 1 layout plus rows ``n`` and ``pass``;
- ``agreement.csv``: one row per group (``group, n, mean_iou, mean_kappa, pass``), ``overall`` last;
- ``agreement.json``: thresholds, the groups, counts of flagged/incomplete samples, errors;
- ``per_sample.csv``: one row per scored pair (sample, group, annotators, IoU, kappa, pixel
  counts, flagged); a multi-target sample is scored on the union of its targets.

When the run holds multi- or empty-target samples, also (single-target runs write exactly
the files above):

- ``per_target.csv``: one row per target of each scored pair (``target`` 1..n, then
  ``union`` for a multi-target sample; ``1`` for a single-target one; ``none`` for an
  empty-target one, whose IoU is 1 when both annotators left it empty), with its ``kind``
  and ``focus``;
- a second table in ``agreement.md`` (and ``kinds`` in ``agreement.json``): the same layout
  with columns ``single``, ``multi (union)``, ``multi (per target)`` and ``empty``, plus
  ``empty_both_empty``: empty-target pairs both annotators left empty.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from prist_builder.annotation.agreement import GroupSummary, PairScore

DECIMALS = 4
"""Decimals of scores in the written tables."""


@dataclass
class ScoredPair:
    """One row of ``per_sample.csv``.

    Attributes:
        sample_id: the sample (run form) or ``<file stem>:<label>[#k]`` (folder form).
        group: its group.
        annotator_a, annotator_b: who drew the two masks.
        score: their agreement.
        flagged: under the IoU or the kappa threshold (goes to adjudication).
    """

    sample_id: str
    group: str
    annotator_a: str
    annotator_b: str
    score: PairScore
    flagged: bool


@dataclass
class TargetRow:
    """One row of ``per_target.csv``.

    Attributes:
        sample_id, group, annotator_a, annotator_b: as in :class:`ScoredPair`.
        kind: ``single``, ``multi`` or ``empty``.
        target: ``"1"``.. ``"n"`` (answer order), ``"union"`` (multi) or ``"none"`` (empty).
        focus: the target's description (the set's for ``union``; the absent thing for ``none``).
        score: the two annotators' agreement on it.
        flagged: under the IoU or the kappa threshold.
    """

    sample_id: str
    group: str
    annotator_a: str
    annotator_b: str
    kind: str
    target: str
    focus: str
    score: PairScore
    flagged: bool


KIND_COLUMNS = ("single", "multi (union)", "multi (per target)", "empty")
"""Columns of the by-kind table, in order."""


def kind_column(row: TargetRow) -> str:
    """The by-kind table column a :class:`TargetRow` counts in."""
    if row.kind == "multi":
        return "multi (union)" if row.target == "union" else "multi (per target)"
    return row.kind


def kind_summaries(rows: list[TargetRow], iou_min: float, kappa_min: float) -> list[GroupSummary]:
    """Mean IoU and kappa per :data:`KIND_COLUMNS` column (every column, ``n`` 0 when none)."""
    from prist_builder.annotation.agreement import summarise

    by_name = {s.group: s for s in summarise([(kind_column(r), r.score) for r in rows], iou_min, kappa_min)}
    nan = float("nan")
    return [by_name.get(name) or GroupSummary(name, 0, nan, nan, False) for name in KIND_COLUMNS]


def _fmt(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.{DECIMALS}f}"


def table1(summaries: list[GroupSummary]) -> list[list[str]]:
    """Table 1 layout as rows of strings: header, ``IoU``, ``Kappa``, ``n``, ``pass``."""
    return [
        ["", *(s.group for s in summaries)],
        ["IoU", *(_fmt(s.mean_iou) for s in summaries)],
        ["Kappa", *(_fmt(s.mean_kappa) for s in summaries)],
        ["n", *(str(s.n) for s in summaries)],
        ["pass", *("yes" if s.passed else "no" for s in summaries)],
    ]


def markdown(summaries: list[GroupSummary], iou_min: float, kappa_min: float) -> str:
    """The Table 1 layout as a Markdown table with a caption naming the thresholds."""
    rows = table1(summaries)
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    caption = (
        f"\nAgreement between the two annotators of each sample, per group: mean IoU and mean Cohen's kappa"
        f" over all pixels. Pass: IoU >= {iou_min} and kappa >= {kappa_min}.\n"
    )
    return "\n".join(lines) + "\n" + caption


def kinds_markdown(kinds: list[GroupSummary], both_empty: int) -> str:
    """The by-kind table (:func:`kind_summaries`) as Markdown with its caption."""
    rows = table1(kinds)
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    caption = (
        "\nBy target kind: a multi-target sample counts once on the union of its targets and once per"
        " target; an empty-target sample scores IoU 1 and kappa 1 when both annotators leave it empty"
        f" ({both_empty} did), IoU 0 when only one draws something.\n"
    )
    return "\n".join(lines) + "\n" + caption


def write_report(
    out: Path,
    pairs: list[ScoredPair],
    summaries: list[GroupSummary],
    iou_min: float,
    kappa_min: float,
    extra: dict[str, Any] | None = None,
    targets: list[TargetRow] | None = None,
) -> list[Path]:
    """Write the report files under ``out`` (created); returns their paths.

    ``targets``: per-target rows; when one of them is not single-target, ``per_target.csv``
    and the by-kind table are written too (module docstring).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "agreement.md", out / "agreement.csv", out / "agreement.json", out / "per_sample.csv"]
    text = markdown(summaries, iou_min, kappa_min)
    special = [r for r in targets or [] if r.kind != "single"]
    if special:
        kinds = kind_summaries(targets or [], iou_min, kappa_min)
        both_empty = sum(r.kind == "empty" and r.score.area_a == r.score.area_b == 0 for r in special)
        text += "\n" + kinds_markdown(kinds, both_empty)
        extra = {**(extra or {}), "kinds": [_summary_json(s) for s in kinds], "empty_both_empty": both_empty}
        paths.append(write_targets(out / "per_target.csv", targets or []))
    paths[0].write_text(text, encoding="utf-8")
    with open(paths[1], "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(("group", "n", "mean_iou", "mean_kappa", "pass"))
        for s in summaries:
            writer.writerow((s.group, s.n, _fmt(s.mean_iou), _fmt(s.mean_kappa), "yes" if s.passed else "no"))
    document = {
        "thresholds": {"iou": iou_min, "kappa": kappa_min},
        "groups": [_summary_json(s) for s in summaries],
        "flagged": [p.sample_id for p in pairs if p.flagged],
        **(extra or {}),
    }
    paths[2].write_text(json.dumps(document, indent=2, ensure_ascii=False), encoding="utf-8")
    with open(paths[3], "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(PAIR_COLUMNS)
        for p in pairs:
            s = p.score
            writer.writerow(
                (
                    p.sample_id,
                    p.group,
                    p.annotator_a,
                    p.annotator_b,
                    repr(s.iou),
                    repr(s.kappa),
                    s.area_a,
                    s.area_b,
                    s.intersection,
                    s.pixels,
                    "yes" if p.flagged else "no",
                )
            )
    return paths


def _summary_json(s: GroupSummary) -> dict[str, Any]:
    return {
        **asdict(s),
        "mean_iou": None if math.isnan(s.mean_iou) else s.mean_iou,
        "mean_kappa": None if math.isnan(s.mean_kappa) else s.mean_kappa,
    }


PAIR_COLUMNS = (
    "sample_id",
    "group",
    "annotator_a",
    "annotator_b",
    "iou",
    "kappa",
    "area_a",
    "area_b",
    "intersection",
    "pixels",
    "flagged",
)
"""Header of the per-pair CSV."""

TARGET_COLUMNS = ("sample_id", "kind", "target", "focus", *PAIR_COLUMNS[1:])
"""Header of ``per_target.csv``: the per-pair columns with the target's kind, index and focus."""


def write_targets(path: Path, rows: list[TargetRow]) -> Path:
    """Write ``per_target.csv`` (:data:`TARGET_COLUMNS`, one row per :class:`TargetRow`); returns ``path``."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(TARGET_COLUMNS)
        for r in rows:
            s = r.score
            writer.writerow(
                (
                    r.sample_id,
                    r.kind,
                    r.target,
                    r.focus,
                    r.group,
                    r.annotator_a,
                    r.annotator_b,
                    repr(s.iou),
                    repr(s.kappa),
                    s.area_a,
                    s.area_b,
                    s.intersection,
                    s.pixels,
                    "yes" if r.flagged else "no",
                )
            )
    return path
