"""Facts about the annotated regions of an image that every provider and the target
choice share: position in words, granularity, and which regions overlap or lie inside
others (part-of).

Positions are the cell of a 3x3 grid over the image holding the centre of the region's
box. ``a`` is *part of* ``b`` when at least :data:`PART_OF_SHARE` of ``a``'s pixels lie in
``b`` and ``a`` is the smaller; two regions *overlap* when they share pixels otherwise, and
*touch* when they share (almost) none but come within :data:`TOUCH_GAP` of the image's
longer side of each other (a person on a sofa, a cup on a table).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pycocotools import mask as coco_mask

from prist_builder.records import RLE, ImageRecord, SourceRegion
from prist_builder.records.granularity import Granularity, granularity

PART_OF_SHARE = 0.8
"""``a`` is part of ``b`` when at least this share of ``a``'s pixels lies in ``b``."""

OVERLAP_SHARE = 0.02
"""Two regions overlap when the shared pixels are at least this share of the smaller one."""

_ROWS = ("top", "middle", "bottom")
_COLUMNS = ("left", "centre", "right")

TOUCH_GAP = 0.01
"""Two regions touch when their masks come within this share of the image's longer side."""

RelationKind = Literal["part of", "overlaps", "touches"]


def position_words(box: list[int] | tuple[int, ...], width: int, height: int) -> str:
    """Where a box ``[x, y, w, h]`` (pixels) sits in a ``width x height`` image, in words:
    ``"top left"``, ``"centre"``, ``"bottom right"``, ``"middle left"``, ..."""
    x, y, w, h = box
    column = _COLUMNS[min(2, int(3 * (x + w / 2) / max(width, 1)))]
    row = _ROWS[min(2, int(3 * (y + h / 2) / max(height, 1)))]
    if row == "middle" and column == "centre":
        return "centre"
    if column == "centre":
        return f"{row} centre"
    return f"{row} {column}"


def share_words(area: int, width: int, height: int) -> str:
    """A region's share of the image, never printed as zero: ``"31%"``, ``"2.4%"``,
    ``"0.15%"``, ``"<0.01%"``."""
    share = 100.0 * area / max(width * height, 1)
    if share < 0.01:
        return "<0.01%"
    if share >= 10:
        return f"{share:.0f}%"
    return f"{share:.2g}%"


def region_granularity(region: SourceRegion, image: ImageRecord) -> Granularity:
    """Table 2's granularity class of a region (see :mod:`prist_builder.records.granularity`)."""
    return granularity(region.area, image.height, image.width)


@dataclass(frozen=True)
class RegionRelation:
    """``subject`` is part of / overlaps ``other`` (region ids)."""

    subject: str
    kind: RelationKind
    other: str


def _inside_shares(regions: list[SourceRegion]) -> np.ndarray:
    """``shares[i, j]``: the share of region ``i``'s pixels that lie in region ``j``."""
    n = len(regions)
    shares = np.zeros((n, n))
    if n < 2:
        return shares
    rles = [{"size": list(r.mask.size), "counts": r.mask.counts.encode("ascii")} for r in regions]
    # with iscrowd=1, pycocotools' iou is |dt & gt| / |dt| (the share of dt inside gt)
    shares = np.asarray(coco_mask.iou(rles, rles, [1] * n), dtype=float).reshape(n, n)
    np.fill_diagonal(shares, 0.0)
    return shares


def rle_counts(counts: str) -> np.ndarray:
    """The run lengths (int64) of a COCO compressed RLE string, as pycocotools' ``rleFrString``
    reads them: 5-bit groups with a continuation bit, the last group's sign bit, and from
    the fourth run on a difference from the run two before."""
    chars = np.frombuffer(counts.encode("ascii"), dtype=np.uint8).astype(np.int64) - 48
    ends = np.flatnonzero((chars & 0x20) == 0)
    if ends.size == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.concatenate(([0], ends[:-1] + 1))
    lengths = ends - starts + 1
    shift = 5 * (np.arange(chars.size) - np.repeat(starts, lengths))
    values = np.add.reduceat((chars & 0x1F) << shift, starts)
    values -= np.where(chars[ends] & 0x10, np.left_shift(1, 5 * lengths), 0)  # negative
    runs = values.copy()
    runs[1::2] = np.cumsum(values[1::2])
    runs[2::2] = np.cumsum(values[2::2])
    return runs


def window_mask(rle: RLE, left: int, top: int, right: int, bottom: int) -> np.ndarray:
    """The pixels of an ``(H, W)`` RLE mask in ``[top:bottom, left:right]`` (bool, shape
    ``(bottom - top, right - left)``; the window inside the mask's size), decoded from the
    runs of those columns only: the same pixels as ``pycocotools.mask.decode`` cropped, at
    the cost of the window's columns rather than the whole image."""
    height, width = rle.size
    runs = rle_counts(rle.counts)
    if int(runs.sum()) != height * width or (runs < 0).any():  # not a well-formed mask: the reference decoder
        full = coco_mask.decode({"size": [height, width], "counts": rle.counts.encode("ascii")})
        return full[top:bottom, left:right].astype(bool)
    low, high = left * height, right * height  # column-major positions of the window's columns
    bounds = np.clip(np.concatenate(([0], np.cumsum(runs))), low, high)
    flat = np.repeat(np.arange(runs.size) % 2 == 1, np.diff(bounds))
    return flat.reshape(right - left, height).T[top:bottom]


