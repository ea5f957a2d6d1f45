"""Labelme parity (issue 8, item 11): our rasteriser against labelme's own ``shape_to_mask``.

The pixel-for-pixel comparison runs where labelme is installed (``pip install -e '.[annotate]'``,
as CI does) and skips with the reason otherwise. The other tests here need no labelme:
``oriented_rectangle`` shapes and Windows-style ``imagePath`` were both rejected before the fix.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import fixtures_dir, run_cli

from prist_builder.annotation.labelme import labelme_regions, read_labelme
from prist_builder.annotation.masks import encode, place_bbox_mask, rasterize, rasterize_with_box

SIZE = (240, 320)  # (H, W) pixels: small enough to be quick, large enough for every shape
SHAPES_PER_TYPE = 60
POINT_COUNTS = {"rectangle": 2, "circle": 2, "line": 2, "point": 1, "oriented_rectangle": 4}


def _random_points(rng: random.Random, shape_type: str) -> list[list[float]]:
    height, width = SIZE
    count = POINT_COUNTS.get(shape_type) or rng.randint(3 if shape_type == "polygon" else 2, 12)

    def coord(limit: int) -> float:  # mostly inside, sometimes outside, often fractional
        value = rng.uniform(-0.1 * limit, 1.1 * limit)
        return round(value, rng.choice([0, 1, 2, 6]))

    if shape_type == "oriented_rectangle":  # a rotated rectangle, as labelme's tool draws it
        cx, cy, w, h = coord(width), coord(height), rng.uniform(4, 90), rng.uniform(4, 90)
        angle = rng.uniform(0, np.pi)
        u, v = np.array([np.cos(angle), np.sin(angle)]), np.array([-np.sin(angle), np.cos(angle)])
        signs = ((-1, -1), (1, -1), (1, 1), (-1, 1))
        corners = [np.array([cx, cy]) + su * w / 2 * u + sv * h / 2 * v for su, sv in signs]
        return [[float(x), float(y)] for x, y in corners]
    return [[coord(width), coord(height)] for _ in range(count)]


SHAPE_TYPES = ["polygon", "rectangle", "oriented_rectangle", "circle", "line", "linestrip", "point"]


@pytest.mark.parametrize("shape_type", SHAPE_TYPES)
def test_rasterize_equals_labelme_shape_to_mask(shape_type: str) -> None:
    utils = pytest.importorskip("labelme.utils", reason="labelme is not installed (pip install -e '.[annotate]')")
    rng = random.Random(f"parity-{shape_type}")
    for index in range(SHAPES_PER_TYPE):
        points = _random_points(rng, shape_type)
        theirs = utils.shape_to_mask(SIZE, points, shape_type)
        ours = rasterize(shape_type, [tuple(p) for p in points], *SIZE)
        differing = int(np.count_nonzero(theirs != ours))
        assert differing == 0, f"{shape_type} #{index} {points}: {differing} pixels differ"


# Found by random search: the old bounding-box-crop rasteriser drew 1 pixel more than labelme here.
CROP_REGRESSION = [
    [11.0, 163.9],
    [144.34293, 168.16],
    [318.8, 256.0],
    [330.0, 109.8],
    [174.338082, 261.6],
    [343.2, 166.73],
    [222.0, 199.2],
    [37.0, 123.778061],
    [60.0, 245.5],
]


def test_polygon_that_the_cropped_rasteriser_got_wrong() -> None:
    utils = pytest.importorskip("labelme.utils", reason="labelme is not installed (pip install -e '.[annotate]')")
    theirs = utils.shape_to_mask(SIZE, CROP_REGRESSION, "polygon")
    assert np.array_equal(theirs, rasterize("polygon", [tuple(p) for p in CROP_REGRESSION], *SIZE))


def test_mask_shape_equals_labelme_shapes_to_label() -> None:
    utils = pytest.importorskip("labelme.utils", reason="labelme is not installed (pip install -e '.[annotate]')")
    rng = np.random.default_rng(5)
    for _ in range(20):
        h, w = (int(v) for v in rng.integers(1, 60, size=2))
        x1, y1 = int(rng.integers(0, SIZE[1] - w)), int(rng.integers(0, SIZE[0] - h))
        patch = rng.random((h, w)) > 0.5
        shape = {"label": "a", "points": [[x1, y1], [x1 + w - 1, y1 + h - 1]], "shape_type": "mask", "mask": patch}
        cls, _ = utils.shapes_to_label(SIZE, [shape], {"_background_": 0, "a": 1})
        assert np.array_equal(cls == 1, place_bbox_mask(patch, x1, y1, *SIZE))


def test_voc_fixture_equals_labelme_on_every_shape() -> None:
    utils = pytest.importorskip("labelme.utils", reason="labelme is not installed (pip install -e '.[annotate]')")
    folder = fixtures_dir("labelme_voc")
    for path in sorted(folder.glob("*.json")):
        data = json.loads(path.read_text())
        size = (data["imageHeight"], data["imageWidth"])
        for index, shape in enumerate(data["shapes"]):
            theirs = utils.shape_to_mask(size, shape["points"], shape["shape_type"])
            ours = rasterize(shape["shape_type"], [tuple(p) for p in shape["points"]], *size)
            assert np.array_equal(theirs, ours), f"{path.name} shapes[{index}]"


def test_oriented_rectangle_becomes_a_region(tmp_path: Path) -> None:
    corners = [[10.0, 30.0], [30.0, 10.0], [50.0, 30.0], [30.0, 50.0]]  # a diamond
    path = tmp_path / "a.json"
    path.write_text(
        json.dumps(
            {
                "shapes": [{"label": "box", "points": corners, "shape_type": "oriented_rectangle", "group_id": None}],
                "imageHeight": 64,
                "imageWidth": 64,
            }
        )
    )
    drafts, problems, skipped = labelme_regions(read_labelme(path), 64, 64)
    assert problems == [] and skipped == []
    assert [d.shape_types for d in drafts] == [["oriented_rectangle"]]
    assert np.array_equal(drafts[0].mask, rasterize("polygon", [tuple(p) for p in corners], 64, 64))
    assert 790 < drafts[0].mask.sum() < 850  # the diamond's area is 800 px plus its outline


def test_windows_image_path_is_normalised(tmp_path: Path) -> None:
    voc = fixtures_dir("labelme_voc")
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    shutil.copy(voc / "2011_000003.jpg", tmp_path / "images" / "2011_000003.jpg")
    data = json.loads((voc / "2011_000003.json").read_text())
    data["imagePath"], data["imageData"] = "..\\images\\2011_000003.jpg", None
    (tmp_path / "labels" / "2011_000003.json").write_text(json.dumps(data))
    assert read_labelme(tmp_path / "labels" / "2011_000003.json").image_path == "../images/2011_000003.jpg"
    run = tmp_path / "run"
    result = run_cli("build", "elements", "--labelme", tmp_path / "labels", "--run", run)
    assert result.exit_code == 0, result.output
    assert '"2011_000003"' in (run / "elements.jsonl").read_text()


def test_encoding_by_box_is_the_whole_image_rle() -> None:
    """The box shortcut of ``encode`` gives the same RLE as pycocotools on the whole mask:
    random shapes and the edge cases (corners, full-height boxes, whole image, one pixel)."""
    rng = random.Random(5)
    height, width = SIZE
    cases = []
    for shape_type in SHAPE_TYPES:
        for _ in range(20):
            cases.append(rasterize_with_box(shape_type, _random_points(rng, shape_type), height, width))
    for top, left, bottom, right in [(0, 0, 5, 5), (height - 5, width - 5, height, width), (0, 3, height, 9)]:
        mask = np.zeros(SIZE, dtype=bool, order="F")
        mask[top:bottom, left:right] = True
        cases.append((mask, (left, top, right, bottom)))
    full_height = np.zeros(SIZE, dtype=bool, order="F")
    full_height[:, 10:20] = True
    full_height[5, 15] = False
    cases += [(full_height, (10, 0, 20, height)), (np.ones(SIZE, dtype=bool, order="F"), (0, 0, width, height))]
    dot = np.zeros(SIZE, dtype=bool, order="F")
    dot[7, 9] = True
    cases += [(dot, (9, 7, 10, 8)), (dot, (0, 0, width, height))]  # a loose box is fine too
    checked = 0
    for mask, box in cases:
        if box is not None:
            assert encode(mask, box) == encode(mask)
            checked += 1
    assert checked > 100
