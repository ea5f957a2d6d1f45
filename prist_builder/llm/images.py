"""Images for the model: base64 data URLs with the original MIME type, and their token cost.

The token estimate follows GPT-4o's published tile rule for ``detail: high``: the image is
fitted inside 2048x2048, then scaled so its short side is at most 768 px, and costs
``85 + 170 * tiles`` tokens, tiles being 512x512 squares; ``detail: low`` costs 85.
"""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass
from typing import Literal

from PIL import Image, ImageOps

BASE_TOKENS = 85
"""Tokens every image costs (the whole ``low`` detail cost)."""
TILE_TOKENS = 170
"""Tokens per 512x512 tile at ``high`` detail."""
TILE_SIDE = 512
FIT_SIDE = 2048
"""The image is first fitted inside a square of this side (pixels)."""
SHORT_SIDE = 768
"""Then its short side is brought down to this (pixels)."""
Detail = Literal["low", "high", "auto"]
"""The image ``detail`` values the chat API accepts."""
REENCODE_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP", "image/gif": "GIF"}
"""MIME types the API accepts, and the Pillow format that writes each."""
EXIF_ORIENTATION = 0x0112
"""EXIF tag of the image orientation."""
JPEG_QUALITY = 90


def image_tokens(width: int, height: int, detail: str = "high") -> int:
    """Estimated prompt tokens of one image of ``width x height`` pixels (``auto`` counts as ``high``)."""
    if detail == "low":
        return BASE_TOKENS
    scale = min(1.0, FIT_SIDE / max(width, height))
    w, h = width * scale, height * scale
    scale = min(1.0, SHORT_SIDE / min(w, h))
    w, h = w * scale, h * scale
    return BASE_TOKENS + TILE_TOKENS * math.ceil(w / TILE_SIDE) * math.ceil(h / TILE_SIDE)


@dataclass(frozen=True)
class PreparedImage:
    """An image as sent to the model.

    Attributes:
        url: ``data:<mime>;base64,...``.
        width, height: size in pixels of the sent image.
        scale: sent pixels per source pixel (1.0 when not downscaled); region boxes in
            the prompt are multiplied by it so they match what the model sees.
    """

    url: str
    width: int
    height: int
    scale: float


def prepare_image(data: bytes, mime: str, max_side: int | None) -> PreparedImage:
    """Encode an image for the model, in the frame the annotations use.

    The EXIF orientation is applied (as Labelme and :func:`prist_builder.sources.decode_image`
    do, so boxes and pixels agree); images whose long side exceeds ``max_side`` are
    downscaled (Lanczos); formats the API does not take (BMP, TIFF) become PNG. An image
    that needs none of this goes as its original bytes and MIME type.
    """
    with Image.open(io.BytesIO(data)) as image:
        rotated = image.getexif().get(EXIF_ORIENTATION, 1) not in (0, 1)
        picture = ImageOps.exif_transpose(image) if rotated else image
        width, height = picture.size
        too_big = max_side is not None and max(width, height) > max_side
        if not (too_big or rotated or mime not in REENCODE_FORMATS):
            return PreparedImage(f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}", width, height, 1.0)
        scale = max_side / max(width, height) if too_big else 1.0
        if too_big:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            picture = picture.resize(size, Image.Resampling.LANCZOS)
        mime = mime if mime in REENCODE_FORMATS else "image/png"
        fmt = REENCODE_FORMATS[mime]
        if fmt == "JPEG" and picture.mode not in ("RGB", "L"):
            picture = picture.convert("RGB")
        buffer = io.BytesIO()
        picture.save(buffer, format=fmt, **({"quality": JPEG_QUALITY} if fmt == "JPEG" else {}))
        return PreparedImage(
            f"data:{mime};base64,{base64.b64encode(buffer.getvalue()).decode('ascii')}",
            picture.width,
            picture.height,
            scale,
        )


def image_part(url: str, detail: str) -> dict:
    """A chat message content part holding an image."""
    return {"type": "image_url", "image_url": {"url": url, "detail": detail}}
