"""IoU and Cohen's kappa by counting, and ``prist qa agreement`` on two Labelme folders."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import fixtures_dir, run_cli
from sklearn.metrics import cohen_kappa_score

from prist_builder.annotation.agreement import match_instances, score_counts, score_pair, score_rles, summarise
from prist_builder.annotation.labelme import labelme_regions, read_labelme
from prist_builder.annotation.masks import encode
from prist_builder.annotation.polygons import MIN_ROUND_TRIP_IOU, mask_to_polygons, polygons_to_mask


def _voc_masks() -> list[np.ndarray]:
    folder = fixtures_dir("labelme_voc")
    masks = []
    for path in sorted(folder.glob("*.json")):
        doc = read_labelme(path)
        drafts, _, _ = labelme_regions(doc, doc.height, doc.width)
        masks += [d.mask for d in drafts]
    return masks


def test_degenerate_cases() -> None:
    empty, full = np.zeros((4, 5), bool), np.ones((4, 5), bool)
    some = empty.copy()
    some[1:3, 1:4] = True
    assert (score_pair(empty, empty).iou, score_pair(empty, empty).kappa) == (1.0, 1.0)
    assert (score_pair(full, full).iou, score_pair(full, full).kappa) == (1.0, 1.0)
    assert (score_pair(some, some).iou, score_pair(some, some).kappa) == (1.0, 1.0)
    one_empty = score_pair(empty, some)
    assert one_empty.iou == 0.0 and one_empty.kappa == 0.0
    assert one_empty.kappa == cohen_kappa_score(empty.ravel(), some.ravel())
    opposite = score_pair(some, ~some)  # complete disagreement
    assert opposite.iou == 0.0 and opposite.kappa == pytest.approx(cohen_kappa_score(some.ravel(), (~some).ravel()))
    assert score_pair(empty, full).kappa == 0.0
    with pytest.raises(ValueError, match="size"):
        score_pair(empty, np.zeros((5, 4), bool))
    with pytest.raises(ValueError, match="inconsistent"):
        score_counts(3, 2, 4, 20)


def test_kappa_equals_sklearn_on_real_masks() -> None:
    masks = _voc_masks()
    rng = np.random.default_rng(0)
    checked = 0
    for i, a in enumerate(masks):
        for b in masks[i:]:
            if a.shape != b.shape:
                continue
            shifted = np.roll(b, int(rng.integers(-15, 15)), axis=1)  # a near-copy, and other objects
            for other in (b, shifted):
                ours = score_pair(a, other)
                theirs = cohen_kappa_score(a.ravel(), other.ravel())
                if not np.isnan(theirs):
                    assert ours.kappa == pytest.approx(theirs, abs=1e-9)
                    checked += 1
                union = np.logical_or(a, other).sum()
                assert ours.iou == pytest.approx(np.logical_and(a, other).sum() / union if union else 1.0, abs=1e-12)
    assert checked > 20


def test_rle_scores_equal_mask_scores() -> None:
    masks = [m for m in _voc_masks() if m.shape == (338, 500)]
    empty = np.zeros((338, 500), bool)
    for a in masks + [empty]:
        for b in masks + [empty, ~empty]:
            assert score_rles(encode(a), encode(b)) == score_pair(a, b)


def test_instances_are_matched_optimally() -> None:
    masks = [m for m in _voc_masks() if m.shape == (338, 500)][:3]
    a_side = [masks[0], masks[1]]
    b_side = [np.roll(masks[1], 2, axis=0), masks[0], masks[2]]  # reordered, shifted, one extra
    matches = match_instances(a_side, b_side)
    pairs = {(m.a, m.b) for m in matches}
    assert (0, 1) in pairs and (1, 0) in pairs and (None, 2) in pairs and len(matches) == 3
    assert next(m for m in matches if m.a == 0).score.iou == 1.0


def test_summary_means_and_pass_flags() -> None:
    a = np.zeros((10, 10), bool)
    a[:5] = True
    b = a.copy()
    b[5] = True
    rows = [("g1", score_pair(a, a)), ("g1", score_pair(a, b)), ("g2", score_pair(a, ~a))]
    g1, g2, overall = summarise(rows)
    assert (g1.group, g1.n, g1.mean_iou) == ("g1", 2, pytest.approx((1 + 50 / 60) / 2))
    assert g1.passed and not g2.passed and not overall.passed and overall.n == 3


def test_mask_to_polygon_round_trip_keeps_iou() -> None:
    for mask in _voc_masks():
        polygons = mask_to_polygons(mask)
        redrawn = polygons_to_mask(polygons, *mask.shape)
        assert score_pair(mask, redrawn).iou >= MIN_ROUND_TRIP_IOU


def _folder_pair(tmp_path: Path) -> tuple[Path, Path]:
    voc = fixtures_dir("labelme_voc")
    folder_a, folder_b = tmp_path / "A", tmp_path / "B"
    for folder in (folder_a, folder_b):
        folder.mkdir()
        for path in voc.glob("*.json"):
            shutil.copy(path, folder / path.name)
            shutil.copy(voc / f"{path.stem}.jpg", folder / f"{path.stem}.jpg")
    data = json.loads((folder_b / "2011_000003.json").read_text())
    data["shapes"] = [s for s in data["shapes"] if s["label"] != "bottle"]  # B missed the bottle
    for shape in data["shapes"]:
        if shape["label"] == "person" and shape["group_id"] is None:
            shape["points"] = [[x + 4, y] for x, y in shape["points"]]
    (folder_b / "2011_000003.json").write_text(json.dumps(data))
    return folder_a, folder_b


def test_folder_form_by_label_and_by_instance(tmp_path: Path) -> None:
    folder_a, folder_b = _folder_pair(tmp_path)
    groups = tmp_path / "groups.csv"
    groups.write_text("sample_id,group\n2011_000003,g1\n2011_000006,g2\n2011_000025,g2\n")
    out = tmp_path / "qa"
    result = run_cli("qa", "agreement", "--a", folder_a, "--b", folder_b, "--groups", groups, "--out", out)
    assert result.exit_code == 0, result.output
    with open(out / "per_sample.csv", newline="") as handle:
        rows = {r["sample_id"]: r for r in csv.DictReader(handle)}
    assert float(rows["2011_000003:bottle"]["iou"]) == 0.0 and rows["2011_000003:bottle"]["flagged"] == "yes"
    assert 0.5 < float(rows["2011_000003:person"]["iou"]) < 1.0
    assert float(rows["2011_000006:sofa"]["iou"]) == 1.0 and rows["2011_000006:sofa"]["group"] == "g2"
    assert (out / "overlays" / "2011_000003__bottle.png").exists()
    queue = json.loads((out / "adjudication" / "2011_000003.json").read_text())
    labels = {s["label"] for s in queue["shapes"]}
    assert "ref:A A bottle" in labels and not any(label.startswith("ref:B B bottle") for label in labels)
    assert (out / "adjudication" / queue["imagePath"]).is_file()
    table = (out / "agreement.md").read_text()
    assert table.splitlines()[0].split("|")[2:5] == [" g1 ", " g2 ", " overall "]

    result = run_cli("qa", "agreement", "--a", folder_a, "--b", folder_b, "--match", "instance", "--out", out)
    with open(out / "per_sample.csv", newline="") as handle:
        rows = {r["sample_id"]: r for r in csv.DictReader(handle)}
    persons = {k: float(v["iou"]) for k, v in rows.items() if k.startswith("2011_000003:person#")}
    assert len(persons) == 2 and 1.0 in persons.values() and min(persons.values()) < 1.0  # grouped one unchanged


def test_fail_under_and_thresholds(tmp_path: Path) -> None:
    folder_a, folder_b = _folder_pair(tmp_path)
    out = tmp_path / "qa"
    assert run_cli("qa", "agreement", "--a", folder_a, "--b", folder_b, "--out", out).exit_code == 0
    strict = run_cli("qa", "agreement", "--a", folder_a, "--b", folder_b, "--out", out, "--iou-min", "0.95")
    assert strict.exit_code == 0  # a miss is not an error without --fail-under
    strict = run_cli(
        "qa", "agreement", "--a", folder_a, "--b", folder_b, "--out", out, "--iou-min", "0.95", "--fail-under"
    )
    assert strict.exit_code == 1
    relaxed = run_cli(
        "qa",
        "agreement",
        "--a",
        folder_a,
        "--b",
        folder_b,
        "--out",
        out,
        "--fail-under",
        "--iou-min",
        "0.5",
        "--kappa-min",
        "0.5",
    )
    assert relaxed.exit_code == 0, relaxed.output
    report = json.loads((out / "agreement.json").read_text())
    assert report["thresholds"] == {"iou": 0.5, "kappa": 0.5}
    (folder_b / "2011_000025.json").unlink()
    result = run_cli("qa", "agreement", "--a", folder_a, "--b", folder_b, "--out", out)
    assert result.exit_code == 0 and "2011_000025.json: no file of that name" in result.output
    assert run_cli("qa", "agreement", "--out", out).exit_code != 0  # neither RUN nor --a/--b
