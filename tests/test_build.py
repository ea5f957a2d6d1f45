"""``prist build`` end to end with the offline provider: records, steps, seeds, exit codes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from conftest import check_run, read_jsonl, run_cli

from prist_builder.annotation.masks import encode, rasterize


def test_build_all_on_the_voc_fixture(voc: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = run_cli("build", "all", "--images", voc, "--labelme", voc, "--run", run)
    assert result.exit_code == 0, result.output
    records = check_run(run)
    assert len(records["elements"]) == 3 and len(records["trees"]) == 3
    assert len(records["dialogues"]) >= 6  # K >= 2 per image
    assert records["rejects"] == []
    usable = {e.image_id: sum(not r.ignore for r in e.image.regions) for e in records["elements"]}
    for tree in records["trees"]:
        assert 2 <= len(tree.paths) <= min(usable[tree.image_id], 4)  # 2 <= K <= min(N, 4)
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["config"]["seed"] == 0 and manifest["versions"]["prist"]
    assert manifest["counts"] == {"images": 3, "trees": 3, "dialogues": len(records["dialogues"]), "rejects": 0}
    assert set(manifest["steps"]) == {"elements", "trees", "dialogues"}


def test_ignore_regions_never_become_elements(voc: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    run_cli("build", "elements", "--images", voc, "--labelme", voc, "--run", run)
    seen = 0
    for record in read_jsonl(run / "elements.jsonl"):
        ignored = {r["region_id"] for r in record["image"]["regions"] if r["ignore"]}
        seen += len(ignored)
        assert not ignored & {e["region_id"] for e in record["elements"]}
    assert seen == 2  # 2011_000003 and 2011_000006 each hold one __ignore__ region


def test_steps_one_by_one_equal_build_all(synthetic: Path, tmp_path: Path) -> None:
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert run_cli("build", "all", "--labelme", synthetic, "--run", whole, "--seed", "7").exit_code == 0
    assert run_cli("build", "elements", "--labelme", synthetic, "--run", parts, "--seed", "7").exit_code == 0
    assert run_cli("build", "trees", "--run", parts).exit_code == 0
    assert run_cli("build", "dialogues", "--run", parts).exit_code == 0
    for name in ("elements.jsonl", "trees.jsonl", "dialogues.jsonl"):
        assert (whole / name).read_bytes() == (parts / name).read_bytes()


def test_seed_decides_targets_and_wording(synthetic: Path, tmp_path: Path) -> None:
    runs = {}
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        run_cli("build", "all", "--labelme", synthetic, "--run", tmp_path / name, "--seed", seed)
        runs[name] = (tmp_path / name / "dialogues.jsonl").read_bytes()
    assert runs["a"] == runs["b"]
    assert runs["a"] != runs["c"]


def test_limit_and_turn_bounds(synthetic: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = run_cli(
        "build", "all", "--labelme", synthetic, "--run", run, "--limit", 5, "--min-turns", 5, "--max-turns", 6
    )
    assert result.exit_code == 0, result.output
    records = check_run(run, min_turns=5, max_turns=6)
    assert len(records["elements"]) == 5
    assert {d.num_turns for d in records["dialogues"]} <= {5, 6}
    assert records["rejects"] == []
    assert json.loads(run_cli("stats", run, "--json").output)["samples"] == len(records["dialogues"])  # run's bounds


def test_turn_bounds_the_offline_provider_cannot_meet_are_refused(synthetic: Path, tmp_path: Path) -> None:
    result = run_cli(
        "build", "all", "--labelme", synthetic, "--run", tmp_path / "run", "--min-turns", 7, "--max-turns", 9
    )
    assert result.exit_code == 2 and "--min-turns <= 6" in result.output
    assert not (tmp_path / "run" / "elements.jsonl").exists()


def test_stats_json_matches_the_records(voc: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    run_cli("build", "all", "--labelme", voc, "--run", run)
    stats = json.loads(run_cli("stats", run, "--json").output)
    dialogues = read_jsonl(run / "dialogues.jsonl")
    turns = [len(d["turns"]) // 2 for d in dialogues]
    assert stats["images"] == 3 and stats["samples"] == len(dialogues)
    assert stats["utterances"] == sum(t - 1 for t in turns)
    assert stats["max_turns"] == max(turns)
    assert abs(stats["avg_turns"] - sum(turns) / len(turns)) < 0.01
    assert abs(stats["coarse"] + stats["medium"] + stats["fine"] - 100.0) < 0.2
    table = run_cli("stats", run).output
    assert "Avg. / max. turns" in table and "Granularity" in table


def test_coco_input(voc: Path, tmp_path: Path) -> None:
    """A COCO file made from the VOC polygons builds like the Labelme input."""
    images, annotations = [], []
    for index, path in enumerate(sorted(voc.glob("*.json"))):
        doc = json.loads(path.read_text())
        h, w = doc["imageHeight"], doc["imageWidth"]
        images.append({"id": index, "file_name": doc["imagePath"], "height": h, "width": w})
        for shape in doc["shapes"]:
            if shape["label"] == "__ignore__":
                continue
            flat = [v for point in shape["points"] for v in point]
            annotations.append(
                {
                    "id": len(annotations),
                    "image_id": index,
                    "category_id": 1 + (shape["label"] != "person"),
                    "segmentation": [flat],
                    "iscrowd": 0,
                }
            )
    # one annotation as RLE, to take the other path
    mask = rasterize("rectangle", [(10, 10), (60, 50)], images[0]["height"], images[0]["width"])
    annotations.append(
        {"id": 999, "image_id": 0, "category_id": 2, "segmentation": encode(mask).model_dump(), "iscrowd": 0}
    )
    coco = tmp_path / "instances.json"
    coco.write_text(
        json.dumps(
            {
                "images": images,
                "annotations": annotations,
                "categories": [{"id": 1, "name": "person"}, {"id": 2, "name": "thing"}],
            }
        )
    )
    run = tmp_path / "run"
    result = run_cli("build", "all", "--images", voc, "--coco", coco, "--run", run)
    assert result.exit_code == 0, result.output
    records = check_run(run)
    assert len(records["elements"]) == 3
    assert records["elements"][0].image.source == "coco"
    assert any(r.shape_types == ["coco_rle"] for r in records["elements"][0].image.regions)


def test_usage_errors_exit_non_zero(synthetic: Path, tmp_path: Path) -> None:
    assert run_cli("build", "all", "--run", tmp_path / "r").exit_code == 2
    assert (
        run_cli(
            "build", "all", "--labelme", synthetic, "--coco", synthetic / "x.json", "--run", tmp_path / "r"
        ).exit_code
        == 2
    )
    assert run_cli("build", "all", "--labelme", tmp_path / "missing", "--run", tmp_path / "r").exit_code == 2
    assert run_cli("build", "trees", "--run", tmp_path / "never-built").exit_code == 2


def test_a_rerun_with_another_seed_is_refused(synthetic: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert run_cli("build", "all", "--labelme", synthetic, "--run", run, "--seed", 1).exit_code == 0
    result = run_cli("build", "all", "--labelme", synthetic, "--run", run, "--seed", 2)
    assert result.exit_code == 1
    assert "config.seed is 1" in result.output


def test_nothing_built_exits_1(tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    (images / "broken.jpg").write_bytes(b"not an image")
    result = run_cli("build", "all", "--images", images, "--run", tmp_path / "run")
    assert result.exit_code == 1
    assert "nothing could be built" in result.output


def test_bare_images_need_regions_for_the_offline_provider(synthetic: Path, tmp_path: Path) -> None:
    images = tmp_path / "bare"
    images.mkdir()
    shutil.copy(synthetic / "img_0000.png", images)
    result = run_cli("build", "all", "--images", images, "--run", tmp_path / "run")
    assert result.exit_code == 1
    reject = read_jsonl(tmp_path / "run" / "rejects.jsonl")[0]
    assert "no Labelme or COCO regions" in reject["reason"] and reject["reason"].startswith(str(images))


def test_masks_are_the_source_regions(synthetic: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    run_cli("build", "all", "--labelme", synthetic, "--run", run)
    records = check_run(run)  # compares each mask with its region
    doc = json.loads((synthetic / "img_0000.json").read_text())
    first = [d for d in records["dialogues"] if d.image_id == "img_0000"][0]
    index = int(first.target_region_ids[0][1:])
    shape = doc["shapes"][index]
    expected = rasterize(shape["shape_type"], [tuple(p) for p in shape["points"]], 240, 320)
    from prist_builder.annotation.masks import decode

    assert np.array_equal(decode(first.mask), expected)


def _die(*args: object) -> None:
    import os

    os._exit(3)  # a worker killed mid-input (out of memory, a crash in a C library)


def test_a_dead_worker_stops_the_run_and_rejects_nothing(tmp_path: Path, monkeypatch) -> None:
    from prist_builder.pipeline import steps
    from prist_builder.testing.synthetic import write_synthetic

    inputs = tmp_path / "inputs"
    write_synthetic(inputs, 20, seed=2)
    monkeypatch.setattr(steps, "_elements_in_worker", _die)
    run = tmp_path / "run"
    result = run_cli("build", "all", "--labelme", inputs, "--run", run, "--workers", 2)
    assert result.exit_code == 1 and "worker process died" in result.output
    assert read_jsonl(run / "rejects.jsonl") == []
    monkeypatch.undo()
    assert run_cli("build", "all", "--labelme", inputs, "--run", run, "--workers", 2).exit_code == 0
    assert len(check_run(run)["elements"]) == 20
