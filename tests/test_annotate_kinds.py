"""Multi-target and empty-target samples through the annotation loop (issue 22): work packages
with one label per target, per-target import, agreement per target and on the union (checked
against an independent computation: Pillow drawing straight from the edited JSON per label,
Python-set IoU, sklearn's kappa), adjudication and resolve of n masks, and an empty target that
agrees when both annotators leave it empty.

The multi and empty dialogues are written by hand into a VOC run (as a build with
``--multi-share``/``--empty-share`` would write them), so these tests do not depend on the build.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import read_jsonl, run_cli
from PIL import Image, ImageDraw
from sklearn.metrics import cohen_kappa_score

from prist_builder.annotation.masks import decode, encode
from prist_builder.records import DialogueRecord, Turn
from prist_builder.records.dialogue import Target
from prist_builder.samples import iter_samples

SQUARE = [[5.0, 5.0], [45.0, 5.0], [45.0, 45.0], [5.0, 45.0]]  # what annotator B draws instead (pixels)
QUESTIONS = ("What is going on here?", "Who could help me?", "Which ones, exactly?")
ANSWERS = ("A scene with a few things in it.", "Some of them could.", "Let me point them out.")


def _turns(final: str) -> list[Turn]:
    turns = []
    for question, answer in zip(QUESTIONS, ANSWERS, strict=True):
        turns += [Turn(role="user", content=question), Turn(role="assistant", content=answer)]
    turns[-1] = Turn(role="assistant", content=final)
    return turns


def add_kinds(run: Path) -> tuple[DialogueRecord, DialogueRecord]:
    """Append one multi-target (two grounded targets) and one empty-target dialogue to a run."""
    elements = read_jsonl(run / "elements.jsonl")
    record = next(r for r in elements if sum(e["region_id"] is not None for e in r["elements"]) >= 2)
    regions = {r["region_id"]: r for r in record["image"]["regions"]}
    chosen = [e for e in record["elements"] if e["region_id"] is not None][:2]
    targets = [
        Target(
            element_id=e["element_id"],
            focus=f"the {e['name']} number {k}",
            region_ids=[e["region_id"]],
            mask=regions[e["region_id"]]["mask"],
        )
        for k, e in enumerate(chosen, start=1)
    ]
    union = decode(targets[0].mask) | decode(targets[1].mask)  # type: ignore[arg-type]
    ids = "+".join(t.element_id for t in targets)
    multi = DialogueRecord(
        sample_id=f"{record['image_id']}-{ids}",
        image_id=record["image_id"],
        provider="hand",
        turns=_turns(f"Both: [OBJ]{targets[0].focus}[SEG] and [OBJ]{targets[1].focus}[SEG]."),
        focus="the two things that could help",
        target_element_id=ids,
        target_region_ids=[r for t in targets for r in t.region_ids],
        mask=encode(np.asfortranarray(union)),
        kind="multi",
        targets=targets,
    )
    other = next(r for r in elements if r["image_id"] != record["image_id"])
    empty = DialogueRecord(
        sample_id=f"{other['image_id']}-none",
        image_id=other["image_id"],
        provider="hand",
        turns=_turns("There is no umbrella in this picture."),
        focus="an umbrella",
        target_element_id="none",
        kind="empty",
    )
    with open(run / "dialogues.jsonl", "a", encoding="utf-8") as handle:
        for dialogue in (multi, empty):
            handle.write(dialogue.model_dump_json() + "\n")
    return multi, empty


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A VOC run with a hand-written multi-target and empty-target dialogue added."""
    from conftest import fixtures_dir

    run = tmp_path_factory.mktemp("kinds") / "run"
    assert run_cli("build", "all", "--labelme", fixtures_dir("labelme_voc"), "--run", run).exit_code == 0
    add_kinds(run)
    return run


