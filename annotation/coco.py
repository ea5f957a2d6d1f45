"""Import a COCO instances JSON (``images``, ``annotations``, ``categories``).

Polygons go through the project's one rasteriser (:func:`annotation.masks.rasterize`);
RLE segmentations (compressed or not) are decoded with pycocotools. ``iscrowd: 1``
annotations cover several objects at once, so they become ``ignore`` regions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from prist_builder.annotation.masks import decode, polygon_area, rasterize
from prist_builder.annotation.regions import IGNORE_LABELS, AnnotationError, RegionDraft, ShapeProblem, read_json


@dataclass
class CocoImage:
    """One entry of ``images`` with its annotations.

    Attributes:
        coco_id: the COCO image id.
        file_name: ``file_name`` relative to the images folder.
        height, width: declared size in pixels.
        annotations: the entries of ``annotations`` for this image, in file order.
    """

    coco_id: int
    file_name: str
    height: int
    width: int
    annotations: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class CocoFile:
    """A parsed COCO instances file: images by ``file_name`` and category names by id."""

    path: Path
    images: dict[str, CocoImage]
    categories: dict[int, str]


def read_coco(path: Path) -> CocoFile:
    """Read a COCO instances JSON.

    Raises:
        AnnotationError: unreadable file, invalid JSON, or a missing/ill-typed field;
            the message names the file and the field.
    """
    data = read_json(path)
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key) if isinstance(data, dict) else None, list):
            raise AnnotationError(f"{path}: field '{key}' is missing or not a list")
    try:
        categories = {int(c["id"]): str(c["name"]) for c in data["categories"]}
    except (KeyError, TypeError, ValueError) as exc:
        raise AnnotationError(f"{path}: field 'categories' needs an 'id' and a 'name' per entry") from exc
    by_id: dict[int, CocoImage] = {}
    for index, entry in enumerate(data["images"]):
        try:
            image = CocoImage(int(entry["id"]), str(entry["file_name"]), int(entry["height"]), int(entry["width"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise AnnotationError(f"{path}: images[{index}] needs id, file_name, height and width") from exc
        if image.coco_id in by_id:
            raise AnnotationError(f"{path}: images[{index}].id {image.coco_id} is used twice")
        if any(other.file_name == image.file_name for other in by_id.values()):
            raise AnnotationError(f"{path}: images[{index}].file_name {image.file_name!r} is used twice")
        by_id[image.coco_id] = image
    for ann in data["annotations"]:
        image = by_id.get(ann.get("image_id")) if isinstance(ann, dict) else None
        if image is not None:
            image.annotations.append(ann)
    return CocoFile(Path(path), {img.file_name: img for img in by_id.values()}, categories)


def _segmentation_mask(segmentation: Any, height: int, width: int) -> np.ndarray:
    """Rasterise a COCO segmentation (polygon list or RLE dict); raises ``ValueError``."""
    if isinstance(segmentation, list):
        mask = np.zeros((height, width), dtype=bool)
        for flat in segmentation:
            if not isinstance(flat, list) or len(flat) < 6 or len(flat) % 2:
                raise ValueError("a polygon needs an even list of at least 6 coordinates")
            points = [(float(flat[i]), float(flat[i + 1])) for i in range(0, len(flat), 2)]
            if not all(math.isfinite(v) for point in points for v in point):
                raise ValueError("a polygon coordinate is not a finite number")
            if polygon_area(points) <= 0.0:
                raise ValueError("zero-area polygon")
            mask |= rasterize("polygon", points, height, width)
        if not mask.any():
            raise ValueError(f"the polygon lies entirely outside the {width}x{height} image")
        return mask
    if isinstance(segmentation, dict) and "counts" in segmentation and "size" in segmentation:
        if list(segmentation["size"]) != [height, width]:
            raise ValueError(f"RLE size {segmentation['size']} differs from the image's [{height}, {width}]")
        mask = decode(segmentation)
        if not mask.any():
            raise ValueError("zero-area RLE mask")
        return mask
    raise ValueError("segmentation is neither a polygon list nor an RLE object")


def coco_regions(
    coco: CocoFile, image: CocoImage, height: int, width: int
) -> tuple[list[RegionDraft], list[ShapeProblem]]:
    """Region drafts of one COCO image, for an image file of ``height x width`` pixels.

    Returns:
        ``(drafts, problems)``; each problem names ``annotations[id=N]``.
    """
    drafts: list[RegionDraft] = []
    problems: list[ShapeProblem] = []
    name = coco.path.name
    for ann in image.annotations:
        where = f"annotations[id={ann.get('id')}]"
        label = coco.categories.get(ann.get("category_id"))
        if label is None:
            reason = f"{name}: {where}.category_id {ann.get('category_id')!r} is unknown"
            problems.append(ShapeProblem(where, reason, ann))
            continue
        segmentation = ann.get("segmentation")
        try:
            mask = _segmentation_mask(segmentation, height, width)
        except (ValueError, TypeError) as exc:
            problems.append(ShapeProblem(where, f"{name}: {where}.segmentation ({label!r}): {exc}", ann))
            continue
        kind = "coco_polygon" if isinstance(segmentation, list) else "coco_rle"
        drafts.append(
            RegionDraft(
                label=label,
                group_id=ann.get("id") if isinstance(ann.get("id"), int) else None,
                shape_types=[kind],
                source=f"{name}#{where}",
                mask=mask,
                ignore=bool(ann.get("iscrowd")) or label in IGNORE_LABELS,
            )
        )
    return drafts, problems
