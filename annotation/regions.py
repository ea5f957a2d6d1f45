"""Region drafts shared by the Labelme and COCO importers, and their finishing into records."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from prist_builder.annotation.masks import Box, area, encode, rle_bbox
from prist_builder.records.image import SourceRegion

IGNORE_LABELS = frozenset({"__ignore__", "_background_"})
"""Labels that mark pixels to leave out (Labelme's convention); such regions are never targets."""


class AnnotationError(ValueError):
    """A whole annotation file is unusable; the message is one line naming the file and field."""


def read_json(path: Path) -> Any:
    """Parse a JSON annotation file.

    Raises:
        AnnotationError: the file cannot be read or is not valid JSON (one line naming it).
    """
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise AnnotationError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AnnotationError(f"{path}: not valid JSON: {exc}") from exc


@dataclass
class ShapeProblem:
    """One shape or annotation that could not become (part of) a region.

    Attributes:
        where: the field at fault, e.g. ``"shapes[3]"`` or ``"annotations[id=17]"``.
        reason: one line saying what is wrong.
        raw: the offending shape or annotation as read.
    """

    where: str
    reason: str
    raw: Any = None


@dataclass
class RegionDraft:
    """A region before it gets an id: a label and a ``(H, W) bool`` mask.

    ``box`` (pixels, see :data:`~prist_builder.annotation.masks.Box`), when known, bounds
    the mask's pixels: encoding then reads only the box.
    """

    label: str
    group_id: int | None
    shape_types: list[str]
    source: str
    mask: np.ndarray
    ignore: bool = False
    members: list[str] = field(default_factory=list)
    box: Box | None = None


def finish_regions(drafts: list[RegionDraft]) -> tuple[list[SourceRegion], dict[str, np.ndarray]]:
    """Give drafts ids ``r0, r1, ...`` in order and measure area (pixels), bbox and RLE.

    Drafts with an empty mask are dropped; callers report them as problems first.

    Returns:
        ``(regions, masks)``: the region records and each one's ``(H, W) bool`` mask by id.
    """
    regions: list[SourceRegion] = []
    masks: dict[str, np.ndarray] = {}
    for draft in drafts:
        rle = encode(draft.mask, draft.box)
        pixels = area(rle)
        if pixels == 0:
            continue
        regions.append(
            SourceRegion(
                region_id=f"r{len(regions)}",
                label=draft.label,
                group_id=draft.group_id,
                shape_types=draft.shape_types,
                source=draft.source,
                mask=rle,
                area=pixels,
                bbox=rle_bbox(rle),
                ignore=draft.ignore,
            )
        )
        masks[regions[-1].region_id] = draft.mask
    return regions, masks
