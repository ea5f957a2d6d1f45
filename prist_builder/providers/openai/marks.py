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

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont, ImageOps
from pycocotools import mask as coco_mask
from scipy import ndimage

from prist_builder.llm.images import EXIF_ORIENTATION, JPEG_QUALITY, PreparedImage
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


def _inner_point(mask: np.ndarray) -> tuple[int, int]:
    """``(x, y)`` of the mask pixel farthest from the mask's edge (its own crop's frame)."""
    distance = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(distance)), distance.shape)
    return int(x), int(y)


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
    with Image.open(io.BytesIO(data)) as opened:
        rotated = opened.getexif().get(EXIF_ORIENTATION, 1) not in (0, 1)
        picture = (ImageOps.exif_transpose(opened) if rotated else opened).convert("RGB")
    width, height = picture.size
    scale = max_side / max(width, height) if max_side is not None and max(width, height) > max_side else 1.0
    if scale != 1.0:
        picture = picture.resize(
            (max(1, round(width * scale)), max(1, round(height * scale))), Image.Resampling.LANCZOS
        )
    thick = max(2, round(min(picture.size) / 300))
    font = _tag_font(*picture.size)
    draw = ImageDraw.Draw(picture)
    masks = []
    for index, region in enumerate(regions):  # outlines first, so that no outline crosses a tag
        full = coco_mask.decode({"size": list(region.mask.size), "counts": region.mask.counts.encode("ascii")})
        small = np.asarray(Image.fromarray(full * 255).resize(picture.size, Image.Resampling.NEAREST)) > 0
        masks.append(small)
        image = Image.fromarray(small.astype(np.uint8) * 255)
        edge = Image.fromarray(np.asarray(image) & ~np.asarray(image.filter(ImageFilter.MinFilter(3))))
        for _ in range(thick - 1):
            edge = edge.filter(ImageFilter.MaxFilter(3))
        picture.paste(PALETTE[index % len(PALETTE)], (0, 0), edge)
    tags: list[tuple[int, int, int, int]] = []
    for index, region in enumerate(regions):
        colour = PALETTE[index % len(PALETTE)]
        own = masks[index].copy()  # the tag goes on pixels no smaller region covers (a shelf's, not its items')
        for other, mask in zip(regions, masks, strict=True):
            if other.area < region.area:
                own &= ~mask
        px, py = _inner_point(own if own.any() else masks[index])
        left, top, right, bottom = draw.textbbox((0, 0), region.region_id, font=font)
        tw, th = right - left + 2 * thick, bottom - top + 2 * thick
        tx = min(max(0, px - tw // 2), picture.width - tw)
        ty = min(max(0, py - th // 2), picture.height - th)
        for _ in range(len(tags)):  # move down (up at the bottom) until it covers no earlier tag
            if not any(tx < a2 and a1 < tx + tw and ty < b2 and b1 < ty + th for a1, b1, a2, b2 in tags):
                break
            ty = ty + th if ty + 2 * th <= picture.height else max(0, ty - 2 * th)
        tags.append((tx, ty, tx + tw, ty + th))
        draw.rectangle((tx, ty, tx + tw - 1, ty + th - 1), fill=colour, outline=(0, 0, 0))
        ink = (0, 0, 0) if sum(colour) > 380 else (255, 255, 255)
        draw.text((tx + thick - left, ty + thick - top), region.region_id, fill=ink, font=font)
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
