"""Mask granularity classes of Table 2 (coarse / medium / fine), used by the pipeline's
target choice and by ``prist stats``.

A mask's area scaled to a 1024x1024 image is *fine* below ``(s*32)^2``, *medium* up to
``(s*96)^2`` and *coarse* above, with ``s = 1.6`` (COCO's small/medium/large thresholds
moved from 640 px to 1024 px images; Table 2 caption).
"""

from __future__ import annotations

from typing import Literal

Granularity = Literal["coarse", "medium", "fine"]
"""The three classes, in Table 2's order."""

GRANULARITIES: tuple[Granularity, ...] = ("coarse", "medium", "fine")
"""Table 2's order."""

PRIST_MIX = (22, 25, 53)
"""PRIST's targets by granularity, coarse : medium : fine, in percent (Table 2)."""

SCALE = 1.6
"""s of Table 2: 1024 px standard size over COCO's 640 px."""

STANDARD_SIDE = 1024
"""Side in pixels of the standardised square image (section 3.4)."""

FINE_BELOW = (SCALE * 32) ** 2
"""Scaled area in pixels below which a mask is fine (2,621.44 px)."""

COARSE_ABOVE = (SCALE * 96) ** 2
"""Scaled area in pixels above which a mask is coarse (23,592.96 px)."""


def granularity(area: int, height: int, width: int) -> Granularity:
    """``fine``/``medium``/``coarse`` for a mask of ``area`` pixels in an ``height x width`` image."""
    scaled = area * (STANDARD_SIDE * STANDARD_SIDE) / float(height * width)
    if scaled < FINE_BELOW:
        return "fine"
    if scaled <= COARSE_ABOVE:
        return "medium"
    return "coarse"