@pytest.fixture
def package(built: Path, tmp_path: Path) -> tuple[Path, Path, DialogueRecord, DialogueRecord]:
    """A copy of the run, its work package (annotators a and b, one group), and the two dialogues."""
    run, pkg = tmp_path / "run", tmp_path / "pkg"
    shutil.copytree(built, run)
    result = run_cli("annotate", "export", run, "--out", pkg, "--annotators", "a,b", "--groups", "1")
    assert result.exit_code == 0, result.output
    by_kind = {d["kind"]: DialogueRecord.model_validate(d) for d in read_jsonl(run / "dialogues.jsonl") if "kind" in d}
    return run, pkg, by_kind["multi"], by_kind["empty"]


def slow_masks(path: Path, labels: list[str]) -> list[np.ndarray]:
    """One mask per label of a Labelme file, drawn independently (polygons, full Pillow canvas);
    the short form ``target k`` counts for label k."""
    data = json.loads(path.read_text())
    canvases = [Image.new("1", (data["imageWidth"], data["imageHeight"]), 0) for _ in labels]
    for shape in data["shapes"]:
        if shape["label"].startswith("ref:"):
            continue
        assert shape["shape_type"] == "polygon"
        k = labels.index(shape["label"]) if shape["label"] in labels else int(shape["label"].split()[-1]) - 1
        ImageDraw.Draw(canvases[k]).polygon([tuple(p) for p in shape["points"]], outline=1, fill=1)
    return [np.array(c, dtype=bool) for c in canvases]


