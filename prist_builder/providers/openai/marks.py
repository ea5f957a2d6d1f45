"""Set-of-Mark images (Yang et al. 2023): each marked region's outline and id drawn on the
image the model sees, so that the ids in the prompt point at pixels and not only at boxes.

The image is oriented and downscaled as :func:`prist_builder.llm.images.prepare_image`
does (same size, so boxes in the prompt match), then every region gets a 2-3 px outline
in its own colour and a filled tag with its id, placed at the point of the region
farthest from its edge (nudged down when tags would cover each other). The result is a
JPEG, prepared once per (image, regions, ``max_side``) and kept with the prepared images.
"""

from __future__ import annotations

import base64
import hashlib
import io
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps
from scipy import ndimage

from prist_builder.llm.images import EXIF_ORIENTATION, JPEG_QUALITY, PreparedImage
from prist_builder.providers.regions import window_mask
from prist_builder.records import SourceRegion

MARKS_VERSION = 1
"""Version of the drawing; joins the key of stored marked images."""

PALETTE = (
    (230, 25, 75),
    (60, 180, 75),
    (255, 225, 25),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (210, 245, 60),
    (250, 190, 212),
    (0, 128, 128),
    (220, 190, 255),
)
"""Outline and tag colours, one per region in turn (a high-contrast qualitative palette)."""


def marks_key(sha256: str, regions: list[SourceRegion]) -> str:
    """64 hex digits naming the source image, the marked regions and the drawing version."""
    text = "|".join([sha256, f"marks-v{MARKS_VERSION}", *(f"{r.region_id}:{r.mask.counts}" for r in regions)])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _tag_font(width: int, height: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=max(12, round(min(width, height) / 32)))


INNER_POINT_SIDE = 128
"""The tag's place is searched on the region's window brought down to about this side (pixels)."""


