"""Images for the model: base64 data URLs with the original MIME type, and their token cost.

The token estimate follows each model family's published rule (:data:`IMAGE_RULES`): GPT-4o's
tile rule for ``detail: high`` fits the image inside 2048x2048, scales its short side to at
most 768 px, and costs ``85 + 170 * tiles`` tokens, tiles being 512x512 squares
(``detail: low``: 85); gpt-4o-mini bills the same tiles at 2833 + 5667 each; GPT-4.1 mini
and nano bill 32 px patches times a multiplier.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import logging
import math
import os
import re
import tempfile
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from PIL import ExifTags, Image, ImageOps

from prist_builder.llm.cache import remember_data_url

BASE_TOKENS = 85
"""Tokens every image costs (the whole ``low`` detail cost)."""
TILE_TOKENS = 170
"""Tokens per 512x512 tile at ``high`` detail."""
TILE_SIDE = 512
FIT_SIDE = 2048
"""The image is first fitted inside a square of this side (pixels)."""
SHORT_SIDE = 768
"""Then its short side is brought down to this (pixels)."""
REENCODE_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP", "image/gif": "GIF"}
"""MIME types the API accepts, and the Pillow format that writes each."""
EXIF_ORIENTATION = ExifTags.Base.Orientation
"""EXIF tag of the image orientation."""
JPEG_QUALITY = 90
SHA256_HEX = re.compile(r"[0-9a-f]{64}")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImageRule:
    """How one model family bills an image, in prompt tokens.

    ``tile`` rules (GPT-4o and most of OpenAI's larger models): the image is fitted inside
    2048x2048, its short side brought down to 768 px, and costs ``base + per_unit * tiles``
    (512 px tiles); ``detail: low`` costs ``base``. ``patch`` rules (GPT-4.1 mini and
    nano, o4-mini): 32 px patches, at most 1536 (the image is shrunk to fit), times
    ``per_unit``; ``detail`` does not change the count.
    """

    name: str
    kind: Literal["tile", "patch"]
    base: float
    per_unit: float

    def describe(self) -> str:
        """``"tile: 85 + 170 per 512px tile (low: 85)"`` or ``"patch: 1.62 x 32px patches, <= 1536"``."""
        if self.kind == "tile":
            return f"tile: {self.base:g} + {self.per_unit:g} per 512px tile (low: {self.base:g})"
        return f"patch: {self.per_unit:g} x 32px patches (<= {MAX_PATCHES})"


# Published rules (OpenAI, "Images and vision" guide, section "Calculating costs":
# https://platform.openai.com/docs/guides/images-vision#calculating-costs). Tile rule:
# GPT-4o, GPT-4.1, GPT-4.5, o1, o3 bill 85 + 170 per tile; gpt-4o-mini bills 2833 + 5667
# per tile (the same dollar price as GPT-4o at its 1/16.7 token price). Patch rule:
# gpt-4.1-mini x1.62, gpt-4.1-nano x2.46, o4-mini x1.72 over 32 px patches, cap 1536. The
# two mechanisms and their model scopes are also set out in openai/openai-python#2851,
# and measured per model (gpt-4o-mini 2845 tokens low / 8512 high for a 128x64 image with
# a 12-token text) at https://community.openai.com/t/vision-more-than-one-way-to-send-a-request-undocumented-and-different-pricing-realized/1262691
IMAGE_RULES: tuple[tuple[str, ImageRule], ...] = (
    ("gpt-4o-mini", ImageRule("gpt-4o-mini", "tile", 2833, 5667)),
    ("gpt-4.1-mini", ImageRule("gpt-4.1-mini", "patch", 0, 1.62)),
    ("gpt-4.1-nano", ImageRule("gpt-4.1-nano", "patch", 0, 2.46)),
    ("o4-mini", ImageRule("o4-mini", "patch", 0, 1.72)),
    ("gpt-4.1", ImageRule("gpt-4.1", "tile", 85, 170)),
    ("gpt-4.5", ImageRule("gpt-4.5", "tile", 85, 170)),
    ("gpt-4o", ImageRule("gpt-4o", "tile", 85, 170)),
    ("o1", ImageRule("o1", "tile", 85, 170)),
    ("o3", ImageRule("o3", "tile", 85, 170)),
)
"""Model-name prefixes and their rule, most specific first (a dated name such as
``gpt-4o-mini-2024-07-18`` takes its family's rule)."""

DEFAULT_RULE = ImageRule("gpt-4o (assumed)", "tile", BASE_TOKENS, TILE_TOKENS)
"""The rule of a model not in :data:`IMAGE_RULES` (other servers: a guess, said so)."""

MAX_PATCHES = 1536
"""Most 32 px patches a patch-rule model bills for one image."""
PATCH_SIDE = 32


def image_rule(model: str | None) -> ImageRule:
    """The billing rule of ``model`` (``None``: GPT-4o's), matched by name prefix after any
    ``provider/`` part (``openai/gpt-4o-mini``)."""
    name = (model or "gpt-4o").rsplit("/", 1)[-1].lower()
    for prefix, rule in IMAGE_RULES:
        if name.startswith(prefix):
            return rule
    return DEFAULT_RULE


def _patches(width: float, height: float) -> int:
    """32 px patches billed for a ``width x height`` image, shrunk to fit :data:`MAX_PATCHES`."""
    count = math.ceil(width / PATCH_SIDE) * math.ceil(height / PATCH_SIDE)
    if count <= MAX_PATCHES:
        return count
    shrink = math.sqrt(PATCH_SIDE * PATCH_SIDE * MAX_PATCHES / (width * height))
    w, h = width * shrink, height * shrink
    shrink *= min(math.floor(w / PATCH_SIDE) / (w / PATCH_SIDE), math.floor(h / PATCH_SIDE) / (h / PATCH_SIDE))
    w, h = width * shrink, height * shrink
    return min(MAX_PATCHES, math.ceil(w / PATCH_SIDE) * math.ceil(h / PATCH_SIDE))


def image_tokens(width: int, height: int, detail: str = "high", model: str | None = None) -> int:
    """Estimated prompt tokens of one image of ``width x height`` pixels sent to ``model``
    (its :func:`image_rule`; ``auto`` counts as ``high``)."""
    rule = image_rule(model)
    if rule.kind == "patch":
        return math.ceil(_patches(width, height) * rule.per_unit)
    if detail == "low":
        return round(rule.base)
    scale = min(1.0, FIT_SIDE / max(width, height))
    w, h = width * scale, height * scale
    scale = min(1.0, SHORT_SIDE / min(w, h))
    w, h = w * scale, h * scale
    return round(rule.base + rule.per_unit * math.ceil(w / TILE_SIDE) * math.ceil(h / TILE_SIDE))


@dataclass(frozen=True)
class PreparedImage:
    """An image as sent to the model.

    Attributes:
        url: ``data:<mime>;base64,...``.
        width, height: size in pixels of the sent image.
        scale: sent pixels per source pixel (1.0 when not downscaled); region boxes in
            the prompt are multiplied by it so they match what the model sees.
        as_is: the URL holds the source bytes unchanged (no re-encoding).
        sha256: hex SHA-256 of the bytes the URL encodes (the cache key's digest of the
            image, see :func:`~prist_builder.llm.cache.remember_data_url`).
    """

    url: str
    width: int
    height: int
    scale: float
    as_is: bool = False
    sha256: str | None = None


@dataclass(frozen=True)
class AsIs:
    """An image that goes as its own bytes, as found where its input was read: its size
    (pixels) is all the build needs, which base64-encodes the bytes it holds itself."""

    width: int
    height: int

    def prepared(self, data: bytes, mime: str, sha256: str | None = None) -> PreparedImage:
        """The image as sent: ``data`` (whose SHA-256 hex is ``sha256``) as a data URL."""
        url = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
        digest = sha256 or hashlib.sha256(data).hexdigest()
        return PreparedImage(url, self.width, self.height, 1.0, as_is=True, sha256=digest)


def as_is(data: bytes, mime: str, max_side: int | None) -> AsIs | None:
    """The size of an image that goes as its own bytes, or ``None`` when :func:`prepare_image`
    must re-encode it (an EXIF turn, a long side over ``max_side``, a format the API does
    not take). Reads the header only (no decoding).

    Raises:
        PIL.UnidentifiedImageError, OSError: the bytes are not an image.
    """
    with Image.open(io.BytesIO(data)) as image:
        if image.getexif().get(EXIF_ORIENTATION, 1) not in (0, 1) or mime not in REENCODE_FORMATS:
            return None
        width, height = image.size
    if max_side is not None and max(width, height) > max_side:
        return None
    return AsIs(width, height)


def as_is_image(data: bytes, mime: str, max_side: int | None, sha256: str | None = None) -> PreparedImage | None:
    """The image as sent when it goes as its own bytes (see :func:`as_is`), else ``None``:
    a header read and base64, cheap enough for the event loop."""
    size = as_is(data, mime, max_side)
    return size.prepared(data, mime, sha256) if size is not None else None


def prepare_image(data: bytes, mime: str, max_side: int | None, sha256: str | None = None) -> PreparedImage:
    """Encode an image for the model, in the frame the annotations use.

    The EXIF orientation is applied (as Labelme and :func:`prist_builder.sources.decode_image`
    do, so boxes and pixels agree); images whose long side exceeds ``max_side`` are
    downscaled (Lanczos); formats the API does not take (BMP, TIFF) become PNG. An image
    that needs none of this goes as its original bytes and MIME type. ``sha256`` is the
    hex SHA-256 of ``data`` when the caller knows it.
    """
    found = as_is_image(data, mime, max_side, sha256)
    if found is not None:
        return found
    with Image.open(io.BytesIO(data)) as image:
        rotated = image.getexif().get(EXIF_ORIENTATION, 1) not in (0, 1)
        picture = ImageOps.exif_transpose(image) if rotated else image
        width, height = picture.size
        too_big = max_side is not None and max(width, height) > max_side
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
        encoded = buffer.getvalue()
        return PreparedImage(
            f"data:{mime};base64,{base64.b64encode(encoded).decode('ascii')}",
            picture.width,
            picture.height,
            scale,
            sha256=hashlib.sha256(encoded).hexdigest(),
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
    (``width``, ``height``, ``scale``, ``as_is``, ``mime``, ``sha256``) then the data URL,
    written atomically (temporary file, then :func:`os.replace`), so a kill leaves either
    no file or a whole one. An image sent as it is (``as_is``, no re-encoding) is not
    stored: preparing it again costs a header parse and the base64 encoding, no more than
    reading a file (header-only files of older versions are still read). A file that
    cannot be read is prepared again. Each image's digest is handed to the response
    cache's key (:func:`~prist_builder.llm.cache.remember_data_url`).

    Args:
        root: the folder; ``None`` keeps prepared images in memory only.
    """

    def __init__(self, root: Path | None) -> None:
        self.root = Path(root) if root is not None else None
        self._memo: OrderedDict[tuple[str, int | None], PreparedImage] = OrderedDict()
        self._as_is: dict[tuple[str, int | None], AsIs] = {}  # a few dozen bytes an image, all of the run

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

        May re-encode (tens of ms for a large photo): call it off the event loop. Thread-safe
        enough for a thread pool: the worst race prepares one image twice.
        """
        found = self.ready(sha256, data, mime, max_side)
        if found is None:
            found = prepare_image(data, mime, max_side, sha256)
            self._store(sha256, mime, max_side, found)
            self.adopt(sha256, max_side, found)
        return found

    def ready(self, sha256: str, data: bytes, mime: str, max_side: int | None) -> PreparedImage | None:
        """The prepared image if it costs no re-encoding (in memory, on disk, or sent as it
        is: see :func:`as_is_image`), else ``None``: cheap enough for the event loop. The
        size of every image sent as it is stays known for the run, so later steps only
        base64-encode its bytes."""
        found = self.remembered(sha256, max_side)
        if found is not None:
            return found
        size = self._as_is.get((sha256, max_side))
        if size is not None:  # known to go as it is: no header to parse again
            found = size.prepared(data, mime, sha256)
        else:
            found = self._load(sha256, data, max_side) or as_is_image(data, mime, max_side, sha256)
        if found is not None:
            self.adopt(sha256, max_side, found)
        return found

    def adopt(self, sha256: str, max_side: int | None, image: PreparedImage) -> None:
        """Keep an image prepared elsewhere (e.g. in a worker process) in memory, and hand its
        digest to the response cache's key."""
        if image.sha256 is not None:
            remember_data_url(image.url, image.sha256)
        if image.as_is:
            self._as_is[(sha256, max_side)] = AsIs(image.width, image.height)
        self._memo[(sha256, max_side)] = image
        self._memo.move_to_end((sha256, max_side))
        while len(self._memo) > PREPARED_MEMO:
            self._memo.popitem(last=False)

    def derived(self, key: str, max_side: int | None, make: Callable[[], PreparedImage]) -> PreparedImage:
        """An image made from a source image (e.g. with marks drawn on it), kept like a
        prepared one under ``key`` (64 hex digits naming the source and what was drawn):
        from memory, else from disk, else ``make()`` (called off the event loop by the
        caller), stored. Its digest joins the response cache's key as usual."""
        found = self.remembered(key, max_side) or self._load(key, b"", max_side)
        if found is None:
            found = make()
            self._store(key, "image/png" if found.url.startswith("data:image/png") else "image/jpeg", max_side, found)
        self.adopt(key, max_side, found)
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
            digest = sha256 if meta["as_is"] else meta.get("sha256")
            if not (isinstance(digest, str) and SHA256_HEX.fullmatch(digest)):
                digest = None  # the cache key then hashes the URL itself
            return PreparedImage(url.decode("ascii"), width, height, scale, bool(meta["as_is"]), digest)
        except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError):
            return None

    def _store(self, sha256: str, mime: str, max_side: int | None, image: PreparedImage) -> None:
        path = self.path(sha256, max_side)
        if path is None or image.as_is:
            return
        header = {"width": image.width, "height": image.height, "scale": image.scale, "as_is": image.as_is}
        header["mime"] = mime
        header["sha256"] = image.sha256
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
