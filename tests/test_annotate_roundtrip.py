"""The whole annotation loop on the VOC fixture: build -> export -> two annotators edit ->
import -> qa agreement -> adjudicate -> resolve, checked against an independent slow computation
(Pillow drawing straight from the edited JSON, sklearn's kappa, Python-set IoU)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import read_jsonl, run_cli
from PIL import Image, ImageDraw
from sklearn.metrics import cohen_kappa_score

from prist_builder.annotation.masks import decode
from prist_builder.samples import iter_samples

SQUARE = [[5.0, 5.0], [45.0, 5.0], [45.0, 45.0], [5.0, 45.0]]  # the polygon annotator B adds (pixels)
SHIFT = 3.0  # pixels annotator A moves every point to the right


def slow_mask(path: Path) -> np.ndarray:
    """The target of a Labelme file, drawn independently: polygons only, on a full Pillow canvas."""
    data = json.loads(path.read_text())
    canvas = Image.new("1", (data["imageWidth"], data["imageHeight"]), 0)
    draw = ImageDraw.Draw(canvas)
    for shape in data["shapes"]:
        if not shape["label"].startswith("ref:"):
            assert shape["shape_type"] == "polygon"
            draw.polygon([tuple(p) for p in shape["points"]], outline=1, fill=1)
    return np.array(canvas, dtype=bool)


def slow_scores(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """IoU from Python sets of pixel indices, kappa from sklearn on the flattened masks."""
    set_a, set_b = set(np.flatnonzero(a).tolist()), set(np.flatnonzero(b).tolist())
    union = set_a | set_b
    iou = len(set_a & set_b) / len(union) if union else 1.0
    return iou, float(cohen_kappa_score(a.ravel(), b.ravel()))


def edit(path: Path, role: str, first: bool) -> None:
    """Edit a file as an annotator would: A moves points; B adds a square, and on the first
    sample deletes the pre-filled outline (so that sample disagrees and goes to adjudication)."""
    data = json.loads(path.read_text())
    if role == "A":
        for shape in data["shapes"]:
            shape["points"] = [[x + SHIFT, y] for x, y in shape["points"]]
    else:
        if first:
            del data["shapes"][0]
        data["shapes"].append(
            {
                "label": data["prist"]["target"],
                "points": SQUARE,
                "group_id": None,
                "description": "",
                "shape_type": "polygon",
                "flags": {},
                "mask": None,
            }
        )
    path.write_text(json.dumps(data, indent=2))


@pytest.mark.slow
def test_round_trip_on_voc(voc: Path, tmp_path: Path) -> None:
    run, pkg, qa = tmp_path / "run", tmp_path / "pkg", tmp_path / "qa"
    assert run_cli("build", "all", "--labelme", voc, "--run", run).exit_code == 0
    result = run_cli("annotate", "export", run, "--out", pkg, "--annotators", "a,b,c,d", "--groups", "2", "--seed", "1")
    assert result.exit_code == 0, result.output
    with open(pkg / "assignment.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    dialogues = read_jsonl(run / "dialogues.jsonl")
    assert len(rows) == 2 * len(dialogues) and {r["group"] for r in rows} == {"g1", "g2"}
    first = rows[0]["sample_id"]
    for row in rows:
        edit(pkg / row["annotator"] / f"{row['sample_id']}.json", row["role"], row["sample_id"] == first)
    edited = {p: p.read_text() for p in pkg.glob("*/*.json")}
    again = run_cli("annotate", "export", run, "--out", pkg, "--annotators", "a,b,c,d", "--groups", "2", "--seed", "1")
    assert "wrote 0 Labelme files" in again.output and f"{len(rows)} already there" in again.output
    assert {p: p.read_text() for p in pkg.glob("*/*.json")} == edited  # annotators' work is never overwritten
    for name in "abcd":
        result = run_cli("annotate", "import", run, "--labelme", pkg / name, "--annotator", name)
        assert result.exit_code == 0, result.output
    assert len(read_jsonl(run / "annotations.jsonl")) == 2 * len(dialogues)

    result = run_cli("qa", "agreement", run, "--out", qa)
    assert result.exit_code == 0, result.output
    assert {"agreement.md", "agreement.csv", "agreement.json", "per_sample.csv"} <= {p.name for p in qa.iterdir()}
    with open(qa / "per_sample.csv", newline="") as handle:
        scored = {r["sample_id"]: r for r in csv.DictReader(handle)}
    assert set(scored) == {d["sample_id"] for d in dialogues}
    by_role = {(r["sample_id"], r["role"]): pkg / r["annotator"] / f"{r['sample_id']}.json" for r in rows}
    slow: dict[str, tuple[float, float]] = {}
    for sample_id, row in scored.items():
        slow[sample_id] = slow_scores(slow_mask(by_role[sample_id, "A"]), slow_mask(by_role[sample_id, "B"]))
        assert float(row["iou"]) == pytest.approx(slow[sample_id][0], abs=1e-9)
        assert float(row["kappa"]) == pytest.approx(slow[sample_id][1], abs=1e-9)
    report = json.loads((qa / "agreement.json").read_text())
    groups = {r["sample_id"]: r["group"] for r in rows}
    for entry in report["groups"]:
        members = [s for s in slow if entry["group"] in ("overall", groups[s])]
        assert entry["n"] == len(members)
        assert entry["mean_iou"] == pytest.approx(np.mean([slow[s][0] for s in members]), abs=1e-9)
        assert entry["mean_kappa"] == pytest.approx(np.mean([slow[s][1] for s in members]), abs=1e-9)
    flagged = sorted(s for s, (iou, kappa) in slow.items() if iou < 0.80 or kappa < 0.75)
    assert first in flagged and sorted(report["flagged"]) == flagged
    assert sorted(p.stem for p in (qa / "adjudication").glob("*.json")) == flagged
    assert sorted(p.stem for p in (qa / "overlays").glob("*.png")) == flagged

    # Without adjudication the flagged samples wait; the rest follow annotator A.
    result = run_cli("annotate", "resolve", run)
    assert result.exit_code == 0 and f"awaiting adjudication {len(flagged)}" in result.output
    # The adjudicator keeps annotator B's outline of each flagged sample.
    for path in (qa / "adjudication").glob("*.json"):
        data = json.loads(path.read_text())
        target = data["prist"]["target"]
        data["shapes"] = [dict(s, label=target) for s in data["shapes"] if s["label"].startswith("ref:B")]
        path.write_text(json.dumps(data))
    result = run_cli("annotate", "resolve", run, "--labelme", qa / "adjudication", "--annotator", "judge")
    assert result.exit_code == 0, result.output

    annotations = {(r["sample_id"], r["annotator"]): r for r in read_jsonl(run / "annotations.jsonl")}
    samples = list(iter_samples(run))
    assert len(samples) == len(dialogues)
    for sample in samples:
        final = sample.mask_provenance
        assert final is not None and sample.mask is not None
        iou, kappa = slow[sample.sample_id]
        assert final.iou == pytest.approx(iou, abs=1e-9) and final.kappa == pytest.approx(kappa, abs=1e-9)
        if sample.sample_id in flagged:
            assert sample.mask_rule == "adjudicated" and final.annotators[-1] == "judge"
            expected = slow_mask(qa / "adjudication" / f"{sample.sample_id}.json")
        else:
            assert sample.mask_rule == "annotator-a" and len(final.annotators) == 2
            expected = decode(annotations[sample.sample_id, final.annotators[0]]["mask"])
            assert np.array_equal(expected, slow_mask(by_role[sample.sample_id, "A"]))
        assert np.array_equal(decode(sample.mask), expected)

    # Re-running redoes nothing; history stays.
    lines = len(read_jsonl(run / "final_masks.jsonl"))
    assert "imported 0" in run_cli("annotate", "import", run, "--labelme", pkg / "a", "--annotator", "a").output
    assert "written 0" in run_cli("annotate", "resolve", run).output
    assert len(read_jsonl(run / "final_masks.jsonl")) == lines
    # Re-importing an edited file appends; the latest line wins and the old one stays.
    edited = next(r for r in rows if r["annotator"] == "a" and r["sample_id"] not in flagged)
    path = pkg / "a" / f"{edited['sample_id']}.json"
    data = json.loads(path.read_text())
    data["shapes"].append(dict(data["shapes"][0], points=[[60.0, 60.0], [64.0, 60.0], [64.0, 64.0]]))  # a small part
    path.write_text(json.dumps(data))
    result = run_cli("annotate", "import", run, "--labelme", pkg / "a", "--annotator", "a")
    assert "imported 1," in result.output
    history = [
        r
        for r in read_jsonl(run / "annotations.jsonl")
        if (r["sample_id"], r["annotator"]) == (edited["sample_id"], "a")
    ]
    assert len(history) == 2 and history[0]["sha256"] != history[1]["sha256"]
    assert "written 1 (annotator-a 1)" in run_cli("annotate", "resolve", run).output
    final = {s.sample_id: s for s in iter_samples(run)}[edited["sample_id"]]
    assert np.array_equal(decode(final.mask), slow_mask(pkg / "a" / f"{edited['sample_id']}.json"))