def _boxes_meet(a: list[int], b: list[int], margin: int = 0) -> bool:
    return (
        a[0] - margin < b[0] + b[2]
        and b[0] - margin < a[0] + a[2]
        and a[1] - margin < b[1] + b[3]
        and b[1] - margin < a[1] + a[3]
    )


def _grow(mask: np.ndarray, gap: int, axis: int) -> np.ndarray:
    """``mask`` (bool) grown by ``gap`` pixels both ways along ``axis`` (zeros beyond its
    edge): a pixel is set when any within ``gap`` of it along the axis is. A running sum,
    so the cost does not grow with ``gap``."""
    n = mask.shape[axis]
    before = [(1, 0) if a == axis else (0, 0) for a in range(mask.ndim)]
    sums = np.pad(np.cumsum(mask, axis=axis, dtype=np.int32), before)  # sums[i]: set pixels before i
    index = np.arange(n)
    ahead, behind = np.minimum(index + gap + 1, n), np.maximum(index - gap, 0)
    return (np.take(sums, ahead, axis=axis) - np.take(sums, behind, axis=axis)) > 0


def _touch(a: SourceRegion, b: SourceRegion, gap: int) -> bool:
    """Whether ``a``'s mask, grown by ``gap`` pixels (a square window), meets ``b``'s.

    Works in the window where both boxes, grown by ``gap``, meet: a pixel of ``a`` within
    ``gap`` of one of ``b`` lies in ``b``'s grown box as well as in its own, and the other
    way round, so no pixel outside that window can decide the answer."""
    height, width = a.mask.size
    x0 = max(0, a.bbox[0] - gap, b.bbox[0] - gap)
    y0 = max(0, a.bbox[1] - gap, b.bbox[1] - gap)
    x1 = min(width, a.bbox[0] + a.bbox[2] + gap, b.bbox[0] + b.bbox[2] + gap)
    y1 = min(height, a.bbox[1] + a.bbox[3] + gap, b.bbox[1] + b.bbox[3] + gap)
    if x0 >= x1 or y0 >= y1:
        return False
    wa, wb = window_mask(a.mask, x0, y0, x1, y1), window_mask(b.mask, x0, y0, x1, y1)
    if not (wa.any() and wb.any()):
        return False
    grown = _grow(_grow(wa, gap, 0), gap, 1)  # a square dilation, one axis after the other
    return bool((grown & wb).any())


RELATIONS_MEMO = 4096
"""Region sets whose relations :func:`region_relations` keeps (a few hundred bytes each):
the target choice and the prompts of steps 2 and 3 ask for those of the same image."""
_relations_memo: OrderedDict[bytes, tuple[RegionRelation, ...]] = OrderedDict()


def _relations_key(usable: list[SourceRegion]) -> bytes:
    """A digest of everything :func:`region_relations` reads of the regions, in order."""
    digest = hashlib.blake2b(digest_size=20)
    for r in usable:
        digest.update(f"{r.region_id}\0{r.mask.size}\0{r.bbox}\0{r.area}\0{r.mask.counts}\1".encode())
    return digest.digest()


def region_relations(regions: list[SourceRegion]) -> list[RegionRelation]:
    """Part-of, overlap and touch relations between the given regions (ignored ones
    excluded), in region order. Costs one mask intersection per pair whose boxes meet, and
    a dilation in the pair's window for pairs that share no pixels; the answer for the
    same regions is remembered (the last :data:`RELATIONS_MEMO` region sets)."""
    usable = [r for r in regions if not r.ignore]
    if len(usable) < 2:
        return []
    key = _relations_key(usable)
    found = _relations_memo.get(key)
    if found is None:
        found = _relations_memo[key] = tuple(_relations(usable))
        while len(_relations_memo) > RELATIONS_MEMO:
            _relations_memo.popitem(last=False)
    else:
        _relations_memo.move_to_end(key)
    return list(found)


def _relations(usable: list[SourceRegion]) -> list[RegionRelation]:
    out: list[RegionRelation] = []
    shares = _inside_shares(usable)
    height, width = usable[0].mask.size
    gap = max(1, round(TOUCH_GAP * max(height, width)))
    for i, a in enumerate(usable):
        for j in range(i + 1, len(usable)):
            b = usable[j]
            if not _boxes_meet(a.bbox, b.bbox, gap):
                continue
            if shares[i, j] >= PART_OF_SHARE and a.area < b.area:
                out.append(RegionRelation(a.region_id, "part of", b.region_id))
            elif shares[j, i] >= PART_OF_SHARE and b.area < a.area:
                out.append(RegionRelation(b.region_id, "part of", a.region_id))
            elif max(shares[i, j], shares[j, i]) >= OVERLAP_SHARE:
                out.append(RegionRelation(a.region_id, "overlaps", b.region_id))
            elif _touch(a, b, gap):
                out.append(RegionRelation(a.region_id, "touches", b.region_id))
    return out


def wholes_of(relations: list[RegionRelation]) -> dict[str, set[str]]:
    """``{part region id: {ids of the regions it is part of}}``."""
    out: dict[str, set[str]] = {}
    for relation in relations:
        if relation.kind == "part of":
            out.setdefault(relation.subject, set()).add(relation.other)
    return out
