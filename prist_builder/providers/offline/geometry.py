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

from prist_builder.annotation.masks import decode
from prist_builder.records import ElementsRecord

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


def mask_geometry(mask: np.ndarray, width: int, height: int, offset: tuple[int, int] = (0, 0)) -> Geometry:
    """Position and size facts of a mask.

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
    area = int(np.count_nonzero(mask))
    x0, y0 = offset
    y = float(np.dot(np.arange(mask.shape[0]), mask.sum(axis=1)) / area) + y0
    x = float(np.dot(np.arange(mask.shape[1]), mask.sum(axis=0)) / area) + x0
    column = COLUMNS[min(max(int(3 * x / width), 0), 2)]
    row = ROWS[min(max(int(3 * y / height), 0), 2)]
    box = (int(cols[0]) + x0, int(rows[0]) + y0, int(cols[-1]) + 1 + x0, int(rows[-1]) + 1 + y0)
    return Geometry(x=x, y=y, box=box, area=area, fraction=area / float(width * height), column=column, row=row)


def element_geometry(record: ElementsRecord) -> dict[str, Geometry]:
    """:class:`Geometry` of every element grounded in a non-ignored region, by element id.

    Decodes each region's RLE and crops it to the region's box before measuring, so the
    result equals what step 1 measured from the same mask.
    """
    out = {}
    width, height = record.image.width, record.image.height
    for element in record.elements:
        if element.region_id is None:
            continue
        region = record.image.region(element.region_id)
        if region.ignore:
            continue
        x0, y0, w, h = region.bbox
        mask = decode(region.mask)[y0 : y0 + h, x0 : x0 + w].astype(bool)
        if mask.any():
            out[element.element_id] = mask_geometry(mask, width, height, (x0, y0))
    return out
