"""The card's pictures: samples with their mask overlaid, and bar charts of distributions.

Drawn with Pillow only (no plotting library needed to export a dataset).
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from prist_builder.annotation.masks import decode
from prist_builder.records.rle import RLE

OVERLAY_RGB = (230, 40, 40)
"""Colour of the mask overlay."""
OVERLAY_ALPHA = 0.5
"""Opacity of the mask overlay, 0..1."""
THUMB_SIDE = 384
"""Longest side in pixels of a sample picture on the card."""
CHART_SIZE = (480, 280)
"""Width, height in pixels of a bar chart."""
CHART_MARGIN = 36
"""Pixels left around the bars for labels."""
BAR_RGB = (70, 110, 180)


def overlay(image_bytes: bytes, mask: RLE, path: Path) -> None:
    """Save the image with ``mask`` (``(H, W) bool`` as RLE) tinted, shrunk to :data:`THUMB_SIDE`, as PNG."""
    pixels = np.asarray(Image.open(io.BytesIO(image_bytes)).convert("RGB"), dtype=np.float32)
    binary = decode(mask)
    if binary.shape == pixels.shape[:2]:
        tint = np.array(OVERLAY_RGB, dtype=np.float32)
        pixels[binary] = (1 - OVERLAY_ALPHA) * pixels[binary] + OVERLAY_ALPHA * tint
    picture = Image.fromarray(pixels.astype(np.uint8))
    picture.thumbnail((THUMB_SIDE, THUMB_SIDE))
    picture.save(path, format="PNG")


def bar_chart(counts: Mapping[str, int | float], title: str, path: Path) -> None:
    """Save a bar chart of ``label -> value`` as PNG (labels under the bars, values above)."""
    width, height = CHART_SIZE
    picture = Image.new("RGB", CHART_SIZE, "white")
    draw = ImageDraw.Draw(picture)
    draw.text((CHART_MARGIN, 8), title, fill="black")
    top = max(counts.values(), default=0) or 1
    slots = max(len(counts), 1)
    slot = (width - 2 * CHART_MARGIN) / slots
    base = height - CHART_MARGIN
    for index, (label, value) in enumerate(counts.items()):
        left = CHART_MARGIN + index * slot + slot * 0.15
        right = CHART_MARGIN + (index + 1) * slot - slot * 0.15
        bar_top = base - (base - 2 * CHART_MARGIN) * (value / top)
        draw.rectangle([left, bar_top, right, base], fill=BAR_RGB)
        draw.text((left, base + 6), str(label), fill="black")
        draw.text((left, bar_top - 14), f"{value:g}", fill="black")
    draw.line([CHART_MARGIN, base, width - CHART_MARGIN, base], fill="black")
    picture.save(path, format="PNG")
