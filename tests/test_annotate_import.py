"""``prist annotate import``: Labelme quirks and broken files (the rest of the folder still imports)."""

from __future__ import annotations

import base64
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import read_jsonl, run_cli
from PIL import Image

from prist_builder.annotation.assignment import deal, split_groups
from prist_builder.annotation.masks import decode, rasterize
from prist_builder.annotation.regions import AnnotationError
from prist_builder.annotation.target import read_target


@pytest.fixture(scope="module")
def package(voc: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A VOC run and its exported work package (annotators a, b; one group)."""
    root = tmp_path_factory.mktemp("pkg")
    run, pkg = root / "run", root / "pkg"
    assert run_cli("build", "all", "--labelme", voc, "--run", run).exit_code == 0
    assert run_cli("annotate", "export", run, "--out", pkg, "--annotators", "a,b", "--groups", "1").exit_code == 0
    return run, pkg


@pytest.fixture(scope="module")
def voc() -> Path:  # module-scoped twin of conftest's fixture
    from conftest import fixtures_dir

    return fixtures_dir("labelme_voc")


def _copy_run(run: Path, tmp_path: Path) -> Path:
    target = tmp_path / "run"
    shutil.copytree(run, target)
    return target


def test_broken_files_are_reported_and_the_rest_imported(package: tuple[Path, Path], tmp_path: Path) -> None:
    run, pkg = package
    run = _copy_run(run, tmp_path)
    folder = tmp_path / "mine"
    shutil.copytree(pkg / "a", folder)
    (tmp_path / "images").symlink_to(pkg / "images")
    files = sorted(folder.glob("*.json"))
    assert len(files) >= 7
    good, bad_json, no_image, short_polygon, wrong_size, unknown, windows = files[:7]
    bad_json.write_text(bad_json.read_text()[:100])
    data = json.loads(no_image.read_text())
    no_image.write_text(json.dumps(dict(data, imagePath="../images/absent.jpg")))
    data = json.loads(short_polygon.read_text())
    data["shapes"].append(dict(data["shapes"][0], points=[[1, 1], [9, 9]]))
    short_polygon.write_text(json.dumps(data))
    data = json.loads(wrong_size.read_text())
    wrong_size.write_text(json.dumps(dict(data, imageHeight=data["imageHeight"] + 1)))
    data = json.loads(unknown.read_text())
    data["prist"]["sample_id"] = "no-such-sample"
    unknown.write_text(json.dumps(data))
    data = json.loads(windows.read_text())
    windows.write_text(json.dumps(dict(data, imagePath=data["imagePath"].replace("/", "\\"))))

    result = run_cli("annotate", "import", run, "--labelme", folder, "--annotator", "a")
    assert result.exit_code == 1
    lines = result.output.splitlines()
    expected = {
        bad_json: "not valid JSON",
        no_image: "imagePath",
        short_polygon: "shapes[",
        wrong_size: "imageHeight",
        unknown: "no-such-sample",
    }
    for path, field in expected.items():
        hits = [line for line in lines if path.name in line and "error" in line]
        assert len(hits) == 1 and field in hits[0], (path.name, lines)
    index = len(json.loads(short_polygon.read_text())["shapes"]) - 1
    assert any(f"shapes[{index}]" in line and "enclose no area" in line for line in lines)
    assert f"imported {len(files) - 5}, unchanged 0, failed 5" in result.output
    imported = {r["sample_id"] for r in read_jsonl(run / "annotations.jsonl")}
    assert good.stem in imported and windows.stem in imported and unknown.stem not in imported


def test_embedded_image_data_groups_and_clipping(package: tuple[Path, Path], tmp_path: Path) -> None:
    run, pkg = package
    run = _copy_run(run, tmp_path)
    folder = tmp_path / "mine"
    folder.mkdir()
    source = sorted((pkg / "a").glob("*.json"))[0]
    data = json.loads(source.read_text())
    image = (source.parent / data["imagePath"]).resolve()
    height, width = data["imageHeight"], data["imageWidth"]
    outside = [[-20.0, -20.0], [30.0, -20.0], [30.0, 30.0], [-20.0, 30.0]]  # partly outside: clipped
    part = [[100.0, 100.0], [140.0, 100.0], [140.0, 150.0]]
    data.update(
        imagePath=None,
        imageData=base64.b64encode(image.read_bytes()).decode("ascii"),
        shapes=[
            {"label": "x", "points": outside, "group_id": 1, "shape_type": "polygon"},
            {"label": "x", "points": part, "group_id": 1, "shape_type": "polygon"},
            {"label": "x", "points": [[200, 50], [230, 80]], "group_id": None, "shape_type": "rectangle"},
            {"label": "edge", "points": [[0, 0], [50, 50]], "group_id": None, "shape_type": "line"},
            {"label": "__ignore__", "points": [[300, 10], [320, 30]], "group_id": None, "shape_type": "rectangle"},
        ],
    )
    (folder / source.name).write_text(json.dumps(data))
    result = run_cli("annotate", "import", run, "--labelme", folder, "--annotator", "z")
    assert result.exit_code == 0, result.output
    (record,) = read_jsonl(run / "annotations.jsonl")
    expected = (
        rasterize("polygon", outside, height, width)
        | rasterize("polygon", part, height, width)
        | rasterize("rectangle", [(200, 50), (230, 80)], height, width)
    )
    mask = decode(record["mask"])
    assert np.array_equal(mask, expected) and mask[0, 0] and mask[:30, :30].all()
    assert record["annotator"] == "z" and len(record["sha256"]) == 64


def _exif_rotated_jpeg(path: Path, width: int, height: int) -> None:
    """A ``width x height`` JPEG whose EXIF orientation 6 shows it rotated (``height x width``)."""
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (width, height), (90, 120, 30)).save(path, exif=exif.tobytes())


def test_exif_rotated_image_uses_the_displayed_size(tmp_path: Path) -> None:
    _exif_rotated_jpeg(tmp_path / "p.jpg", 40, 30)  # displayed 30 wide, 40 high
    doc = {
        "shapes": [{"label": "t", "points": [[2, 2], [20, 35]], "shape_type": "rectangle"}],
        "imagePath": "p.jpg",
        "imageData": None,
        "imageHeight": 40,
        "imageWidth": 30,
    }
    (tmp_path / "s1.json").write_text(json.dumps(doc))
    target = read_target(tmp_path / "s1.json", lambda _: (40, 30))
    assert target.mask.shape == (40, 30) and target.sample_id == "s1" and target.mask[35, 20]
    (tmp_path / "s1.json").write_text(json.dumps(dict(doc, imageHeight=30, imageWidth=40)))  # the raw size
    with pytest.raises(AnnotationError, match="imageHeight"):
        read_target(tmp_path / "s1.json", lambda _: (40, 30))


def test_adjudication_file_needs_a_target_shape(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (20, 10)).save(buffer, format="PNG")
    doc = {
        "shapes": [{"label": "ref:A a", "points": [[1, 1], [5, 1], [5, 5]], "shape_type": "polygon"}],
        "imageData": base64.b64encode(buffer.getvalue()).decode(),
        "imagePath": "x.png",
    }
    (tmp_path / "s.json").write_text(json.dumps(doc))
    assert not read_target(tmp_path / "s.json", lambda _: (10, 20)).mask.any()
    with pytest.raises(AnnotationError, match="no target shape"):
        read_target(tmp_path / "s.json", lambda _: (10, 20), require_target=True)


def test_assignment_is_deterministic_balanced_and_stable() -> None:
    groups = split_groups(["a", "b", "c", "d", "e"], 2)
    assert groups == {"g1": ["a", "b", "c"], "g2": ["d", "e"]}
    samples = [f"s{i}" for i in range(30)]
    first, again, other = deal(samples, groups, 1), deal(samples, groups, 1), deal(samples, groups, 2)
    assert {k: v.annotators for k, v in first.items()} == {k: v.annotators for k, v in again.items()}
    assert {k: v.annotators for k, v in first.items()} != {k: v.annotators for k, v in other.items()}
    for assignment in first.values():
        assert len(set(assignment.annotators)) == 2 and set(assignment.annotators) <= set(groups[assignment.group])
    load = {a: sum(a in v.annotators for v in first.values()) for a in "abcde"}
    assert load == {"a": 10, "b": 10, "c": 10, "d": 15, "e": 15}
    more = deal(samples + ["new"], groups, 9, previous=first)
    assert all(more[s] == first[s] for s in samples) and "new" in more
    with pytest.raises(ValueError, match="groups"):
        split_groups(["a", "b", "c"], 2)
