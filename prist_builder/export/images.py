"""The image bytes an export row carries: the source file, in the frame the masks use.

Masks are drawn on the EXIF-corrected image (:func:`prist_builder.sources.decode_image`).
A file whose EXIF orientation is the identity goes out byte for byte; one that needs a
rotation or flip is re-encoded in its own format after :func:`PIL.ImageOps.exif_transpose`,
so that a reader that ignores EXIF sees the pixels the masks were drawn on.
"""

from __future__ import annotations

import hashlib
import io
import mimetypes
from pathlib import Path

from PIL import Image, ImageOps

from prist_builder.annotation.labelme import read_labelme
from prist_builder.records import ImageRecord

EXIF_ORIENTATION = 0x0112
"""EXIF tag holding the orientation (1 = as stored)."""

JPEG_QUALITY = 95
"""Quality of a JPEG re-encoded after an EXIF rotation."""


class ImageUnavailable(Exception):
    """The image of a record cannot go out: absent, unreadable, or changed since the build."""


def _file_bytes(record: ImageRecord) -> bytes:
    if record.embedded:
        data = read_labelme(Path(record.path)).image_data
        if data is None:
            raise ImageUnavailable(f"{record.path}: imageData is gone")
        return data
    try:
        return Path(record.path).read_bytes()
    except OSError as exc:
        raise ImageUnavailable(f"{record.path}: cannot read image: {exc.strerror or exc}") from exc


def upright(data: bytes) -> bytes:
    """``data`` itself when its EXIF orientation is the identity, else the transposed image re-encoded."""
    image = Image.open(io.BytesIO(data))
    if image.getexif().get(EXIF_ORIENTATION, 1) == 1:
        return data
    fmt = image.format or "PNG"
    turned = ImageOps.exif_transpose(image)
    out = io.BytesIO()
    if fmt == "JPEG":
        turned.save(out, format=fmt, quality=JPEG_QUALITY)
    else:
        turned.save(out, format=fmt)
    return out.getvalue()


def export_image(record: ImageRecord) -> dict[str, object]:
    """``{"bytes", "path"}`` for the ``Image()`` column; ``path`` is a bare file name (no local folders).

    Raises:
        ImageUnavailable: the file is absent, unreadable, or its sha256 differs from the record.
    """
    if not record.sha256:
        raise ImageUnavailable(f"{record.image_id}: the run holds no image for it")
    data = _file_bytes(record)
    if hashlib.sha256(data).hexdigest() != record.sha256:
        raise ImageUnavailable(f"{record.path}: image bytes changed since the build (sha256 differs)")
    suffix = mimetypes.guess_extension(record.mime) or Path(record.path).suffix
    return {"bytes": upright(data), "path": f"{record.image_id}{suffix}"}
