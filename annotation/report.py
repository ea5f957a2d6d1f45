"""Agreement reports: the paper's Table 1 layout (groups as columns; IoU and kappa rows) as
Markdown, CSV and JSON, and a per-sample CSV for error analysis.

Files written under ``--out DIR`` by :func:`write_report`:

- ``agreement.md``: Table 1 layout plus rows ``n`` and ``pass``;
- ``agreement.csv``: one row per group (``group, n, mean_iou, mean_kappa, pass``), ``overall`` last;
- ``agreement.json``: thresholds, the groups, counts of flagged/incomplete samples, errors;
- ``per_sample.csv``: one row per scored pair (sample, group, annotators, IoU, kappa, pixel
  counts, flagged).
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


def write_report(
    out: Path,
    pairs: list[ScoredPair],
    summaries: list[GroupSummary],
    iou_min: float,
    kappa_min: float,
    extra: dict[str, Any] | None = None,
) -> list[Path]:
    """Write the four report files under ``out`` (created); returns their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "agreement.md", out / "agreement.csv", out / "agreement.json", out / "per_sample.csv"]
    paths[0].write_text(markdown(summaries, iou_min, kappa_min), encoding="utf-8")
    with open(paths[1], "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(("group", "n", "mean_iou", "mean_kappa", "pass"))
        for s in summaries:
            writer.writerow((s.group, s.n, _fmt(s.mean_iou), _fmt(s.mean_kappa), "yes" if s.passed else "no"))
    document = {
        "thresholds": {"iou": iou_min, "kappa": kappa_min},
        "groups": [
            {
                **asdict(s),
                "mean_iou": None if math.isnan(s.mean_iou) else s.mean_iou,
                "mean_kappa": None if math.isnan(s.mean_kappa) else s.mean_kappa,
            }
            for s in summaries
        ],
        "flagged": [p.sample_id for p in pairs if p.flagged],
        **(extra or {}),
    }
    paths[2].write_text(json.dumps(document, indent=2, ensure_ascii=False), encoding="utf-8")
    with open(paths[3], "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            (
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
        )
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
