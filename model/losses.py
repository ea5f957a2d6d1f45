"""MIRAS training objective (paper eq. 8), with LISA's normalisation.

``L = w_ce * CE(text) + w_bce * BCE(masks) + w_dice * DICE(masks)`` with weights 1.0, 2.0,
0.5. The text CE averages over supervised tokens (labels != -100). Per mask, BCE is the mean
over its pixels and DICE is ``1 - (2 sum(p t) / s + eps) / ((sum p + sum t) / s + eps)`` on
sigmoid probabilities ``p`` with LISA's scale ``s`` and epsilon; both are then averaged over
all target masks of the batch (a batch without masks contributes 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100
"""Label of tokens the text loss skips (user turns, image tokens, padding)."""
DICE_SCALE = 1000.0
"""LISA divides probabilities and targets by this before the DICE sums."""
DICE_EPS = 1e-6
"""Smoothing added to the DICE numerator and denominator."""


@dataclass
class LossParts:
    """The weighted total and its unweighted components (all 0-d float tensors)."""

    total: torch.Tensor
    ce: torch.Tensor
    bce: torch.Tensor
    dice: torch.Tensor
    masks: int


def text_ce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean token cross-entropy of already aligned logits and labels.

    Args:
        logits: ``(T, V)`` float, the prediction for each supervised position.
        labels: ``(T,)`` long, the target token of each position (``-100`` skipped).

    Returns:
        0-d float; 0 when no token is supervised.
    """
    if labels.numel() == 0 or (labels != IGNORE_INDEX).sum() == 0:
        return logits.sum() * 0.0
    return F.cross_entropy(logits.float(), labels, ignore_index=IGNORE_INDEX)


def mask_bce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-mask mean pixel BCE. ``logits``, ``target``: ``(n, H, W)`` float -> ``(n,)``."""
    per_pixel = F.binary_cross_entropy_with_logits(logits.float(), target.float(), reduction="none")
    return per_pixel.flatten(1).mean(1)


def mask_dice(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-mask DICE loss. ``logits``, ``target``: ``(n, H, W)`` float -> ``(n,)``."""
    prob = logits.float().sigmoid().flatten(1) / DICE_SCALE
    tgt = target.float().flatten(1) / DICE_SCALE
    numerator = 2 * (prob * tgt * DICE_SCALE).sum(-1)
    denominator = prob.sum(-1) + tgt.sum(-1)
    return 1 - (numerator + DICE_EPS) / (denominator + DICE_EPS)


def miras_loss(
    ce: torch.Tensor,
    mask_logits: list[torch.Tensor],
    mask_targets: list[torch.Tensor],
    weights: tuple[float, float, float] = (1.0, 2.0, 0.5),
) -> LossParts:
    """Combine the text loss and the mask losses (eq. 8).

    Args:
        ce: 0-d text cross-entropy (:func:`text_ce`).
        mask_logits: per image ``(n_i, H_i, W_i)`` predicted logits (n_i may be 0).
        mask_targets: per image ``(n_i, H_i, W_i)`` {0, 1} targets, same shapes.
        weights: ``(w_ce, w_bce, w_dice)``.

    Raises:
        ValueError: a prediction and its target differ in shape.
    """
    bce_sum = ce.new_zeros(())
    dice_sum = ce.new_zeros(())
    count = 0
    for pred, target in zip(mask_logits, mask_targets, strict=True):
        if pred.shape != target.shape:
            raise ValueError(f"mask loss: prediction {tuple(pred.shape)} vs target {tuple(target.shape)}")
        if pred.shape[0] == 0:
            continue
        bce_sum = bce_sum + mask_bce(pred, target).sum()
        dice_sum = dice_sum + mask_dice(pred, target).sum()
        count += pred.shape[0]
    bce = bce_sum / max(count, 1)
    dice = dice_sum / max(count, 1)
    w_ce, w_bce, w_dice = weights
    total = w_ce * ce.float() + w_bce * bce + w_dice * dice
    return LossParts(total=total, ce=ce.detach().float(), bce=bce.detach(), dice=dice.detach(), masks=count)
