"""The image bytes an export row carries: the source file, in the frame the masks use.

Masks are drawn on the EXIF-corrected image (:func:`prist_builder.sources.decode_image`).
A file whose EXIF orientation is the identity goes out byte for byte; one that needs a
rotation or flip is re-encoded in its own format after :func:`PIL.ImageOps.exif_transpose`,
so that a reader that ignores EXIF sees the pixels the masks were drawn on.
"""

from __future__ import annotations

import io
import mimetypes
from pathlib import Path

from PIL import ExifTags, Image, ImageOps

from prist_builder.records import ImageRecord
from prist_builder.sources import InputRejected, read_image_bytes

EXIF_ORIENTATION = ExifTags.Base.Orientation
"""EXIF tag holding the orientation (1 = as stored)."""

JPEG_QUALITY = 95
"""Quality of a JPEG re-encoded after an EXIF rotation."""


class ImageUnavailable(Exception):
    """The image of a record cannot go out: absent, unreadable, or changed since the build."""


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
    try:
        data = read_image_bytes(record)  # absent, unreadable or changed since step 1 (sha256)
    except InputRejected as exc:
        raise ImageUnavailable(exc.reason) from None
    suffix = mimetypes.guess_extension(record.mime) or Path(record.path).suffix
    return {"bytes": upright(data), "path": f"{record.image_id}{suffix}"}
