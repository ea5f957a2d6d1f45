"""Agreement between two annotators' masks: IoU and Cohen's kappa (paper section 3.3, Table 1).

Both scores come from four pixel counts (the 2x2 confusion table of target vs background
over every pixel of the image), so a pair of ``(H, W) bool`` masks costs three
``np.count_nonzero`` calls and one ``&`` (:func:`score_pair`), and a pair of COCO RLE masks
costs two run-length area sums and one run-length intersection (:func:`score_rles`, what
``prist qa agreement`` uses on a run): no per-pixel Python and no sklearn call.

Degenerate cases (defined here, tested in ``tests/test_qa_agreement.py``):

- both masks empty: IoU 1.0 (nothing to disagree on) and kappa 1.0;
- both masks the full image: IoU 1.0, kappa 1.0;
- one mask empty, the other not: IoU 0.0, kappa 0.0 (sklearn agrees);
- identical masks: IoU 1.0, kappa 1.0.

sklearn's ``cohen_kappa_score`` is ``nan`` in the first two cases (chance agreement is 1);
everywhere else our kappa equals it to 1e-9.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pycocotools import mask as coco_mask

from prist_builder.annotation.defaults import IOU_THRESHOLD, KAPPA_THRESHOLD
from prist_builder.records.rle import RLE


@dataclass(frozen=True)
class PairScore:
    """Agreement of two masks of one image.

    Attributes:
        iou: intersection over union of the target pixels, in [0, 1].
        kappa: Cohen's kappa over all pixels (target vs background), in [-1, 1].
        area_a, area_b: target pixels of each mask.
        intersection: pixels both call target.
        pixels: pixels of the image (H * W).
    """

    iou: float
    kappa: float
    area_a: int
    area_b: int
    intersection: int
    pixels: int


def score_counts(area_a: int, area_b: int, intersection: int, pixels: int) -> PairScore:
    """IoU and kappa from the confusion counts of two masks (all in pixels).

    Raises:
        ValueError: counts that no pair of masks can have (negative, intersection larger
            than either area, an area larger than the image, or an empty image).
    """
    if pixels <= 0 or not 0 <= intersection <= min(area_a, area_b) or max(area_a, area_b) > pixels:
        raise ValueError(f"inconsistent counts: a={area_a} b={area_b} both={intersection} pixels={pixels}")
    union = area_a + area_b - intersection
    iou = 1.0 if union == 0 else intersection / union
    n = float(pixels)
    observed = (pixels - union + intersection) / n
    chance = (area_a * area_b + (pixels - area_a) * (pixels - area_b)) / (n * n)
    if chance >= 1.0:  # both masks empty, or both full: perfect agreement on one class only
        kappa = 1.0
    else:
        kappa = (observed - chance) / (1.0 - chance)
    return PairScore(iou=iou, kappa=kappa, area_a=area_a, area_b=area_b, intersection=intersection, pixels=pixels)


def score_pair(a: np.ndarray, b: np.ndarray) -> PairScore:
    """IoU and Cohen's kappa of two ``(H, W) bool`` masks of the same image.

    Raises:
        ValueError: the masks differ in shape or are not boolean.
    """
    if a.shape != b.shape:
        raise ValueError(f"masks differ in size: {a.shape} vs {b.shape}")
    if a.dtype != bool or b.dtype != bool:
        raise ValueError(f"masks must be bool, got {a.dtype} and {b.dtype}")
    return score_counts(int(np.count_nonzero(a)), int(np.count_nonzero(b)), int(np.count_nonzero(a & b)), a.size)


def score_rles(a: RLE, b: RLE) -> PairScore:
    """IoU and Cohen's kappa of two COCO RLE masks of the same image, without decoding them.

    The areas and the IoU come from pycocotools on the run lengths; the intersection is
    recovered exactly as ``round(iou * (area_a + area_b) / (1 + iou))`` (an integer below
    2**31, so double rounding error cannot reach 0.5). Same results as :func:`score_pair`
    on the decoded masks (tested).

    Raises:
        ValueError: the masks differ in size.
    """
    if list(a.size) != list(b.size):
        raise ValueError(f"masks differ in size: {a.size} vs {b.size}")
    coco_a = {"size": list(a.size), "counts": a.counts.encode("ascii")}
    coco_b = {"size": list(b.size), "counts": b.counts.encode("ascii")}
    area_a, area_b = (int(v) for v in coco_mask.area([coco_a, coco_b]))
    if area_a == 0 or area_b == 0:
        intersection = 0
    else:
        iou = float(coco_mask.iou([coco_a], [coco_b], [0])[0][0])
        intersection = round(iou * (area_a + area_b) / (1.0 + iou))
    return score_counts(area_a, area_b, intersection, int(a.size[0]) * int(a.size[1]))


@dataclass(frozen=True)
class InstanceMatch:
    """One matched (or unmatched) pair of instances of one label.

    Attributes:
        a, b: index into A's / B's instance list, ``None`` when unmatched.
        score: agreement of the two masks (an unmatched instance is scored against an empty mask).
    """

    a: int | None
    b: int | None
    score: PairScore


def match_instances(a_masks: Sequence[np.ndarray], b_masks: Sequence[np.ndarray]) -> list[InstanceMatch]:
    """Pair A's instances with B's so that the summed IoU is largest (Hungarian method).

    Pairs with IoU 0 are left unmatched; every instance appears exactly once in the result,
    unmatched ones scored against an empty mask (IoU 0, kappa 0).

    Args:
        a_masks, b_masks: ``(H, W) bool`` masks of one label's instances, all the same size.

    Returns:
        matched pairs in A's order, then A's unmatched, then B's unmatched.
    """
    from scipy.optimize import linear_sum_assignment  # imported here: only the folder form needs it

    ious = np.zeros((len(a_masks), len(b_masks)), dtype=np.float64)
    for i, a in enumerate(a_masks):
        for j, b in enumerate(b_masks):
            ious[i, j] = score_pair(a, b).iou
    rows, cols = linear_sum_assignment(ious, maximize=True) if ious.size else ([], [])
    out: list[InstanceMatch] = []
    used_a: set[int] = set()
    used_b: set[int] = set()
    for i, j in sorted(zip(rows, cols, strict=True)):
        if ious[i, j] > 0.0:
            out.append(InstanceMatch(int(i), int(j), score_pair(a_masks[i], b_masks[j])))
            used_a.add(int(i))
            used_b.add(int(j))
    for i, a in enumerate(a_masks):
        if i not in used_a:
            out.append(InstanceMatch(i, None, score_pair(a, np.zeros_like(a))))
    for j, b in enumerate(b_masks):
        if j not in used_b:
            out.append(InstanceMatch(None, j, score_pair(np.zeros_like(b), b)))
    return out


@dataclass(frozen=True)
class GroupSummary:
    """One row of the Table 1 layout.

    Attributes:
        group: group name (``overall`` for the last row).
        n: scored pairs.
        mean_iou, mean_kappa: means over the pairs (``nan`` when ``n == 0``).
        passed: both means reach their thresholds.
    """

    group: str
    n: int
    mean_iou: float
    mean_kappa: float
    passed: bool


def summarise(
    rows: Sequence[tuple[str, PairScore]], iou_min: float = IOU_THRESHOLD, kappa_min: float = KAPPA_THRESHOLD
) -> list[GroupSummary]:
    """Per-group and overall means of ``(group, score)`` rows, groups in sorted order.

    Returns:
        one :class:`GroupSummary` per group, then ``overall``; a group with no pairs fails.
    """
    groups: dict[str, list[PairScore]] = {}
    for group, score in rows:
        groups.setdefault(group, []).append(score)

    def one(name: str, scores: list[PairScore]) -> GroupSummary:
        if not scores:
            return GroupSummary(name, 0, float("nan"), float("nan"), False)
        iou = float(np.mean([s.iou for s in scores]))
        kappa = float(np.mean([s.kappa for s in scores]))
        return GroupSummary(name, len(scores), iou, kappa, iou >= iou_min and kappa >= kappa_min)

    out = [one(name, groups[name]) for name in sorted(groups)]
    out.append(one("overall", [s for _, s in rows]))
    return out
