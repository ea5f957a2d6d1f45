"""The one rasteriser for region shapes, and COCO RLE helpers (pycocotools).

Every polygon, rectangle, circle and mask that enters the project (Labelme files, COCO
polygons, model answers) becomes a ``(H, W) bool`` numpy mask here. Drawing follows
Labelme's own ``shape_to_mask`` (Pillow ``ImageDraw`` with ``fill=1, outline=1``) so our
masks match what annotators saw in the Labelme GUI.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw
from pycocotools import mask as coco_mask

from prist_builder.records.rle import RLE

Point = tuple[float, float]
Box = tuple[int, int, int, int]
"""``(x0, y0, x1, y1)`` in pixels, exclusive ends: a box outside which a mask is all False."""

AREA_SHAPES = ("polygon", "rectangle", "oriented_rectangle", "circle", "mask")
"""Labelme shape types that enclose an area and so can be a region."""

NON_AREA_SHAPES = ("line", "linestrip", "point", "points")
"""Labelme shape types without area: they are kept out of regions (see README)."""

LINE_WIDTH = 10
"""Stroke width in pixels of ``line``/``linestrip`` shapes (labelme ``shape_to_mask`` default)."""
POINT_RADIUS = 5
"""Radius in pixels of a ``point`` shape's disc (labelme ``shape_to_mask`` default)."""
ORIENTED_RECTANGLE_POINTS = 4
"""Corners of a labelme ``oriented_rectangle`` (drawn as a 4-point polygon)."""


def polygon_area(points: Sequence[Point]) -> float:
    """Geometric area of a simple polygon in square pixels (shoelace formula)."""
    if len(points) < 3:
        return 0.0
    xs = np.array([p[0] for p in points], dtype=np.float64)
    ys = np.array([p[1] for p in points], dtype=np.float64)
    return float(abs(np.dot(xs, np.roll(ys, -1)) - np.dot(ys, np.roll(xs, -1))) / 2.0)


def shape_area(shape_type: str, points: Sequence[Point]) -> float:
    """Geometric area in square pixels of a ``polygon``, ``oriented_rectangle``, ``rectangle`` or ``circle``.

    Raises:
        ValueError: for another shape type or the wrong number of points.
    """
    if shape_type in ("polygon", "oriented_rectangle"):
        return polygon_area(points)
    if len(points) != 2:
        raise ValueError(f"a {shape_type} needs 2 points, got {len(points)}")
    (x1, y1), (x2, y2) = points
    if shape_type == "rectangle":
        return abs(x2 - x1) * abs(y2 - y1)
    if shape_type == "circle":
        return math.pi * ((x2 - x1) ** 2 + (y2 - y1) ** 2)
    raise ValueError(f"shape type {shape_type!r} has no geometric area")


def _check_points(shape_type: str, xy: list[Point]) -> None:
    """Raise ``ValueError`` when ``xy`` has the wrong number of points for ``shape_type``."""
    exact = {"rectangle": 2, "circle": 2, "line": 2, "point": 1, "oriented_rectangle": ORIENTED_RECTANGLE_POINTS}
    if shape_type in exact and len(xy) != exact[shape_type]:
        raise ValueError(f"a {shape_type} needs {exact[shape_type]} points, got {len(xy)}")
    if shape_type == "polygon" and len(xy) < 3:
        raise ValueError(f"a polygon needs at least 3 points, got {len(xy)}")
    if shape_type == "linestrip" and len(xy) < 2:
        raise ValueError(f"a linestrip needs at least 2 points, got {len(xy)}")


def rasterize(shape_type: str, points: Sequence[Point], height: int, width: int) -> np.ndarray:
    """:func:`rasterize_with_box` without the box: the ``(height, width) bool`` mask."""
    return rasterize_with_box(shape_type, points, height, width)[0]


