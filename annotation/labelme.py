"""Import Labelme JSON files (the format annotators save from the Labelme GUI).

Conventions honoured (they are Labelme's own):

- Shapes with the same ``label`` and the same non-null ``group_id`` are one instance, e.g.
  an occluded person drawn as two polygons. A shape with ``group_id: null`` is an instance
  of its own.
- ``__ignore__`` (and ``_background_``) regions are kept with ``ignore=True``: never targets.
- Area shapes (``polygon``, ``oriented_rectangle``, ``rectangle``, ``circle``, ``mask``) become regions. Shapes
  without area (``line``, ``linestrip``, ``point``, ``points``) mark no pixels of an
  object, so they are listed in the image record's ``skipped_shapes`` and not used.
- Shapes partly outside the image are clipped; a shape wholly outside it, or with zero
  area, is a problem reported against ``shapes[i]``.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
from dataclasses import dataclass
from pathlib import Path, PureWindowsPath
from typing import Any

import numpy as np
from PIL import Image

from prist_builder.annotation.masks import (
    AREA_SHAPES,
    NON_AREA_SHAPES,
    Box,
    place_bbox_mask,
    rasterize_with_box,
    shape_area,
    union_box,
)
from prist_builder.annotation.regions import IGNORE_LABELS, AnnotationError, RegionDraft, ShapeProblem, read_json


@dataclass
class LabelmeFile:
    """A parsed Labelme file.

    Attributes:
        path: the JSON file.
        image_path: its ``imagePath`` (relative to the JSON file, ``/`` separators even when
            saved on Windows), possibly ``None``.
        image_data: decoded bytes of the embedded ``imageData``, or ``None``.
        height, width: ``imageHeight`` / ``imageWidth`` in pixels (``None`` if absent).
        shapes: the raw ``shapes`` list.
    """

    path: Path
    image_path: str | None
    image_data: bytes | None
    height: int | None
    width: int | None
    shapes: list[dict[str, Any]]


def normalise_image_path(image_path: str) -> str:
    """A Labelme ``imagePath`` with Windows separators turned into ``/``, as labelme itself reads it.

    ``..\\images\\a.jpg`` (saved by Labelme on Windows) becomes ``../images/a.jpg``; a POSIX
    path is unchanged. The result is relative to the JSON file unless it was absolute.
    """
    return PureWindowsPath(image_path).as_posix()


def read_labelme(path: Path) -> LabelmeFile:
    """Read and structurally check one Labelme JSON file.

    Raises:
        AnnotationError: unreadable file, invalid JSON, or a missing/ill-typed top-level
            field; the message names the file and the field.
    """
    data = read_json(path)
    if not isinstance(data, dict):
        raise AnnotationError(f"{path}: top level is {type(data).__name__}, expected a Labelme object")
    shapes = data.get("shapes")
    if not isinstance(shapes, list):
        raise AnnotationError(f"{path}: field 'shapes' is missing or not a list")
    image_data = None
    if data.get("imageData"):
        try:
            image_data = base64.b64decode(data["imageData"], validate=True)
        except (binascii.Error, TypeError) as exc:
            raise AnnotationError(f"{path}: field 'imageData' is not valid base64") from exc
    sizes = {}
    for key in ("imageHeight", "imageWidth"):
        value = data.get(key)
        if value is not None and (not isinstance(value, int) or value <= 0):
            raise AnnotationError(f"{path}: field '{key}' must be a positive integer, got {value!r}")
        sizes[key] = value
    image_path = data.get("imagePath")
    if image_path is not None and not isinstance(image_path, str):
        raise AnnotationError(f"{path}: field 'imagePath' must be a string")
    if image_path:
        image_path = normalise_image_path(image_path)
    return LabelmeFile(Path(path), image_path, image_data, sizes["imageHeight"], sizes["imageWidth"], shapes)


def _points(shape: dict[str, Any]) -> list[tuple[float, float]]:
    points = shape.get("points")
    if not isinstance(points, list):
        raise ValueError("field 'points' is missing or not a list")
    out = []
    for point in points:
        if (
            not isinstance(point, (list, tuple))
            or len(point) != 2
            or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in point)
        ):
            raise ValueError(f"field 'points' holds {point!r}, not an [x, y] pair of numbers")
        out.append((float(point[0]), float(point[1])))
    return out


def shape_mask(shape: dict[str, Any], shape_type: str, height: int, width: int) -> np.ndarray:
    """Rasterise one Labelme area shape dict to ``(height, width) bool``.

    Raises:
        ValueError: the reason the shape is unusable (bad points, zero area, outside the image).
    """
    return shape_mask_with_box(shape, shape_type, height, width)[0]


def shape_mask_with_box(
    shape: dict[str, Any], shape_type: str, height: int, width: int
) -> tuple[np.ndarray, Box | None]:
    """:func:`shape_mask` and a box outside which the mask is all False (``None``: unknown).

    Raises:
        ValueError: the reason the shape is unusable (bad points, zero area, outside the image).
    """
    points = _points(shape)
    box: Box | None = None
    if shape_type == "mask":
        if len(points) != 2 or not shape.get("mask"):
            raise ValueError("a mask shape needs 2 points and a base64 PNG in 'mask'")
        try:
            patch = np.asarray(Image.open(io.BytesIO(base64.b64decode(shape["mask"]))), dtype=bool)
        except (binascii.Error, OSError, ValueError) as exc:
            raise ValueError(f"field 'mask' is not a base64 PNG ({exc})") from exc
        if patch.ndim == 3:
            patch = patch.any(axis=2)
        (x1, y1), _ = points
        mask = place_bbox_mask(patch, int(x1), int(y1), height, width)
        if not patch.any():
            raise ValueError("zero-area mask: the 'mask' PNG has no pixel set")
    else:
        if shape_area(shape_type, points) <= 0.0:
            raise ValueError(f"zero-area {shape_type}: its {len(points)} points enclose no area")
        mask, box = rasterize_with_box(shape_type, points, height, width)
    if box is None and not mask.any():
        raise ValueError(f"the {shape_type} lies entirely outside the {width}x{height} image")
    return mask, box


def labelme_regions(
    doc: LabelmeFile, height: int, width: int
) -> tuple[list[RegionDraft], list[ShapeProblem], list[str]]:
    """Turn a Labelme file's shapes into region drafts for an image of ``height x width`` pixels.

    Returns:
        ``(drafts, problems, skipped)``: drafts in order of their first shape; problems
        for shapes that could not be used (each naming ``shapes[i]``); and one line per
        non-area shape left out on purpose.
    """
    problems: list[ShapeProblem] = []
    skipped: list[str] = []
    groups: dict[tuple[str, Any], RegionDraft] = {}
    name = doc.path.name
    for index, shape in enumerate(doc.shapes):
        where = f"shapes[{index}]"
        if not isinstance(shape, dict):
            problems.append(ShapeProblem(where, f"{name}: {where} is not an object", shape))
            continue
        label = shape.get("label")
        shape_type = shape.get("shape_type") or "polygon"
        group_id = shape.get("group_id")
        if not isinstance(label, str) or not label.strip():
            problems.append(ShapeProblem(where, f"{name}: {where}.label is missing or empty", shape))
            continue
        if group_id is not None and not isinstance(group_id, int):
            problems.append(ShapeProblem(where, f"{name}: {where}.group_id must be an integer or null", shape))
            continue
        if shape_type in NON_AREA_SHAPES:
            skipped.append(f"{where} ({label!r}, {shape_type}): no area, not a region")
            continue
        if shape_type not in AREA_SHAPES:
            problems.append(ShapeProblem(where, f"{name}: {where}.shape_type {shape_type!r} is unknown", shape))
            continue
        try:
            mask, box = shape_mask_with_box(shape, shape_type, height, width)
        except ValueError as exc:
            problems.append(ShapeProblem(where, f"{name}: {where} ({label!r}): {exc}", shape))
            continue
        key = (label, group_id) if group_id is not None else (label, f"#{index}")
        draft = groups.get(key)
        if draft is None:
            groups[key] = RegionDraft(
                label=label,
                group_id=group_id,
                shape_types=[shape_type],
                source=f"{name}#shapes[{index}]",
                mask=mask,
                ignore=label in IGNORE_LABELS,
                members=[str(index)],
                box=box,
            )
        else:
            draft.mask |= mask
            draft.box = union_box(draft.box, box)
            draft.shape_types.append(shape_type)
            draft.members.append(str(index))
            draft.source = f"{name}#shapes[{','.join(draft.members)}]"
    return list(groups.values()), problems, skipped
