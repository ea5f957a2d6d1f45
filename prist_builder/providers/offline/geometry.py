"""The one source of position and size facts about a mask (offline steps 1 and 2).

Every place, size and spatial relation the offline provider writes comes from
:func:`mask_geometry`: the place is the 3x3 grid cell of the mask's centroid (not of its
bounding box), the size bins the mask's area fraction. Step 1 stores the grid cell and the
size in the element's attributes; step 2 computes the same :class:`Geometry` from the
region's RLE with the same function, so no two turns of a dialogue can disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pycocotools import mask as coco_mask

from prist_builder.records import ElementsRecord
from prist_builder.records.rle import RLE

MAX_SAMPLES = 4096
"""Pixels sampled (evenly strided) per mask for colour naming: flat cost at any size."""

SIZE_BINS: tuple[tuple[float, str], ...] = ((0.01, "tiny"), (0.05, "small"), (0.25, "medium"), (1.01, "large"))
"""Upper area fraction and the relative size name below it."""

ROWS = ("top", "middle", "bottom")
COLUMNS = ("left", "center", "right")


@dataclass(frozen=True)
class Geometry:
    """Position and size of one mask in its image.

    Attributes:
        x, y: centroid in pixels (image frame).
        box: ``(x0, y0, x1, y1)`` bounding box in pixels, exclusive ends.
        area: mask area in pixels.
        fraction: area over the image area, in ``[0, 1]``.
        column, row: the grid third of the centroid (``left/center/right``, ``top/middle/bottom``).
    """

    x: float
    y: float
    box: tuple[int, int, int, int]
    area: int
    fraction: float
    column: str
    row: str

    @property
    def position(self) -> str:
        """Grid cell name: ``"top left"`` ... ``"center"`` ... ``"bottom right"``."""
        if self.row == "middle" and self.column == "center":
            return "center"
        return f"{self.row} {self.column}"

    @property
    def size(self) -> str:
        """``tiny``/``small``/``medium``/``large`` by :data:`SIZE_BINS`."""
        for bound, name in SIZE_BINS:
            if self.fraction < bound:
                return name
        return SIZE_BINS[-1][1]


def sampling_stride(area: int) -> int:
    """Grid stride that leaves about :data:`MAX_SAMPLES` pixels of a mask of ``area`` pixels."""
    return max(1, int(np.sqrt(area / MAX_SAMPLES)))


def _geometry(sum_x: int, sum_y: int, area: int, box: tuple[int, int, int, int], width: int, height: int) -> Geometry:
    """Geometry from exact integer pixel sums: one correctly rounded division per coordinate, so
    every way of measuring the same mask gives the same floats (and the same grid cell)."""
    x, y = sum_x / area, sum_y / area
    column = COLUMNS[min(max(int(3 * x / width), 0), 2)]
    row = ROWS[min(max(int(3 * y / height), 0), 2)]
    return Geometry(x=x, y=y, box=box, area=area, fraction=area / float(width * height), column=column, row=row)


def mask_geometry(mask: np.ndarray, width: int, height: int, offset: tuple[int, int] = (0, 0)) -> Geometry:
    """Position and size facts of a mask (step 1, which has the pixels).

    Args:
        mask: ``(h, w) bool`` mask, the whole image or a crop of it.
        width, height: the image's size in pixels.
        offset: ``(x0, y0)`` of the crop in the image, in pixels.

    The centroid is exact (the mean pixel position), so anyone can check a position the
    dialogues state against the mask.

    Raises:
        ValueError: the mask is empty.
    """
    rows = np.flatnonzero(mask.any(axis=1))
    if len(rows) == 0:
        raise ValueError("geometry of an empty mask")
    cols = np.flatnonzero(mask.any(axis=0))
    x0, y0 = offset
    row_sums = mask.sum(axis=1, dtype=np.int64)
    col_sums = mask.sum(axis=0, dtype=np.int64)
    area = int(row_sums.sum())
    sum_y = int(np.dot(np.arange(mask.shape[0], dtype=np.int64), row_sums)) + y0 * area
    sum_x = int(np.dot(np.arange(mask.shape[1], dtype=np.int64), col_sums)) + x0 * area
    box = (int(cols[0]) + x0, int(rows[0]) + y0, int(cols[-1]) + 1 + x0, int(rows[-1]) + 1 + y0)
    return _geometry(sum_x, sum_y, area, box, width, height)


def rle_counts(counts: str) -> np.ndarray:
    """Run lengths of a COCO compressed RLE string (column-major runs, zeros first), ``(R,) int64``.

    The string packs each count in 5-bit groups (``chr(48 + bits)``, bit 0x20 = more groups,
    bit 0x10 of the last group = negative), and from the third count on stores the
    difference to the count two places before; decoded here with numpy, without building
    the ``(H, W)`` mask.
    """
    codes = np.frombuffer(counts.encode("ascii"), dtype=np.uint8).astype(np.int64) - 48
    if len(codes) == 0:
        return np.zeros(0, dtype=np.int64)
    ends = (codes & 0x20) == 0
    group = np.concatenate(([0], np.cumsum(ends)[:-1]))
    starts = np.flatnonzero(np.concatenate(([True], ends[:-1])))
    shift = 5 * (np.arange(len(codes)) - starts[group])
    values = np.add.reduceat((codes & 0x1F) << shift, starts)
    last = np.flatnonzero(ends)
    negative = (codes[last] & 0x10) != 0
    values = values - np.where(negative, np.left_shift(1, shift[last] + 5), 0)
    out = values.copy()
    out[1::2] = np.cumsum(values[1::2])
    out[2::2] = np.cumsum(values[2::2])
    return out


def _below(n: np.ndarray, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Sums over flat column-major indices ``i < n`` of ``i // height`` and ``i % height``."""
    q, r = n // height, n % height
    return height * q * (q - 1) // 2 + r * q, q * (height * (height - 1) // 2) + r * (r - 1) // 2


def rle_geometry(rle: RLE, width: int, height: int) -> Geometry:
    """:func:`mask_geometry` of a mask given as COCO RLE, from its runs (no ``(H, W)`` decode).

    Raises:
        ValueError: the mask is empty.
    """
    counts = rle_counts(rle.counts)
    ends = np.cumsum(counts)
    first = ends[0::2]  # a zeros run ends where a ones run starts
    stop = ends[1::2]
    first = first[: len(stop)]
    area = int((stop - first).sum())
    if area == 0:
        raise ValueError("geometry of an empty mask")
    high_x, high_y = _below(stop, height)
    low_x, low_y = _below(first, height)
    x0, y0, w, h = (int(round(v)) for v in coco_mask.toBbox({"size": rle.size, "counts": rle.counts.encode("ascii")}))
    return _geometry(
        int((high_x - low_x).sum()), int((high_y - low_y).sum()), area, (x0, y0, x0 + w, y0 + h), width, height
    )


def element_geometry(record: ElementsRecord) -> dict[str, Geometry]:
    """:class:`Geometry` of every element grounded in a non-ignored region, by element id.

    Measured from each region's RLE runs (:func:`rle_geometry`): the same figures step 1
    measured from the pixels of the same mask.
    """
    out = {}
    width, height = record.image.width, record.image.height
    for element in record.elements:
        if element.region_id is None:
            continue
        region = record.image.region(element.region_id)
        if region.ignore:
            continue
        try:
            out[element.element_id] = rle_geometry(region.mask, width, height)
        except ValueError:
            continue
    return out