def rasterize_with_box(
    shape_type: str, points: Sequence[Point], height: int, width: int
) -> tuple[np.ndarray, Box | None]:
    """Draw one Labelme shape as a mask, clipped to the image.

    Pixel for pixel the same as labelme 6.3.1's ``labelme.utils.shape_to_mask`` with its
    default ``line_width`` and ``point_size`` (tested in ``tests/test_labelme_parity.py``):
    Pillow ``ImageDraw`` on a canvas of the whole image, ``fill=1, outline=1``. The whole
    image is drawn on purpose: drawing only the shape's bounding box and pasting it shifts
    the coordinates, and Pillow's float rounding then moved edge pixels (1 px in about 1 of
    300 random polygons).

    Args:
        shape_type: ``polygon`` (>= 3 points), ``oriented_rectangle`` (4 corners),
            ``rectangle`` (2 opposite corners, any order), ``circle`` (centre, then a point
            on the circle), ``line`` (2 points), ``linestrip`` (>= 2 points) or ``point``
            (1 point): labelme's conventions. Lines are :data:`LINE_WIDTH` pixels wide and a
            point is a disc of radius :data:`POINT_RADIUS`.
        points: ``(x, y)`` pixel coordinates, x to the right, y down.
        height, width: image size in pixels.

    Returns:
        ``(mask, box)``: the ``(height, width) bool`` mask, in column-major (Fortran)
        order, ready for RLE; the bounding box of its pixels (``None`` if it has none),
        which lets :func:`encode` read only that box.

    Raises:
        ValueError: unknown shape type (``mask`` shapes go through :func:`place_bbox_mask`)
            or wrong number of points.
    """
    xy = [(float(x), float(y)) for x, y in points]
    _check_points(shape_type, xy)
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    if shape_type in ("polygon", "oriented_rectangle"):
        draw.polygon(xy, outline=1, fill=1)
    elif shape_type == "rectangle":
        (x1, y1), (x2, y2) = xy
        draw.rectangle(((min(x1, x2), min(y1, y2)), (max(x1, x2), max(y1, y2))), outline=1, fill=1)
    elif shape_type == "circle":
        (cx, cy), (px, py) = xy
        radius = math.hypot(cx - px, cy - py)
        draw.ellipse(((cx - radius, cy - radius), (cx + radius, cy + radius)), outline=1, fill=1)
    elif shape_type in ("line", "linestrip"):
        draw.line(xy, fill=1, width=LINE_WIDTH)
    elif shape_type == "point":
        (cx, cy) = xy[0]
        corners = ((cx - POINT_RADIUS, cy - POINT_RADIUS), (cx + POINT_RADIUS, cy + POINT_RADIUS))
        draw.ellipse(corners, outline=1, fill=1)
    else:
        raise ValueError(f"cannot rasterise shape type {shape_type!r}")
    return _canvas_mask(canvas)


def _canvas_mask(canvas: Image.Image) -> tuple[np.ndarray, Box | None]:
    """The ``(H, W) bool`` Fortran-order mask of a 0/1 ``L`` canvas and the box of its
    pixels, copying only that box (a region is usually a small part of the image)."""
    width, height = canvas.size
    mask = np.zeros((height, width), dtype=bool, order="F")
    box = canvas.getbbox()
    if box is not None:
        x0, y0, x1, y1 = box
        mask[y0:y1, x0:x1] = np.asarray(canvas.crop(box)).view(bool)
    return mask, box


def union_box(a: Box | None, b: Box | None) -> Box | None:
    """The smallest box holding both (``None``, unknown, wins: the union is unknown)."""
    if a is None or b is None:
        return None
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


def place_bbox_mask(patch: np.ndarray, x1: int, y1: int, height: int, width: int) -> np.ndarray:
    """Place a Labelme ``mask`` shape's patch (its bbox region) into a full-size mask.

    Args:
        patch: ``(h, w) bool`` mask of the bounding box region.
        x1, y1: top-left corner of the patch in image pixels.
        height, width: image size in pixels.

    Returns:
        ``(height, width) bool`` mask; parts of the patch outside the image are cut off.
    """
    full = np.zeros((height, width), dtype=bool, order="F")
    h, w = patch.shape
    top, left = max(y1, 0), max(x1, 0)
    bottom, right = min(y1 + h, height), min(x1 + w, width)
    if bottom > top and right > left:
        full[top:bottom, left:right] = patch[top - y1 : bottom - y1, left - x1 : right - x1]
    return full


