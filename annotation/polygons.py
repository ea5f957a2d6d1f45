"""Masks to editable Labelme polygons (pre-filled work packages, SAM pre-labels, adjudication).

Each connected part of a mask becomes one polygon: its outer contour (holes filled,
scikit-image's marching squares at level 0.5), simplified with Douglas-Peucker at
:data:`SIMPLIFY_TOLERANCE` pixels. Re-rasterised with :func:`~prist_builder.annotation.masks.rasterize`
the polygons keep IoU >= :data:`MIN_ROUND_TRIP_IOU` with the mask for parts larger than
:data:`MIN_PART_AREA` (tested); smaller specks are dropped.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from prist_builder.annotation.masks import rasterize

SIMPLIFY_TOLERANCE = 1.0
"""Douglas-Peucker tolerance in pixels: no contour point moves further than this."""
MIN_PART_AREA = 16
"""Connected parts smaller than this many pixels are left out (specks an annotator would not draw)."""
MIN_ROUND_TRIP_IOU = 0.95
"""Promised IoU between a mask and its polygons re-rasterised (parts >= MIN_PART_AREA)."""
CONTOUR_LEVEL = 0.5
"""Iso-level between background (0) and target (1) that the contour follows."""


def mask_to_polygons(mask: np.ndarray, tolerance: float = SIMPLIFY_TOLERANCE) -> list[list[list[float]]]:
    """Outline each connected part of a mask as a polygon.

    Args:
        mask: ``(H, W) bool`` mask.
        tolerance: simplification tolerance in pixels (0 keeps every contour point).

    Returns:
        polygons as Labelme ``points`` lists ``[[x, y], ...]`` (pixels, x right, y down),
        largest part first; ``[]`` for an empty mask.
    """
    from skimage.measure import approximate_polygon, find_contours  # slow to import (scipy.signal): only here

    labels, _ = ndimage.label(mask)
    parts: list[tuple[int, list[list[float]]]] = []
    for index, region in enumerate(ndimage.find_objects(labels), start=1):
        if region is None:
            continue
        part = labels[region] == index
        part_area = int(np.count_nonzero(part))
        if part_area < MIN_PART_AREA:
            continue
        filled = np.pad(ndimage.binary_fill_holes(part), 1).astype(np.float32)
        contours = find_contours(filled, CONTOUR_LEVEL)
        if not contours:
            continue
        contour = _snap_inside(max(contours, key=len), filled > CONTOUR_LEVEL)
        if tolerance > 0:
            contour = approximate_polygon(contour, tolerance=tolerance)
        top, left = region[0].start - 1, region[1].start - 1  # undo the crop and the padding
        points = [[round(float(c) + left, 2), round(float(r) + top, 2)] for r, c in contour[:-1]]
        if len(points) >= 3:
            parts.append((part_area, points))
    parts.sort(key=lambda p: -p[0])
    return [points for _, points in parts]


def _snap_inside(contour: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """Move each contour vertex (half-way between an inside and an outside pixel centre) onto the
    inside pixel's centre, so the polygon runs through the mask's boundary pixels: Labelme's
    fill-plus-outline drawing then covers them without spilling one pixel outwards."""
    snapped = []
    for r, c in contour:
        rows, cols = {int(np.floor(r)), int(np.ceil(r))}, {int(np.floor(c)), int(np.ceil(c))}
        candidates = [(rr, cc) for rr in rows for cc in cols]
        inner = [p for p in candidates if inside[p]]
        point = min(inner, key=lambda p: (p[0] - r) ** 2 + (p[1] - c) ** 2) if inner else (r, c)
        if not snapped or snapped[-1] != point:
            snapped.append(point)
    if len(snapped) > 1 and snapped[0] != snapped[-1]:
        snapped.append(snapped[0])
    return np.asarray(snapped, dtype=np.float64)


def polygons_to_mask(polygons: list[list[list[float]]], height: int, width: int) -> np.ndarray:
    """Union of polygons rasterised with the project's one rasteriser: ``(height, width) bool``."""
    out = np.zeros((height, width), dtype=bool)
    for points in polygons:
        out |= rasterize("polygon", [(p[0], p[1]) for p in points], height, width)
    return out


def fit_polygons(mask: np.ndarray, tolerance: float = SIMPLIFY_TOLERANCE) -> tuple[list[list[list[float]]], float]:
    """Polygons for a mask and their round-trip IoU, falling back to no simplification when the
    simplified outline drops under :data:`MIN_ROUND_TRIP_IOU`.

    Returns:
        ``(polygons, iou)``: Labelme ``points`` lists, and the IoU of the polygons
        re-rasterised against ``mask`` (1.0 when both are empty). Masks made of many specks
        or with holes can stay under the promise: polygons have no holes.
    """
    best: tuple[list[list[list[float]]], float] | None = None
    for level in (tolerance, 0.0) if tolerance > 0 else (0.0,):
        polygons = mask_to_polygons(mask, level)
        redrawn = polygons_to_mask(polygons, *mask.shape)
        union = int(np.count_nonzero(mask | redrawn))
        iou = 1.0 if union == 0 else int(np.count_nonzero(mask & redrawn)) / union
        if best is None or iou > best[1]:
            best = (polygons, iou)
        if iou >= MIN_ROUND_TRIP_IOU:
            break
    assert best is not None
    return best