def slow_scores(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """IoU from Python sets of pixel indices, kappa from sklearn (1.0 where both masks are empty)."""
    set_a, set_b = set(np.flatnonzero(a).tolist()), set(np.flatnonzero(b).tolist())
    union = set_a | set_b
    if not union:
        return 1.0, 1.0
    return len(set_a & set_b) / len(union), float(cohen_kappa_score(a.ravel(), b.ravel()))


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_multi_target_round_trip(package: tuple[Path, Path, DialogueRecord, DialogueRecord], tmp_path: Path) -> None:
    run, pkg, multi, _ = package
    labels = [f"target {k}: {t.focus}" for k, t in enumerate(multi.targets, start=1)]
    file_a, file_b = pkg / "a" / f"{multi.sample_id}.json", pkg / "b" / f"{multi.sample_id}.json"
    data = json.loads(file_a.read_text())
    assert data["prist"]["kind"] == "multi"
    assert [t["label"] for t in data["prist"]["targets"]] == labels
    assert [t["element_id"] for t in data["prist"]["targets"]] == [t.element_id for t in multi.targets]
    assert {s["label"] for s in data["shapes"]} == set(labels)  # each grounded target pre-filled under its label
    assert "Labelme gives each label its own colour" in (pkg / "README.md").read_text()
    # B replaces target 2's outline with a square, typed in the short form.
    data = json.loads(file_b.read_text())
    data["shapes"] = [s for s in data["shapes"] if s["label"] == labels[0]]
    data["shapes"].append(dict(data["shapes"][0], label="target 2", points=SQUARE, description=""))
    file_b.write_text(json.dumps(data, indent=2))
    for name in "ab":
        result = run_cli("annotate", "import", run, "--labelme", pkg / name, "--annotator", name)
        assert result.exit_code == 0, result.output

    slow = {name: slow_masks(pkg / name / f"{multi.sample_id}.json", labels) for name in "ab"}
    records = {r["annotator"]: r for r in read_jsonl(run / "annotations.jsonl") if r["sample_id"] == multi.sample_id}
    for name in "ab":
        masks = [decode(m) for m in records[name]["masks"]]
        assert len(masks) == 2 and all(np.array_equal(m, s) for m, s in zip(masks, slow[name], strict=True))
        assert np.array_equal(decode(records[name]["mask"]), slow[name][0] | slow[name][1])
    for k in range(2):  # each grounded target's outline survives the polygon round trip
        truth = decode(multi.targets[k].mask)  # type: ignore[arg-type]
        assert slow_scores(slow["a"][k], truth)[0] > 0.9

    qa = tmp_path / "qa"
    result = run_cli("qa", "agreement", run, "--out", qa)
    assert result.exit_code == 0, result.output
    assert "agreement by target kind" in result.output
    expected = {
        "1": slow_scores(slow["a"][0], slow["b"][0]),
        "2": slow_scores(slow["a"][1], slow["b"][1]),
        "union": slow_scores(slow["a"][0] | slow["a"][1], slow["b"][0] | slow["b"][1]),
    }
    assert expected["1"] == (1.0, 1.0) and expected["2"][0] < 0.5  # one agreeing target, one not
    rows = {r["target"]: r for r in _rows(qa / "per_target.csv") if r["sample_id"] == multi.sample_id}
    assert list(rows) == ["1", "2", "union"] and {r["kind"] for r in rows.values()} == {"multi"}
    assert [rows[k]["focus"] for k in ("1", "2")] == [t.focus for t in multi.targets]
    for target, (iou, kappa) in expected.items():
        assert float(rows[target]["iou"]) == pytest.approx(iou, abs=1e-9)
        assert float(rows[target]["kappa"]) == pytest.approx(kappa, abs=1e-9)
    assert (rows["1"]["flagged"], rows["2"]["flagged"]) == ("no", "yes")
    per_sample = {r["sample_id"]: r for r in _rows(qa / "per_sample.csv")}
    assert float(per_sample[multi.sample_id]["iou"]) == pytest.approx(expected["union"][0], abs=1e-9)
    report = json.loads((qa / "agreement.json").read_text())
    assert multi.sample_id in report["flagged"]
    kinds = {k["group"]: k for k in report["kinds"]}
    assert kinds["multi (per target)"]["n"] == 2
    assert kinds["multi (per target)"]["mean_iou"] == pytest.approx((expected["1"][0] + expected["2"][0]) / 2)
    assert kinds["multi (union)"]["mean_kappa"] == pytest.approx(expected["union"][1])
    assert "multi (per target)" in (qa / "agreement.md").read_text()

    # Adjudication of n masks: the file shows both annotators' outlines per target.
    judged = qa / "adjudication" / f"{multi.sample_id}.json"
    data = json.loads(judged.read_text())
    assert {s["label"] for s in data["shapes"]} == {f"ref:{r} {n} {label}" for r, n in ("Aa", "Bb") for label in labels}
    # The judge keeps A's target 1 and B's target 2 (relabelled to the targets' labels); every target needs one.
    keep = {f"ref:A a {labels[0]}": labels[0], f"ref:B b {labels[1]}": labels[1]}
    chosen = [dict(s, label=keep[s["label"]]) for s in data["shapes"] if s["label"] in keep]
    judged.write_text(json.dumps(dict(data, shapes=[s for s in chosen if s["label"] == labels[0]])))
    result = run_cli("annotate", "resolve", run, "--labelme", judged.parent, "--annotator", "j")
    assert result.exit_code == 1 and f"no shape for '{labels[1]}'" in result.output
    judged.write_text(json.dumps(dict(data, shapes=chosen)))
    result = run_cli("annotate", "resolve", run, "--labelme", judged.parent, "--annotator", "j")
    assert result.exit_code == 0, result.output
    sample = {s.sample_id: s for s in iter_samples(run)}[multi.sample_id]
    final = sample.mask_provenance
    assert final is not None and final.rule == "adjudicated" and final.masks is not None
    verdict = slow_masks(judged, labels)
    assert [np.array_equal(decode(m), v) for m, v in zip(final.masks, verdict, strict=True)] == [True, True]
    assert np.array_equal(decode(final.mask), verdict[0] | verdict[1])
    assert np.array_equal(verdict[1], slow["b"][1])
    assert [np.array_equal(decode(m), v) for m, v in zip(sample.masks, verdict, strict=True)] == [True, True]
    assert final.iou == pytest.approx(expected["union"][0], abs=1e-9)


def test_label_naming_no_target_is_a_one_line_error(
    package: tuple[Path, Path, DialogueRecord, DialogueRecord],
) -> None:
    run, pkg, multi, _ = package
    path = pkg / "a" / f"{multi.sample_id}.json"
    data = json.loads(path.read_text())
    index = len(data["shapes"])
    data["shapes"].append(dict(data["shapes"][0], label="target 3"))  # there are two targets
    path.write_text(json.dumps(data))
    result = run_cli("annotate", "import", run, "--labelme", pkg / "a", "--annotator", "a")
    assert result.exit_code == 1
    hits = [line for line in result.output.splitlines() if "error" in line]
    assert len(hits) == 1 and path.name in hits[0] and f"shapes[{index}].label 'target 3'" in hits[0]
    assert "names no target" in hits[0] and "target 1: " in hits[0]
    assert multi.sample_id not in {r["sample_id"] for r in read_jsonl(run / "annotations.jsonl")}


def test_empty_target_agrees_only_when_both_leave_it_empty(
    package: tuple[Path, Path, DialogueRecord, DialogueRecord], tmp_path: Path
) -> None:
    run, pkg, _, empty = package
    file_a, file_b = pkg / "a" / f"{empty.sample_id}.json", pkg / "b" / f"{empty.sample_id}.json"
    data = json.loads(file_a.read_text())
    assert data["shapes"] == [] and data["prist"]["kind"] == "empty" and data["prist"]["target"] == "an umbrella"
    for name in "ab":  # both save it untouched: nothing there
        assert run_cli("annotate", "import", run, "--labelme", pkg / name, "--annotator", name).exit_code == 0
    records = [r for r in read_jsonl(run / "annotations.jsonl") if r["sample_id"] == empty.sample_id]
    assert len(records) == 2 and all("masks" not in r for r in records)
    assert all(decode(r["mask"]).shape == (data["imageHeight"], data["imageWidth"]) for r in records)
    assert not any(decode(r["mask"]).any() for r in records)  # an untouched file: a mask without pixels
    result = run_cli("qa", "agreement", run, "--out", tmp_path / "qa1")
    assert result.exit_code == 0, result.output
    (row,) = [r for r in _rows(tmp_path / "qa1" / "per_target.csv") if r["sample_id"] == empty.sample_id]
    assert (row["kind"], row["target"], row["focus"], row["flagged"]) == ("empty", "none", "an umbrella", "no")
    assert (float(row["iou"]), float(row["kappa"])) == (1.0, 1.0) == slow_scores(*slow_masks_any(file_a, file_b))
    report = json.loads((tmp_path / "qa1" / "agreement.json").read_text())
    assert report["empty_both_empty"] == 1 and empty.sample_id not in report["flagged"]
    assert run_cli("annotate", "resolve", run).exit_code == 0
    sample = {s.sample_id: s for s in iter_samples(run)}[empty.sample_id]
    assert sample.mask_rule == "annotator-a" and sample.masks == []
    assert sample.mask is not None and not decode(sample.mask).any()
    assert sample.mask.size == [sample.image.height, sample.image.width]

    # B draws something: a disagreement (IoU 0, kappa 0), flagged for adjudication.
    data = json.loads(file_b.read_text())
    data["shapes"] = [{"label": "umbrella", "points": SQUARE, "group_id": None, "shape_type": "polygon"}]
    file_b.write_text(json.dumps(data))
    assert run_cli("annotate", "import", run, "--labelme", pkg / "b", "--annotator", "b").exit_code == 0
    result = run_cli("qa", "agreement", run, "--out", tmp_path / "qa2")
    assert result.exit_code == 0, result.output
    (row,) = [r for r in _rows(tmp_path / "qa2" / "per_target.csv") if r["sample_id"] == empty.sample_id]
    assert (float(row["iou"]), float(row["kappa"])) == (0.0, 0.0) == slow_scores(*slow_masks_any(file_a, file_b))
    assert row["flagged"] == "yes"
    report = json.loads((tmp_path / "qa2" / "agreement.json").read_text())
    assert empty.sample_id in report["flagged"] and report["empty_both_empty"] == 0
    assert "awaiting adjudication 1" in run_cli("annotate", "resolve", run).output
    # The adjudicator sees B's outline as a reference and leaves it: nothing there.
    judged = tmp_path / "qa2" / "adjudication"
    assert [s["label"] for s in json.loads((judged / f"{empty.sample_id}.json").read_text())["shapes"]] == ["ref:B b"]
    result = run_cli("annotate", "resolve", run, "--labelme", judged, "--annotator", "j")
    assert result.exit_code == 0, result.output
    sample = {s.sample_id: s for s in iter_samples(run)}[empty.sample_id]
    assert sample.mask_rule == "adjudicated" and not decode(sample.mask).any()  # type: ignore[arg-type]

    # Had the judge outlined it, the asked-for thing is there: no final mask with pixels is written.
    data = json.loads((judged / f"{empty.sample_id}.json").read_text())
    data["shapes"] = [dict(s, label="umbrella") for s in data["shapes"]]
    (judged / f"{empty.sample_id}.json").write_text(json.dumps(data))
    result = run_cli("annotate", "resolve", run, "--labelme", judged, "--annotator", "j")
    assert result.exit_code == 0 and "1 empty-target samples have a drawn final mask" in result.output
    sample = {s.sample_id: s for s in iter_samples(run)}[empty.sample_id]
    assert not decode(sample.mask).any()  # type: ignore[arg-type]


def slow_masks_any(*paths: Path) -> list[np.ndarray]:
    """The union of every non-reference polygon of each file, drawn independently."""
    out = []
    for path in paths:
        data = json.loads(path.read_text())
        canvas = Image.new("1", (data["imageWidth"], data["imageHeight"]), 0)
        for shape in data["shapes"]:
            ImageDraw.Draw(canvas).polygon([tuple(p) for p in shape["points"]], outline=1, fill=1)
        out.append(np.array(canvas, dtype=bool))
    return out


def test_folder_form_scores_targets_union_and_none(
    package: tuple[Path, Path, DialogueRecord, DialogueRecord], tmp_path: Path
) -> None:
    _, pkg, multi, empty = package
    labels = [f"target {k}: {t.focus}" for k, t in enumerate(multi.targets, start=1)]
    path = pkg / "b" / f"{multi.sample_id}.json"
    data = json.loads(path.read_text())
    data["shapes"] = [s for s in data["shapes"] if s["label"] == labels[0]]
    data["shapes"].append(dict(data["shapes"][0], label="target 2", points=SQUARE))  # short form: target 2
    path.write_text(json.dumps(data))
    result = run_cli("qa", "agreement", "--a", pkg / "a", "--b", pkg / "b", "--out", tmp_path / "qa")
    assert result.exit_code == 0, result.output
    rows = {r["sample_id"]: r for r in _rows(tmp_path / "qa" / "per_sample.csv")}
    slow = {name: slow_masks(pkg / name / f"{multi.sample_id}.json", labels) for name in "ab"}
    expected = {
        f"{multi.sample_id}:{labels[0]}": slow_scores(slow["a"][0], slow["b"][0]),
        f"{multi.sample_id}:{labels[1]}": slow_scores(slow["a"][1], slow["b"][1]),
        f"{multi.sample_id}:(union)": slow_scores(slow["a"][0] | slow["a"][1], slow["b"][0] | slow["b"][1]),
        f"{empty.sample_id}:(none)": (1.0, 1.0),
    }
    assert {r for r in rows if r.startswith((multi.sample_id, empty.sample_id))} == set(expected)
    for unit, (iou, kappa) in expected.items():
        assert float(rows[unit]["iou"]) == pytest.approx(iou, abs=1e-9)
        assert float(rows[unit]["kappa"]) == pytest.approx(kappa, abs=1e-9)


def test_target_labels_match_full_or_short_form_only() -> None:
    from prist_builder.annotation.target import TargetSpec, target_label

    spec = TargetSpec("multi", ("the red cup", "the red cup on the left"))
    assert spec.labels == ["target 1: the red cup", "target 2: the red cup on the left"]
    assert target_label(2, " the red cup on the left ") == spec.labels[1]
    assert [spec.match(x) for x in spec.labels] == [0, 1]
    assert [spec.match(x) for x in ("target 1", " Target 2 ", "target2", "2")] == [0, 1, 1, None]
    for wrong in ("target 3", "target 0", "the red cup", "target 1: the blue cup", "cup"):
        assert spec.match(wrong) is None, wrong
    assert TargetSpec().labels == [] and TargetSpec("empty", ("an umbrella",)).labels == []