def encode(mask: np.ndarray, box: Box | None = None) -> RLE:
    """Encode a ``(H, W) bool`` mask as COCO compressed RLE.

    Args:
        mask: the mask.
        box: a box outside which ``mask`` is all False (e.g. from
            :func:`rasterize_with_box`): only the box is read, and the run lengths of the
            whole image are worked out from it (the same RLE, a few times faster for a
            small region).
    """
    if box is None:
        data = mask.view(np.uint8) if mask.dtype == bool else mask.astype(np.uint8)
        encoded = coco_mask.encode(np.asfortranarray(data))
    else:
        height, width = mask.shape
        encoded = coco_mask.frPyObjects({"size": [height, width], "counts": _box_counts(mask, box)}, height, width)
    return RLE(size=[int(s) for s in encoded["size"]], counts=encoded["counts"].decode("ascii"))


def _box_counts(mask: np.ndarray, box: Box) -> list[int]:
    """Uncompressed COCO RLE counts (column-major runs, zeros first) of ``mask``, reading
    only ``box``."""
    height, width = mask.shape
    x0, y0, x1, y1 = box
    crop_height = y1 - y0
    padded = np.zeros((crop_height + 2, x1 - x0), dtype=np.int8)  # a False row above and below each column
    padded[1:-1] = mask[y0:y1, x0:x1]
    flat = padded.ravel(order="F")
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1  # first padded index of each new run
    column, row = np.divmod(changes, crop_height + 2)
    starts = (x0 + column) * height + (y0 + row - 1)  # the same pixels in the whole image
    tied = np.flatnonzero(starts[1:] == starts[:-1])  # a column ending and the next starting at a full-height edge
    keep = np.ones(len(starts), dtype=bool)
    keep[tied] = keep[tied + 1] = False
    starts = starts[keep & (starts < height * width)]  # a run that ends with the image is not a change
    return np.diff(np.concatenate(([0], starts, [height * width]))).tolist()


def decode(rle: RLE | dict) -> np.ndarray:
    """Decode COCO RLE (model or ``{"size", "counts"}`` dict; counts str or list) to ``(H, W) bool``."""
    data = rle.model_dump() if isinstance(rle, RLE) else dict(rle)
    if isinstance(data["counts"], list):
        data = coco_mask.frPyObjects(data, *data["size"])
    elif isinstance(data["counts"], str):
        data = {"size": data["size"], "counts": data["counts"].encode("ascii")}
    return coco_mask.decode(data).astype(bool)


def union_rle(rles: Sequence[RLE], height: int | None = None, width: int | None = None) -> RLE:
    """The union of COCO RLE masks of one size, as COCO RLE (pycocotools ``merge``, no decoding):
    a multi-target sample's mask. With no mask, one of ``height`` x ``width`` pixels, none set.

    Raises:
        ValueError: masks of different sizes, a size other than ``[height, width]`` when those
            are given, or no mask and no size.
    """
    rles = list(rles)
    size = [height, width] if height is not None and width is not None else (list(rles[0].size) if rles else None)
    if size is None:
        raise ValueError("union of no masks needs a height and a width")
    for index, rle in enumerate(rles):
        if list(rle.size) != size:
            raise ValueError(f"mask {index}: size {list(rle.size)} differs from {size}")
    if len(rles) == 1:
        return rles[0]
    if rles:
        merged = coco_mask.merge([{"size": r.size, "counts": r.counts.encode("ascii")} for r in rles], intersect=False)
    else:
        merged = coco_mask.frPyObjects({"size": size, "counts": [size[0] * size[1]]}, *size)
    return RLE(size=[int(v) for v in merged["size"]], counts=merged["counts"].decode("ascii"))


def area(rle: RLE) -> int:
    """Mask area in pixels, computed on the RLE without decoding."""
    return int(coco_mask.area({"size": rle.size, "counts": rle.counts.encode("ascii")}))


def rle_bbox(rle: RLE) -> list[int]:
    """``[x, y, w, h]`` in pixels of a mask's bounding box, computed on the RLE."""
    box = coco_mask.toBbox({"size": rle.size, "counts": rle.counts.encode("ascii")})
    return [int(v) for v in box]
