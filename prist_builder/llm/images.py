"""Images for the model: base64 data URLs with the original MIME type, and their token cost.

The token estimate follows GPT-4o's published tile rule for ``detail: high``: the image is
fitted inside 2048x2048, then scaled so its short side is at most 768 px, and costs
``85 + 170 * tiles`` tokens, tiles being 512x512 squares; ``detail: low`` costs 85.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import logging
import math
import os
import tempfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
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

log = logging.getLogger(__name__)


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
        as_is: the URL holds the source bytes unchanged (no re-encoding).
    """

    url: str
    width: int
    height: int
    scale: float
    as_is: bool = False


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
            url = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
            return PreparedImage(url, width, height, 1.0, as_is=True)
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


PREPARED_FORMAT = 1
"""Version of :func:`prepare_image`'s output; joins the prepared-image key, so a change of
the encoding never serves an old file."""
PREPARED_MEMO = 64
"""Prepared images kept in memory by :class:`PreparedImages`."""


class PreparedImages:
    """Each image prepared once per run (and across runs), not once per step.

    :func:`prepare_image` decodes, orients, downscales and re-encodes: tens of ms of CPU for
    a large photo, and every step sends the image again. This store keeps the result in
    memory (the last :data:`PREPARED_MEMO`) and on disk under
    ``root/<sha[:2]>/<sha256>-<max_side>-v<PREPARED_FORMAT>.url``, keyed by the source
    bytes' SHA-256 (the image record's ``sha256``): a file holds one JSON header line
    (``width``, ``height``, ``scale``, ``as_is``) then the data URL, written atomically
    (temporary file, then :func:`os.replace`), so a kill leaves either no file or a whole
    one. An image sent as it is (``as_is``, no re-encoding) keeps only the header: its URL
    is rebuilt from the source bytes. A file that cannot be read is prepared again.

    Args:
        root: the folder; ``None`` keeps prepared images in memory only.
    """

    def __init__(self, root: Path | None) -> None:
        self.root = Path(root) if root is not None else None
        self._memo: OrderedDict[tuple[str, int | None], PreparedImage] = OrderedDict()

    def path(self, sha256: str, max_side: int | None) -> Path | None:
        """The file of one prepared image (``None`` without a root)."""
        if self.root is None:
            return None
        return self.root / sha256[:2] / f"{sha256}-{max_side or 'full'}-v{PREPARED_FORMAT}.url"

    def remembered(self, sha256: str, max_side: int | None) -> PreparedImage | None:
        """The prepared image if it is in memory (no I/O)."""
        found = self._memo.get((sha256, max_side))
        if found is not None:
            self._memo.move_to_end((sha256, max_side))
        return found

    def get(self, sha256: str, data: bytes, mime: str, max_side: int | None) -> PreparedImage:
        """The image of ``data`` (whose SHA-256 is ``sha256``) as :func:`prepare_image` makes it.

        Thread-safe enough for a thread pool: the worst race prepares one image twice.
        """
        found = self.remembered(sha256, max_side)
        if found is None:
            found = self._load(sha256, data, max_side)
        if found is None:
            found = prepare_image(data, mime, max_side)
            self._store(sha256, mime, max_side, found)
        self._memo[(sha256, max_side)] = found
        while len(self._memo) > PREPARED_MEMO:
            self._memo.popitem(last=False)
        return found

    def _load(self, sha256: str, data: bytes, max_side: int | None) -> PreparedImage | None:
        path = self.path(sha256, max_side)
        if path is None:
            return None
        try:
            header, _, url = path.read_bytes().partition(b"\n")
            meta = json.loads(header)
            if meta["as_is"]:
                url = f"data:{meta['mime']};base64,{base64.b64encode(data).decode('ascii')}".encode("ascii")
            if not url.startswith(b"data:"):
                return None
            width, height, scale = int(meta["width"]), int(meta["height"]), float(meta["scale"])
            return PreparedImage(url.decode("ascii"), width, height, scale, as_is=bool(meta["as_is"]))
        except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError):
            return None

    def _store(self, sha256: str, mime: str, max_side: int | None, image: PreparedImage) -> None:
        path = self.path(sha256, max_side)
        if path is None:
            return
        header = {"width": image.width, "height": image.height, "scale": image.scale, "as_is": image.as_is}
        header["mime"] = mime
        content = json.dumps(header).encode("utf-8") + b"\n" + (b"" if image.as_is else image.url.encode("ascii"))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, tmp_name = tempfile.mkstemp(prefix=".img-", suffix=".tmp", dir=path.parent)
            try:
                with os.fdopen(handle, "wb") as tmp:
                    tmp.write(content)
                os.replace(tmp_name, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp_name)
                raise
        except OSError as exc:  # a read-only cache only costs speed
            log.debug("prepared image not stored at %s: %s", path, exc)
