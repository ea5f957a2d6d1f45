"""Segmentation metrics of Table 3: gIoU, cIoU and pixel-wise precision, recall and F1.

Definitions (all figures in percent, the paper's scale):

- per sample, with ``I`` the intersection, ``U`` the union, ``P`` the predicted and ``G`` the
  target area in pixels: ``IoU = I / U`` (an empty union, both masks empty, counts 1.0, as LISA
  does), ``precision = I / P`` and ``recall = I / G`` (Appendix C.4.1; a zero denominator gives
  1.0 when both masks are empty, else 0.0), ``F1 = 2PR / (P + R)``.
- ``gIoU``: mean of per-sample IoU; ``cIoU``: ``sum(I) / sum(U)`` over all samples (LISA).
- Empty targets (GRES, Liu et al. CVPR 2023, gRefCOCO): a sample whose reference holds no
  target scores IoU 1 when the model answered empty (no predicted pixel) and 0 for anything
  else; it adds its predicted pixels to ``sum(U)`` and nothing to ``sum(I)``. ``N-acc``: share
  of empty-target samples answered empty; ``T-acc``: share of the other samples *not*
  answered empty. (What counts as "answered empty" is decided by the scorer: see
  :mod:`.scoring`; :func:`count_pairs` alone calls a prediction without pixels empty.)
- ``target mIoU``: mean over target masks of each target's IoU with the predicted mask matched
  to it (Hungarian matching on IoU, :mod:`.targets`; an unmatched target scores 0).
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

from prist_builder.records.limits import TARGET_KINDS
from prist_builder.records.rle import RLE

PERCENT = 100.0
"""Scale of every reported figure (the paper reports percentages)."""
GRANULARITIES = ("coarse", "medium", "fine")
"""Granularity classes of Table 2, in the paper's order."""
KINDS = TARGET_KINDS
"""Target kinds (``single``, ``multi``, ``empty``) in report order."""


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
    """Pixel counts of one predicted mask against its target (for several targets: the unions),
    with the sample's GRES outcome.

    Attributes:
        intersection, union: ``|pred & target|`` and ``|pred | target|`` in pixels.
        predicted, target: ``|pred|`` and ``|target|`` in pixels.
        empty_target: the reference holds no target (kind ``empty``): scored GRES's way.
        answered_empty: the model answered "no target" (``None``: it gave no usable answer,
            e.g. a missing prediction, which is right for neither N-acc nor T-acc).
        target_ious: each target's IoU in ``[0, 1]`` with its matched predicted mask
            (:func:`~.targets.target_ious`); ``()`` when not computed (then ``(iou,)`` is used
            for a non-empty target).
    """

    intersection: int
    union: int
    predicted: int
    target: int
    empty_target: bool = False
    answered_empty: bool | None = None
    target_ious: tuple[float, ...] = ()

    @property
    def iou(self) -> float:
        """Intersection over union in ``[0, 1]``; 1.0 when both masks are empty. An empty target
        (GRES): 1.0 when answered empty, else 0.0."""
        if self.empty_target:
            return 1.0 if self.answered_empty else 0.0
        return 1.0 if self.union == 0 else self.intersection / self.union

    @property
    def precision(self) -> float:
        """``I / P`` in ``[0, 1]`` (1.0 when both masks are empty, 0.0 when only the prediction is;
        an empty target: as :attr:`iou`)."""
        if self.empty_target:
            return self.iou
        return _ratio(self.intersection, self.predicted, self.union == 0)

    @property
    def recall(self) -> float:
        """``I / G`` in ``[0, 1]`` (1.0 when both masks are empty, 0.0 when only the target is;
        an empty target: as :attr:`iou`)."""
        if self.empty_target:
            return self.iou
        return _ratio(self.intersection, self.target, self.union == 0)

    @property
    def per_target(self) -> tuple[float, ...]:
        """The IoU of each target (``()`` for an empty target)."""
        if self.empty_target:
            return ()
        return self.target_ious or (self.iou,)

    @property
    def f1(self) -> float:
        """Harmonic mean of :attr:`precision` and :attr:`recall`; 0.0 when both are 0."""
        p, r = self.precision, self.recall
        return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def count_pairs(pairs: Sequence[tuple[RLE | None, RLE]]) -> list[PairCounts]:
    """:class:`PairCounts` of each ``(prediction, target)``; a ``None`` prediction is an empty mask.

    ``answered_empty`` is set to "the prediction has no pixel"; ``empty_target`` and
    ``target_ious`` are left for the caller (:func:`dataclasses.replace`). Both masks of a pair
    must have the same size (the caller counts and replaces wrong sizes).

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
        out.append(PairCounts(intersection=inter, union=p + g - inter, predicted=p, target=g, answered_empty=p == 0))
    return out


@dataclass
class SegmentationScores:
    """Table 3 segmentation figures over a set of samples, in percent.

    Attributes:
        samples: samples scored.
        gIoU, cIoU: as LISA defines them (GRES for empty targets).
        precision, recall, F1: pixel-wise, micro (the Table 3 columns).
            ``cIoU`` and these three are ``None`` for a set of empty targets only: pooled
            pixels say nothing there; gIoU, N-acc and the macro figures do.
        precision_macro, recall_macro, F1_macro: means of the per-sample values.
        N_acc: share of empty-target samples answered empty (GRES); ``None`` without any.
        T_acc: share of the other samples not answered empty (GRES); ``None`` without any.
        target_mIoU: mean over target masks of the matched IoU (unmatched: 0); ``None``
            without a target mask.
        targets: target masks scored (``target_mIoU``'s denominator).
    """

    samples: int
    gIoU: float
    cIoU: float | None
    precision: float | None
    recall: float | None
    F1: float | None
    precision_macro: float
    recall_macro: float
    F1_macro: float
    N_acc: float | None = None
    T_acc: float | None = None
    target_mIoU: float | None = None
    targets: int = 0

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
    empty = [c.answered_empty is True for c in counts if c.empty_target]
    found = [c.answered_empty is False for c in counts if not c.empty_target]
    per_target = [v for c in counts for v in c.per_target]
    pooled_blank = target == 0 and all(c.empty_target for c in counts)
    return SegmentationScores(
        samples=n,
        gIoU=PERCENT * sum(c.iou for c in counts) / n,
        cIoU=None if pooled_blank else PERCENT * (1.0 if union == 0 else inter / union),
        precision=None if pooled_blank else PERCENT * precision,
        recall=None if pooled_blank else PERCENT * recall,
        F1=None if pooled_blank else PERCENT * f1,
        precision_macro=PERCENT * sum(c.precision for c in counts) / n,
        recall_macro=PERCENT * sum(c.recall for c in counts) / n,
        F1_macro=PERCENT * sum(c.f1 for c in counts) / n,
        N_acc=PERCENT * sum(empty) / len(empty) if empty else None,
        T_acc=PERCENT * sum(found) / len(found) if found else None,
        target_mIoU=PERCENT * sum(per_target) / len(per_target) if per_target else None,
        targets=len(per_target),
    )


def by_granularity(counts: Sequence[PairCounts], grains: Sequence[str]) -> dict[str, SegmentationScores]:
    """:func:`summarize` per granularity class (``grains[i]`` is sample ``i``'s); absent classes are left out."""
    out = {}
    for name in GRANULARITIES:
        scores = summarize([c for c, g in zip(counts, grains, strict=True) if g == name])
        if scores is not None:
            out[name] = scores
    return out


def by_kind(counts: Sequence[PairCounts], kinds: Sequence[str]) -> dict[str, SegmentationScores]:
    """:func:`summarize` per target kind (``kinds[i]`` is sample ``i``'s), in :data:`KINDS` order;
    absent kinds are left out."""
    out = {}
    for name in KINDS:
        scores = summarize([c for c, k in zip(counts, kinds, strict=True) if k == name])
        if scores is not None:
            out[name] = scores
    return out
