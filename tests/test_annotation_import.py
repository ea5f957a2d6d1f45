"""The one rasteriser, RLE helpers, and the Labelme / COCO importers."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import fixtures_dir
from PIL import Image

from prist_builder.annotation.coco import coco_regions, read_coco
from prist_builder.annotation.labelme import labelme_regions, read_labelme
from prist_builder.annotation.masks import area, decode, encode, rasterize
from prist_builder.annotation.regions import AnnotationError, finish_regions


def test_rectangle_and_circle_follow_labelme_conventions() -> None:
    rect = rasterize("rectangle", [(6, 4), (2, 1)], 10, 10)  # corners in any order
    assert rect.dtype == bool and rect.shape == (10, 10)
    assert rect.sum() == 5 * 4  # inclusive corners: x 2..6, y 1..4
    circle = rasterize("circle", [(5, 5), (5, 8)], 11, 11)  # centre, then a point on the circle
    assert circle[5, 5] and circle[2, 5] and circle[8, 5] and not circle[0, 0]


def test_polygon_is_clipped_to_the_image() -> None:
    mask = rasterize("polygon", [(-5, -5), (4, -5), (4, 4), (-5, 4)], 8, 8)
    assert mask.sum() == 25  # the 5x5 part inside


def test_rle_round_trip_and_area() -> None:
    mask = np.zeros((7, 9), dtype=bool)
    mask[2:5, 3:8] = True
    rle = encode(mask)
    assert rle.size == [7, 9] and isinstance(rle.counts, str)
    assert np.array_equal(decode(rle), mask)
    assert area(rle) == 15


def test_voc_labelme_groups_and_ignore_regions() -> None:
    folder = fixtures_dir("labelme_voc")
    doc = read_labelme(folder / "2011_000003.json")
    drafts, problems, skipped = labelme_regions(doc, 338, 500)
    regions, masks = finish_regions(drafts)
    assert problems == [] and skipped == []
    labels = [(r.label, r.group_id, len(r.shape_types), r.ignore) for r in regions]
    # the two polygons of person group 0 are one instance; __ignore__ is kept but ignored
    assert labels == [
        ("person", None, 1, False),
        ("person", 0, 2, False),
        ("bottle", None, 1, False),
        ("__ignore__", None, 1, True),
    ]
    grouped = regions[1]
    assert grouped.source.endswith("#shapes[1,2]")
    parts = [rasterize("polygon", [tuple(p) for p in doc.shapes[i]["points"]], 338, 500) for i in (1, 2)]
    assert np.array_equal(masks[grouped.region_id], parts[0] | parts[1])
    assert grouped.area == int((parts[0] | parts[1]).sum())


def test_labelme_with_embedded_image_data() -> None:
    folder = fixtures_dir("labelme_tutorial")
    doc = read_labelme(folder / "apc2016_obj3.json")
    assert doc.image_data is not None
    image = Image.open(io.BytesIO(doc.image_data))
    assert (image.height, image.width) == (doc.height, doc.width)


def _write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_non_area_shapes_are_skipped_and_masks_are_read(tmp_path: Path) -> None:
    patch = np.zeros((4, 6), dtype=np.uint8)
    patch[1:3, 1:5] = 1
    buffer = io.BytesIO()
    Image.fromarray(patch * 255).save(buffer, format="PNG")
    shapes = [
        {"label": "edge", "points": [[0, 0], [5, 5]], "shape_type": "line", "group_id": None},
        {"label": "dot", "points": [[1, 1]], "shape_type": "point", "group_id": None},
        {
            "label": "blob",
            "points": [[10, 10], [15, 13]],
            "shape_type": "mask",
            "group_id": None,
            "mask": base64.b64encode(buffer.getvalue()).decode(),
        },
    ]
    doc = read_labelme(_write(tmp_path / "x.json", {"shapes": shapes, "imagePath": "x.png"}))
    drafts, problems, skipped = labelme_regions(doc, 40, 40)
    assert [s.split(" ")[0] for s in skipped] == ["shapes[0]", "shapes[1]"]
    assert problems == []
    assert drafts[0].mask.sum() == 8 and drafts[0].mask[11:13, 11:15].all()


@pytest.mark.parametrize(
    ("shape", "reason"),
    [
        ({"label": "a", "points": [[1, 1], [5, 5], [9, 9]], "shape_type": "polygon"}, "zero-area polygon"),
        ({"label": "a", "points": [[100, 100], [120, 100], [120, 130]], "shape_type": "polygon"}, "entirely outside"),
        ({"label": "a", "points": [[1, 1], [1, 5]], "shape_type": "rectangle"}, "zero-area rectangle"),
        ({"label": "a", "points": [[1, 1], ["x", 5], [3, 3]], "shape_type": "polygon"}, "field 'points'"),
        ({"label": "", "points": [[1, 1], [5, 1], [3, 3]], "shape_type": "polygon"}, "label is missing"),
        ({"label": "a", "points": [[1, 1], [5, 1], [3, 3]], "shape_type": "hexagon"}, "unknown"),
    ],
)
def test_bad_shapes_are_problems_naming_the_shape(tmp_path: Path, shape: dict, reason: str) -> None:
    doc = read_labelme(_write(tmp_path / "bad.json", {"shapes": [shape]}))
    drafts, problems, _ = labelme_regions(doc, 20, 20)
    assert drafts == []
    assert len(problems) == 1 and problems[0].where == "shapes[0]"
    assert problems[0].reason.startswith("bad.json: shapes[0]") and reason in problems[0].reason


def test_unreadable_labelme_file_names_the_field(tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(AnnotationError, match="broken.json: not valid JSON"):
        read_labelme(tmp_path / "broken.json")
    with pytest.raises(AnnotationError, match="field 'shapes' is missing"):
        read_labelme(_write(tmp_path / "noshapes.json", {"imagePath": "x.png"}))


def test_coco_polygons_rle_and_crowd(tmp_path: Path) -> None:
    rle_mask = np.zeros((30, 40), dtype=bool)
    rle_mask[5:10, 5:25] = True
    coco = {
        "images": [{"id": 1, "file_name": "a.png", "height": 30, "width": 40}],
        "categories": [{"id": 1, "name": "cup"}, {"id": 2, "name": "crowd"}],
        "annotations": [
            {"id": 10, "image_id": 1, "category_id": 1, "segmentation": [[2, 2, 12, 2, 12, 12, 2, 12]], "iscrowd": 0},
            {"id": 11, "image_id": 1, "category_id": 1, "segmentation": encode(rle_mask).model_dump(), "iscrowd": 0},
            {
                "id": 12,
                "image_id": 1,
                "category_id": 2,
                "iscrowd": 1,
                "segmentation": {"size": [30, 40], "counts": [100, 20, 1080]},
            },
            {"id": 13, "image_id": 1, "category_id": 9, "segmentation": [[0, 0, 1, 0, 1, 1]]},
        ],
    }
    parsed = read_coco(_write(tmp_path / "instances.json", coco))
    drafts, problems = coco_regions(parsed, parsed.images["a.png"], 30, 40)
    assert [d.shape_types for d in drafts] == [["coco_polygon"], ["coco_rle"], ["coco_rle"]]
    assert np.array_equal(drafts[0].mask, rasterize("polygon", [(2, 2), (12, 2), (12, 12), (2, 12)], 30, 40))
    assert np.array_equal(drafts[1].mask, rle_mask)
    assert drafts[2].ignore and drafts[2].mask.sum() == 20
    assert len(problems) == 1 and "category_id 9 is unknown" in problems[0].reason
