"""Images for the model: base64 data URLs with the original MIME type, and their token cost.

The token estimate follows GPT-4o's published tile rule for ``detail: high``: the image is
fitted inside 2048x2048, then scaled so its short side is at most 768 px, and costs
``85 + 170 * tiles`` tokens, tiles being 512x512 squares; ``detail: low`` costs 85.
"""

from __future__ import annotations

import base64
import io
import math

from PIL import Image

BASE_TOKENS = 85
"""Tokens every image costs (the whole ``low`` detail cost)."""
TILE_TOKENS = 170
"""Tokens per 512x512 tile at ``high`` detail."""
TILE_SIDE = 512
FIT_SIDE = 2048
"""The image is first fitted inside a square of this side (pixels)."""
SHORT_SIDE = 768
"""Then its short side is brought down to this (pixels)."""
DETAILS = ("low", "high", "auto")
REENCODE_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP", "image/gif": "GIF"}
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


def prepare_image(data: bytes, mime: str, max_side: int | None) -> tuple[str, int, int]:
    """The data URL to send, and the sent image's width and height in pixels.

    Images whose long side exceeds ``max_side`` are downscaled (Lanczos) and re-encoded in
    their own format (PNG when Pillow cannot write it); others go as the original bytes.
    """
    with Image.open(io.BytesIO(data)) as image:
        width, height = image.size
        if max_side is not None and max(width, height) > max_side:
            scale = max_side / max(width, height)
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            resized = image.convert("RGB" if mime == "image/jpeg" else image.mode).resize(size, Image.Resampling.LANCZOS)
            fmt = REENCODE_FORMATS.get(mime, "PNG")
            mime = mime if mime in REENCODE_FORMATS else "image/png"
            buffer = io.BytesIO()
            resized.save(buffer, format=fmt, **({"quality": JPEG_QUALITY} if fmt == "JPEG" else {}))
            data, (width, height) = buffer.getvalue(), size
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}", width, height


def image_part(url: str, detail: str) -> dict:
    """A chat message content part holding an image."""
    return {"type": "image_url", "image_url": {"url": url, "detail": detail}}
