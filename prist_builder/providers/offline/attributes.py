"""Colour names of a mask's pixels (offline step 1), in HSV space.

Position and size facts are not here: :mod:`.geometry` owns them.
"""

from __future__ import annotations

import numpy as np

DARK_VALUE = 0.2
"""HSV value below which a pixel reads as black."""

GREY_SATURATION = 0.18
"""HSV saturation below which a pixel reads as white or gray."""

WHITE_VALUE = 0.82
"""HSV value above which an unsaturated pixel reads as white."""

BROWN_VALUE = 0.55
"""Warm hues (red..yellow) darker than this read as brown."""

HUE_NAMES: tuple[tuple[float, str], ...] = (
    (15.0, "red"),
    (40.0, "orange"),
    (70.0, "yellow"),
    (165.0, "green"),
    (200.0, "teal"),
    (255.0, "blue"),
    (290.0, "purple"),
    (335.0, "pink"),
    (360.0, "red"),
)
"""Upper hue bound in degrees and the colour name below it."""

SECOND_COLOUR_SHARE = 0.3
"""A second colour is named when it covers at least this share of the pixels."""


def _hsv(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hue in degrees, saturation and value in [0, 1] of ``(N, 3) uint8`` RGB pixels."""
    values = rgb.astype(np.float32) / 255.0
    high = values.max(axis=1)
    low = values.min(axis=1)
    chroma = high - low
    saturation = np.where(high > 0, chroma / np.maximum(high, 1e-6), 0.0)
    r, g, b = values[:, 0], values[:, 1], values[:, 2]
    safe = np.maximum(chroma, 1e-6)
    hue = np.where(
        high == r,
        ((g - b) / safe) % 6.0,
        np.where(high == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0),
    )
    return hue * 60.0, saturation, high


COLOUR_NAMES: tuple[str, ...] = tuple(dict.fromkeys([n for _, n in HUE_NAMES] + ["brown", "white", "gray", "black"]))
"""Every colour name, in a fixed order; :func:`colour_codes` returns indices into it."""

_HUE_BOUNDS = np.array([b for b, _ in HUE_NAMES])
_HUE_CODES = np.array([COLOUR_NAMES.index(n) for _, n in HUE_NAMES], dtype=np.uint8)


def colour_codes(rgb: np.ndarray) -> np.ndarray:
    """Name the colour of each pixel.

    Args:
        rgb: ``(N, 3) uint8`` pixels.

    Returns:
        ``(N,) uint8`` indices into :data:`COLOUR_NAMES`.
    """
    hue, saturation, value = _hsv(rgb)
    codes = _HUE_CODES[np.searchsorted(_HUE_BOUNDS, hue, side="right").clip(0, len(_HUE_BOUNDS) - 1)]
    warm = (hue < 70.0) | (hue >= 335.0)
    codes = np.where(warm & (value < BROWN_VALUE) & (saturation > GREY_SATURATION), COLOUR_NAMES.index("brown"), codes)
    grey = np.where(value > WHITE_VALUE, COLOUR_NAMES.index("white"), COLOUR_NAMES.index("gray"))
    codes = np.where(saturation < GREY_SATURATION, grey, codes)
    return np.where(value < DARK_VALUE, COLOUR_NAMES.index("black"), codes).astype(np.uint8)


def dominant_colour(pixels: np.ndarray, mask: np.ndarray, stride: int = 1) -> str:
    """The dominant colour name of the masked pixels, or ``"X and Y"`` for two strong ones.

    Args:
        pixels: ``(H, W, 3) uint8`` RGB image (or the crop of the mask's box).
        mask: ``(H, W) bool`` region mask (non-empty), same height and width as ``pixels``.
        stride: read every ``stride``-th row and column only (see :func:`.geometry.sampling_stride`),
            which keeps the cost flat at any mask size.
    """
    selected = pixels[::stride, ::stride][mask[::stride, ::stride]]
    if len(selected) == 0:
        selected = pixels[mask]
    counts = np.bincount(colour_codes(selected), minlength=len(COLOUR_NAMES))
    order = np.argsort(-counts, kind="stable")
    first = COLOUR_NAMES[order[0]]
    if counts[order[1]] >= SECOND_COLOUR_SHARE * counts.sum():
        return f"{first} and {COLOUR_NAMES[order[1]]}"
    return first
