"""Per-target scores of a multi-target sample: predicted masks matched to target masks.

A model answering "all the cups" gives one mask per ``[SEG]``; their union is scored like a
single mask (gIoU, cIoU), and each target is also scored on its own: predicted and target
masks are paired one-to-one so that the summed IoU is largest (the Hungarian algorithm,
``scipy.optimize.linear_sum_assignment``), a target left without a partner (the model gave
fewer masks) scores 0, and a predicted mask left over (it gave more) scores nothing here (it
already costs precision in the union). The per-target mean IoU over a split's target masks
is ``target_mIoU`` (:class:`~.segmentation.SegmentationScores`). Matching by IoU, not by answer
order, since the order of a set of targets is a convention of the data, not something a model
can be asked to guess.
"""

from __future__ import annotations

from collections.abc import Sequence

from pycocotools import mask as coco_mask

from prist_builder.records.rle import RLE


def _coco(rle: RLE) -> dict:
    return {"size": list(rle.size), "counts": rle.counts.encode("ascii")}


def iou_matrix(predicted: Sequence[RLE], targets: Sequence[RLE]) -> list[list[float]]:
    """IoU in ``[0, 1]`` of every predicted mask (rows) with every target mask (columns).

    All masks must have the same ``(H, W)`` size (the scorer has set wrong sizes aside).
    Two masks without pixels have IoU 0.0 here (pycocotools' convention).
    """
    if not predicted or not targets:
        return [[0.0] * len(targets) for _ in predicted]
    values = coco_mask.iou([_coco(p) for p in predicted], [_coco(t) for t in targets], [0] * len(targets))
    return [[float(v) for v in row] for row in values]


def target_ious(predicted: Sequence[RLE], targets: Sequence[RLE]) -> tuple[float, ...]:
    """Each target's IoU in ``[0, 1]`` with the predicted mask matched to it, in target order.

    Matching is one-to-one and maximises the summed IoU (Hungarian algorithm); a target
    without a matched prediction scores 0.0. ``()`` when there is no target.
    """
    if not targets:
        return ()
    if not predicted:
        return (0.0,) * len(targets)
    from scipy.optimize import linear_sum_assignment

    matrix = iou_matrix(predicted, targets)
    rows, cols = linear_sum_assignment(matrix, maximize=True)
    out = [0.0] * len(targets)
    for row, col in zip(rows, cols, strict=True):
        out[int(col)] = matrix[int(row)][int(col)]
    return tuple(out)
