"""Segmentation metrics of Table 3: gIoU, cIoU and pixel-wise precision, recall and F1.

Definitions (all figures in percent, the paper's scale):

- per sample, with ``I`` the intersection, ``U`` the union, ``P`` the predicted and ``G`` the
  target area in pixels: ``IoU = I / U`` (an empty union, both masks empty, counts 1.0, as LISA
  does), ``precision = I / P`` and ``recall = I / G`` (Appendix C.4.1; a zero denominator gives
  1.0 when both masks are empty, else 0.0), ``F1 = 2PR / (P + R)``.
- ``gIoU``: mean of per-sample IoU; ``cIoU``: ``sum(I) / sum(U)`` over all samples (LISA).
- pixel-wise precision, recall, F1 *micro*: every pixel of the split is one binary decision,
  ``sum(I) / sum(P)``, ``sum(I) / sum(G)`` and their harmonic mean. This is the Table 3
  headline (its F1 is the harmonic mean of its precision and recall). *Macro*: the mean of the
  per-sample precision, recall and F1.

Areas and intersections are computed on the RLEs by pycocotools, without decoding masks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from pycocotools import mask as coco_mask

from prist_builder.records.rle import RLE

PERCENT = 100.0
"""Scale of every reported figure (the paper reports percentages)."""
GRANULARITIES = ("coarse", "medium", "fine")
"""Granularity classes of Table 2, in the paper's order."""


AREA_CHUNK = 255
"""Masks per ``pycocotools.mask.area`` call: 2.0.11 with numpy 2 overflows on 256 or more in one call."""


def _areas(rles: list[dict]) -> list[int]:
    out: list[int] = []
    for start in range(0, len(rles), AREA_CHUNK):
        out += [int(v) for v in coco_mask.area(rles[start : start + AREA_CHUNK])]
    return out


def _coco(rle: RLE) -> dict:
    return {"size": list(rle.size), "counts": rle.counts.encode("ascii")}


def _ratio(numerator: int, denominator: int, both_empty: bool) -> float:
    if denominator == 0:
        return 1.0 if both_empty else 0.0
    return numerator / denominator


@dataclass(frozen=True)
class PairCounts:
    """Pixel counts of one predicted mask against its target.

    Attributes:
        intersection, union: ``|pred & target|`` and ``|pred | target|`` in pixels.
        predicted, target: ``|pred|`` and ``|target|`` in pixels.
    """

    intersection: int
    union: int
    predicted: int
    target: int

    @property
    def iou(self) -> float:
        """Intersection over union in ``[0, 1]``; 1.0 when both masks are empty."""
        return 1.0 if self.union == 0 else self.intersection / self.union

    @property
    def precision(self) -> float:
        """``I / P`` in ``[0, 1]`` (1.0 when both masks are empty, 0.0 when only the prediction is)."""
        return _ratio(self.intersection, self.predicted, self.union == 0)

    @property
    def recall(self) -> float:
        """``I / G`` in ``[0, 1]`` (1.0 when both masks are empty, 0.0 when only the target is)."""
        return _ratio(self.intersection, self.target, self.union == 0)

    @property
    def f1(self) -> float:
        """Harmonic mean of :attr:`precision` and :attr:`recall`; 0.0 when both are 0."""
        p, r = self.precision, self.recall
        return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def count_pairs(pairs: Sequence[tuple[RLE | None, RLE]]) -> list[PairCounts]:
    """:class:`PairCounts` of each ``(prediction, target)``; a ``None`` prediction is an empty mask.

    Both masks of a pair must have the same size (the caller counts and replaces wrong sizes).

    Raises:
        ValueError: a pair's sizes differ.
    """
    targets = [_coco(t) for _, t in pairs]
    target_areas = _areas(targets)
    predicted = [(i, _coco(p)) for i, (p, t) in enumerate(pairs) if p is not None]
    for i, p in predicted:
        if p["size"] != targets[i]["size"]:
            raise ValueError(
                f"pair {i}: predicted mask size {p['size']} differs from the target's {targets[i]['size']}"
            )
    predicted_areas = [0] * len(pairs)
    if predicted:
        for (i, _), value in zip(predicted, _areas([p for _, p in predicted]), strict=True):
            predicted_areas[i] = value
    out = []
    for i, target in enumerate(targets):
        g, p = int(target_areas[i]), predicted_areas[i]
        inter = 0
        if p and g:
            inter = int(coco_mask.area(coco_mask.merge([_coco(pairs[i][0]), target], intersect=True)))  # type: ignore[arg-type]
        out.append(PairCounts(intersection=inter, union=p + g - inter, predicted=p, target=g))
    return out


@dataclass
class SegmentationScores:
    """Table 3 segmentation figures over a set of samples, in percent.

    Attributes:
        samples: samples scored.
        gIoU, cIoU: as LISA defines them.
        precision, recall, F1: pixel-wise, micro (the Table 3 columns).
        precision_macro, recall_macro, F1_macro: means of the per-sample values.
    """

    samples: int
    gIoU: float
    cIoU: float
    precision: float
    recall: float
    F1: float
    precision_macro: float
    recall_macro: float
    F1_macro: float

    def as_dict(self) -> dict:
        """Plain dict keyed by the metric names."""
        return asdict(self)


def summarize(counts: Sequence[PairCounts]) -> SegmentationScores | None:
    """Aggregate per-sample counts (``None`` for no samples)."""
    if not counts:
        return None
    n = len(counts)
    inter = sum(c.intersection for c in counts)
    union = sum(c.union for c in counts)
    predicted = sum(c.predicted for c in counts)
    target = sum(c.target for c in counts)
    precision = _ratio(inter, predicted, union == 0)
    recall = _ratio(inter, target, union == 0)
    f1 = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return SegmentationScores(
        samples=n,
        gIoU=PERCENT * sum(c.iou for c in counts) / n,
        cIoU=PERCENT * (1.0 if union == 0 else inter / union),
        precision=PERCENT * precision,
        recall=PERCENT * recall,
        F1=PERCENT * f1,
        precision_macro=PERCENT * sum(c.precision for c in counts) / n,
        recall_macro=PERCENT * sum(c.recall for c in counts) / n,
        F1_macro=PERCENT * sum(c.f1 for c in counts) / n,
    )


def by_granularity(counts: Sequence[PairCounts], grains: Sequence[str]) -> dict[str, SegmentationScores]:
    """:func:`summarize` per granularity class (``grains[i]`` is sample ``i``'s); absent classes are left out."""
    out = {}
    for name in GRANULARITIES:
        scores = summarize([c for c, g in zip(counts, grains, strict=True) if g == name])
        if scores is not None:
            out[name] = scores
    return out
