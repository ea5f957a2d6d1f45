"""Element attributes measured from pixels and geometry (offline step 1).

Colour names come from the masked pixels in HSV space; the position is the cell of a
3x3 grid that holds the mask's centroid; the relative size bins the area fraction.
"""

from __future__ import annotations

import numpy as np

MAX_COLOUR_SAMPLES = 4096
"""Pixels sampled (evenly strided) per mask for colour naming: a stable mode at any mask size."""

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

SIZE_BINS: tuple[tuple[float, str], ...] = ((0.01, "tiny"), (0.05, "small"), (0.25, "medium"), (1.01, "large"))
"""Upper area fraction and the relative size name below it."""

ROWS = ("top", "middle", "bottom")
COLUMNS = ("left", "center", "right")


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


def sampling_stride(area: int) -> int:
    """Grid stride that leaves about :data:`MAX_COLOUR_SAMPLES` pixels of a mask of ``area`` pixels."""
    return max(1, int(np.sqrt(area / MAX_COLOUR_SAMPLES)))


def dominant_colour(pixels: np.ndarray, mask: np.ndarray, stride: int = 1) -> str:
    """The dominant colour name of the masked pixels, or ``"X and Y"`` for two strong ones.

    Args:
        pixels: ``(H, W, 3) uint8`` RGB image (or the crop of the mask's box).
        mask: ``(H, W) bool`` region mask (non-empty), same height and width as ``pixels``.
        stride: read every ``stride``-th row and column only (see :func:`sampling_stride`),
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


def centroid(mask: np.ndarray, stride: int = 1) -> tuple[float, float]:
    """``(x, y)`` centroid in pixels of a non-empty ``(H, W) bool`` mask.

    With ``stride > 1`` only every ``stride``-th row and column is read (error under
    ``stride`` pixels, plenty for a 3x3 grid position).
    """
    sampled = mask[::stride, ::stride]
    row_weights = sampled.sum(axis=1)
    total = float(row_weights.sum())
    if total == 0:
        if stride == 1:
            raise ValueError("centroid of an empty mask")
        return centroid(mask, 1)
    col_weights = sampled.sum(axis=0)
    y = float(np.dot(np.arange(sampled.shape[0]), row_weights) / total) * stride
    x = float(np.dot(np.arange(sampled.shape[1]), col_weights) / total) * stride
    return x, y


def grid_position(x: float, y: float, width: int, height: int) -> str:
    """Name of the 3x3 grid cell holding ``(x, y)``: ``"top left"`` ... ``"center"`` ... ``"bottom right"``."""
    column = COLUMNS[min(int(3 * x / width), 2)]
    row = ROWS[min(int(3 * y / height), 2)]
    if row == "middle" and column == "center":
        return "center"
    return f"{row} {column}"


def relative_size(area_fraction: float) -> str:
    """``tiny``/``small``/``medium``/``large`` for an area fraction in ``[0, 1]``."""
    for bound, name in SIZE_BINS:
        if area_fraction < bound:
            return name
    return SIZE_BINS[-1][1]