def _inner_point(mask: np.ndarray) -> tuple[int, int]:
    """``(x, y)`` of a mask pixel about farthest from the mask's edge (its own crop's frame),
    searched on a grid of at most :data:`INNER_POINT_SIDE` cells a side.

    The distance transform runs on the grid's box around its set cells, one empty cell
    wider: the nearest unset cell of a set one is never further out (the same point as
    on the whole grid, the first of equals in row-major order; a third less work on the
    masks left by the smaller regions' cut-outs).
    """
    step = max(1, max(mask.shape) // INNER_POINT_SIDE)
    coarse = mask[step // 2 :: step, step // 2 :: step]
    if not coarse.any():
        coarse, step = mask, 1
        if not coarse.any():  # nothing set (a region too thin for the sent scale): the corner
            return 0, 0
    rows, cols = np.flatnonzero(coarse.any(axis=1)), np.flatnonzero(coarse.any(axis=0))
    box = coarse[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    distance = ndimage.distance_transform_edt(np.pad(box, 1))[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(distance)), distance.shape)
    offset = step // 2 if step > 1 else 0
    return int(x + cols[0]) * step + offset, int(y + rows[0]) * step + offset


def _outline(mask: np.ndarray, thick: int) -> np.ndarray:
    """The pixels of ``mask`` (bool) on its edge, widened to ``thick`` pixels (``thick - 1``
    dilations of the one-pixel edge; 4-neighbour steps, done with array slices; beyond the
    array counts as outside the mask)."""
    inner = np.zeros_like(mask)
    inner[1:-1, 1:-1] = mask[1:-1, 1:-1] & mask[:-2, 1:-1] & mask[2:, 1:-1] & mask[1:-1, :-2] & mask[1:-1, 2:]
    edge = mask & ~inner
    for _ in range(thick - 1):
        grown = edge.copy()
        grown[1:] |= edge[:-1]
        grown[:-1] |= edge[1:]
        grown[:, 1:] |= edge[:, :-1]
        grown[:, :-1] |= edge[:, 1:]
        edge = grown
    return edge


def _window(box: list[int], scale: float, pad: int, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """``(left, top, right, bottom)`` in sent pixels around a source box ``[x, y, w, h]``,
    ``pad`` pixels wider on each side, inside the image: the work of one region stays in it."""
    x, y, w, h = box
    left, top = max(0, math.floor(x * scale) - pad), max(0, math.floor(y * scale) - pad)
    right = min(size[0], math.ceil((x + w) * scale) + pad)
    bottom = min(size[1], math.ceil((y + h) * scale) + pad)
    return left, top, max(right, left + 1), max(bottom, top + 1)


def _window_mask(region: SourceRegion, scale: float, window: tuple[int, int, int, int]) -> np.ndarray:
    """The region's mask (bool) in the sent pixels of ``window``: its box decoded from the
    RLE and brought to the sent scale (nearest neighbour)."""
    left, top, right, bottom = window
    x, y, w, h = region.bbox
    height, width = region.mask.size
    box = window_mask(region.mask, min(x, width), min(y, height), min(x + w, width), min(y + h, height))
    x0, y0 = math.floor(x * scale), math.floor(y * scale)
    size = (max(1, math.ceil((x + w) * scale) - x0), max(1, math.ceil((y + h) * scale) - y0))
    if size == (box.shape[1], box.shape[0]):  # the sent scale (nearest neighbour to the same size: as is)
        part = box
    else:
        part = np.asarray(Image.fromarray(box.astype(np.uint8) * 255).resize(size, Image.Resampling.NEAREST)) > 0
    out = np.zeros((bottom - top, right - left), dtype=bool)
    rows, cols = min(part.shape[0], bottom - y0), min(part.shape[1], right - x0)
    out[y0 - top : y0 - top + rows, x0 - left : x0 - left + cols] = part[:rows, :cols]
    return out


def _clear(own: np.ndarray, window: tuple[int, ...], mask: np.ndarray, where: tuple[int, ...]) -> None:
    """Clear from ``own`` (the mask of ``window``) the pixels of ``mask`` (the mask of ``where``)."""
    left, top = max(window[0], where[0]), max(window[1], where[1])
    right, bottom = min(window[2], where[2]), min(window[3], where[3])
    if left >= right or top >= bottom:
        return
    own[top - window[1] : bottom - window[1], left - window[0] : right - window[0]] &= ~mask[
        top - where[1] : bottom - where[1], left - where[0] : right - where[0]
    ]


def draw_marks(data: bytes, regions: list[SourceRegion], max_side: int | None) -> PreparedImage:
    """The image of ``data`` with each region's outline and id drawn on it (JPEG).

    Args:
        data: the encoded source image (any format Pillow reads).
        regions: the regions to mark, masks in the oriented source frame (``(H, W)`` RLE).
        max_side: long side in pixels of the image sent (``None``: as is).

    Returns:
        the marked image; ``scale`` is sent pixels per source pixel.

    Raises:
        PIL.UnidentifiedImageError, OSError: the bytes are not an image.
    """
    opened = Image.open(io.BytesIO(data))  # in memory: nothing to close
    opened.load()  # an image not loaded yet counts as read-only: ImageDraw would copy it after decoding
    rotated = opened.getexif().get(EXIF_ORIENTATION, 1) not in (0, 1)
    picture = ImageOps.exif_transpose(opened) if rotated else opened
    if picture.mode != "RGB":  # (an RGB image's convert would be a copy)
        picture = picture.convert("RGB")
    width, height = picture.size
    scale = max_side / max(width, height) if max_side is not None and max(width, height) > max_side else 1.0
    if scale != 1.0:
        picture = picture.resize(
            (max(1, round(width * scale)), max(1, round(height * scale))), Image.Resampling.LANCZOS
        )
    thick = max(2, round(min(picture.size) / 300))
    font = _tag_font(*picture.size)
    draw = ImageDraw.Draw(picture)
    masks, windows = [], []
    for index, region in enumerate(regions):  # outlines first, so that no outline crosses a tag
        window = _window(region.bbox, scale, thick + 2, picture.size)
        mask = _window_mask(region, scale, window)
        masks.append(mask)
        windows.append(window)
        edge = _outline(mask, thick)
        picture.paste(PALETTE[index % len(PALETTE)], window[:2], Image.fromarray(edge.astype(np.uint8) * 255))
    tags: list[tuple[int, int, int, int]] = []
    for index, region in enumerate(regions):
        colour = PALETTE[index % len(PALETTE)]
        left, top, _, _ = window = windows[index]
        mine = masks[index]
        own = mine.copy()  # the tag goes on pixels no smaller region covers (a shelf's, not its items')
        for other, mask, where in zip(regions, masks, windows, strict=True):
            if other.area < region.area:
                _clear(own, window, mask, where)
        px, py = _inner_point(own if own.any() else mine)
        px, py = px + left, py + top
        x0, y0, x1, y1 = draw.textbbox((0, 0), region.region_id, font=font)
        tw, th = x1 - x0 + 2 * thick, y1 - y0 + 2 * thick
        tx = min(max(0, px - tw // 2), picture.width - tw)
        ty = min(max(0, py - th // 2), picture.height - th)
        for _ in range(len(tags)):  # move down (up at the bottom) until it covers no earlier tag
            if not any(tx < a2 and a1 < tx + tw and ty < b2 and b1 < ty + th for a1, b1, a2, b2 in tags):
                break
            ty = ty + th if ty + 2 * th <= picture.height else max(0, ty - 2 * th)
        tags.append((tx, ty, tx + tw, ty + th))
        draw.rectangle((tx, ty, tx + tw - 1, ty + th - 1), fill=colour, outline=(0, 0, 0))
        ink = (0, 0, 0) if sum(colour) > 380 else (255, 255, 255)
        draw.text((tx + thick - x0, ty + thick - y0), region.region_id, fill=ink, font=font)
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    encoded = buffer.getvalue()
    return PreparedImage(
        f"data:image/jpeg;base64,{base64.b64encode(encoded).decode('ascii')}",
        picture.width,
        picture.height,
        scale,
        sha256=hashlib.sha256(encoded).hexdigest(),
    )
