"""Every class of bad input goes to rejects.jsonl with a reason naming the file; the rest goes on."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import check_run, read_jsonl, run_cli


def _labelme(folder: Path, name: str, shapes: list[dict], image: str | None = None, size=(240, 320)) -> Path:
    doc = {
        "version": "5.5.0",
        "flags": {},
        "shapes": shapes,
        "imagePath": image or f"{name}.png",
        "imageData": None,
        "imageHeight": size[0],
        "imageWidth": size[1],
    }
    path = folder / f"{name}.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def _poly(label: str, points: list[list[float]]) -> dict:
    return {"label": label, "points": points, "group_id": None, "shape_type": "polygon", "flags": {}}


GOOD = [_poly("cup", [[10, 10], [60, 10], [60, 60]]), _poly("book", [[100, 100], [200, 100], [200, 180]])]


@pytest.fixture
def mixed(synthetic: Path, tmp_path: Path) -> Path:
    """12 good synthetic inputs plus one input of each bad class."""
    folder = tmp_path / "mixed"
    shutil.copytree(synthetic, folder)
    image = folder / "img_0000.png"
    # unreadable image
    (folder / "z_corrupt.png").write_bytes(image.read_bytes()[:200])
    _labelme(folder, "z_corrupt", GOOD)
    # bad JSON
    (folder / "z_badjson.json").write_text('{"shapes": [', encoding="utf-8")
    # a region outside the image (the image itself still has 2 good regions)
    shutil.copy(image, folder / "z_outside.png")
    _labelme(folder, "z_outside", GOOD + [_poly("ghost", [[900, 900], [950, 900], [950, 950]])])
    # a zero-area polygon (collinear points)
    shutil.copy(image, folder / "z_zero.png")
    _labelme(folder, "z_zero", GOOD + [_poly("flat", [[5, 5], [50, 50], [100, 100]])])
    # fewer than 2 usable regions
    shutil.copy(image, folder / "z_single.png")
    _labelme(folder, "z_single", GOOD[:1] + [{**_poly("__ignore__", [[0, 0], [30, 0], [30, 30]])}])
    # image missing
    _labelme(folder, "z_missing", GOOD, image="nowhere.png")
    # declared size differs from the image
    shutil.copy(image, folder / "z_size.png")
    _labelme(folder, "z_size", GOOD, size=(100, 100))
    return folder


def test_each_bad_input_is_rejected_and_the_rest_is_built(mixed: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = run_cli("build", "all", "--labelme", mixed, "--run", run)
    assert result.exit_code == 0, result.output
    records = check_run(run)
    built = {e.image_id for e in records["elements"]}
    assert {f"img_{i:04d}" for i in range(12)} <= built
    assert {"z_outside", "z_zero"} <= built  # a bad region does not sink its image
    reasons = {r.input_id: r.reason for r in records["rejects"]}
    expected = {
        "z_corrupt": ("z_corrupt.png: unreadable image", "elements"),
        "z_badjson": ("z_badjson.json: not valid JSON", "elements"),
        "z_outside/shapes[2]": (
            "z_outside.json: shapes[2] ('ghost'): the polygon lies entirely outside the 320x240 image",
            "elements",
        ),
        "z_zero/shapes[2]": ("z_zero.json: shapes[2] ('flat'): zero-area polygon", "elements"),
        "z_single": ("z_single.json: 1 usable region(s); an image needs at least 2", "elements"),
        "z_missing": ("z_missing.json: imagePath 'nowhere.png' is not found", "elements"),
        "z_size": ("z_size.json: imageHeight x imageWidth 100x100 differ from the image's 240x320", "elements"),
    }
    assert set(reasons) == set(expected)
    for key, (text, _) in expected.items():
        assert text in reasons[key], reasons[key]
        assert "\n" not in reasons[key]
    bad_shape = [r for r in records["rejects"] if r.input_id == "z_outside/shapes[2]"][0]
    assert bad_shape.raw["label"] == "ghost" and bad_shape.image_id == "z_outside"
    assert f"{len(expected)} rejects" in " ".join(result.output.split())
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["counts"]["rejects"] == len(expected)
    assert manifest["steps"]["elements"]["rejected"] == 5  # whole images set aside


def test_duplicate_image_ids_are_rejected(synthetic: Path, tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    shutil.copy(synthetic / "img_0000.png", images / "same.png")
    shutil.copy(synthetic / "img_0000.png", images / "same.jpg")
    run = tmp_path / "run"
    result = run_cli("build", "elements", "--images", images, "--coco", _coco_for(images, tmp_path), "--run", run)
    assert result.exit_code == 0, result.output  # the clash is rejected, the annotated image is built
    reasons = [r["reason"] for r in read_jsonl(run / "rejects.jsonl")]
    assert len(reasons) == 1 and "image id 'same' is already taken" in reasons[0], reasons
    assert [r["image_id"] for r in read_jsonl(run / "elements.jsonl")] == ["same"]


def _coco_for(images: Path, tmp_path: Path) -> Path:
    coco = {
        "images": [{"id": 1, "file_name": "same.png", "height": 240, "width": 320}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "segmentation": [[10, 10, 60, 10, 60, 60]]},
            {"id": 2, "image_id": 1, "category_id": 1, "segmentation": [[100, 100, 200, 100, 200, 180]]},
        ],
        "categories": [{"id": 1, "name": "cup"}],
    }
    path = tmp_path / "coco.json"
    path.write_text(json.dumps(coco))
    return path
