"""Find the inputs of a build and turn each into an :class:`ImageRecord` with regions.

Three ways in (paper section 3.1 uses bare photos; we also take annotated ones):

- ``--images DIR``: bare photos; regions come later from annotation.
- ``--labelme DIR``: one Labelme JSON per image. The pixels are the file's embedded
  ``imageData`` if present, else ``imagePath`` next to the JSON file, else the file of
  that name (or of the JSON's stem) in ``--images``.
- ``--coco FILE``: a COCO instances JSON; ``file_name`` is looked up in ``--images``.

An image's id is its file stem (the Labelme file's stem for Labelme input). Images in
``--images`` that no annotation file names are added as bare inputs.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from prist_builder.annotation.coco import CocoFile, CocoImage, coco_regions, read_coco
from prist_builder.annotation.labelme import labelme_regions, read_labelme
from prist_builder.annotation.regions import AnnotationError, RegionDraft, ShapeProblem, finish_regions
from prist_builder.records import ImageRecord, Reject

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})


class InputRejected(Exception):
    """An input cannot be used; ``reason`` is one line naming the file and the field.

    Attributes:
        reason: the one-line reason.
        source_file: the file at fault, if any.
        raw: the offending payload, if any.
        rejects: rejects of parts of the same input found before it was given up
            (e.g. bad shapes of an image that then has too few regions).
    """

    def __init__(
        self, reason: str, source_file: str | None = None, raw: object = None, rejects: list[Reject] | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.source_file = source_file
        self.raw = raw
        self.rejects = list(rejects or [])

    def __reduce__(self) -> tuple:
        # keep every attribute when the error crosses a process boundary
        return type(self), (self.reason, self.source_file, self.raw, self.rejects)


class PartlyRejected(Exception):
    """An input gave some records and had others set aside (step 3: the dialogues of an
    image some of whose conversations broke a rule after every re-ask).

    Attributes:
        records: the records kept (a step's record models).
        rejects: one :class:`Reject` per part set aside, ``input_id`` naming the part
            (a dialogue: its sample id ``"<image_id>-<target_element_id>"``).
    """

    def __init__(self, records: list, rejects: list[Reject]) -> None:
        super().__init__(f"{len(rejects)} part(s) rejected, {len(records)} record(s) kept")
        self.records, self.rejects = list(records), list(rejects)


@dataclass
class SourceItem:
    """One input image, before it is read.

    Attributes:
        image_id: the image's id (a file stem).
        image_path: the image file, when known without reading an annotation file.
        labelme_path: the Labelme file for it, if any.
        coco: the COCO file and entry for it, if any.
        images_dir: the ``--images`` folder, used to resolve Labelme ``imagePath``.
    """

    image_id: str
    image_path: Path | None = None
    labelme_path: Path | None = None
    coco: tuple[CocoFile, CocoImage] | None = None
    images_dir: Path | None = None

    @property
    def source_file(self) -> str:
        """The file that best names this input in messages."""
        return str(self.labelme_path or self.image_path or self.image_id)


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def discover(
    images: Path | None = None, labelme: Path | None = None, coco: Path | None = None
) -> tuple[list[SourceItem], list[Reject]]:
    """List the inputs of a build, sorted by image id.

    Returns:
        ``(items, rejects)``; rejects hold inputs whose id clashes with an earlier one.

    Raises:
        AnnotationError: the COCO file itself is unreadable.
        FileNotFoundError: a given folder or file does not exist.
    """
    for given in (images, labelme, coco):
        if given is not None and not Path(given).exists():
            raise FileNotFoundError(f"{given}: no such file or folder")
    items: dict[str, SourceItem] = {}
    rejects: list[Reject] = []
    listed: set[Path] = set()

    def add(item: SourceItem) -> None:
        if item.image_id in items:
            first = items[item.image_id].source_file
            rejects.append(
                Reject(
                    input_id=item.source_file,
                    image_id=item.image_id,
                    step="elements",
                    reason=f"{item.source_file}: image id {item.image_id!r} is already taken by {first}",
                    source_file=item.source_file,
                )
            )
        else:
            items[item.image_id] = item

    if labelme is not None:
        for path in sorted(Path(labelme).glob("*.json")):
            add(SourceItem(path.stem, labelme_path=path, images_dir=images))
    if coco is not None:
        parsed = read_coco(Path(coco))
        # each item carries only its own annotations, so items stay cheap to send to workers
        header = CocoFile(parsed.path, {}, parsed.categories)
        for entry in sorted(parsed.images.values(), key=lambda e: e.file_name):
            path = Path(images) / entry.file_name if images else Path(coco).parent / entry.file_name
            listed.add(path.resolve())
            add(SourceItem(Path(entry.file_name).stem, image_path=path, coco=(header, entry), images_dir=images))
    if images is not None:
        claimed: set[str] = set()  # a Labelme file's stem claims one image of that stem
        for path in _image_files(Path(images)):
            owner = items.get(path.stem)
            if owner is not None and owner.labelme_path is not None and path.stem not in claimed:
                claimed.add(path.stem)
                continue
            if path.resolve() in listed:  # a COCO entry names this file (kept, or a reported clash)
                continue
            add(SourceItem(path.stem, image_path=path, images_dir=images))
    return [items[k] for k in sorted(items)], rejects


def _resolve_labelme_image(item: SourceItem, image_path: str | None) -> Path | None:
    assert item.labelme_path is not None
    candidates: list[Path] = []
    if image_path:
        candidates.append(item.labelme_path.parent / image_path)
        if item.images_dir is not None:
            candidates.append(item.images_dir / Path(image_path).name)
    if item.images_dir is not None:
        candidates += [item.images_dir / f"{item.image_id}{s}" for s in sorted(IMAGE_SUFFIXES)]
    for candidate in candidates:
        if candidate.is_file() and candidate.suffix.lower() in IMAGE_SUFFIXES:
            return candidate
    return None


EXIF_ORIENTATION = ExifTags.Base.Orientation
"""EXIF tag of the image orientation."""
QUARTER_TURNS = frozenset({5, 6, 7, 8})
"""EXIF orientations that turn the image a quarter (transpose, 270 and 90 degrees,
transverse): its width and height swap."""
PROBE_SIZE = (1, 1)
"""Size asked of JPEG's scaled decoding when an image is only checked: the smallest
scale there is (1/8 of each side)."""
UNREADABLE = (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError)
"""What Pillow raises for bytes that are not a readable image."""


def probe_image(data: bytes, where: str) -> tuple[int, int, str]:
    """Size and MIME type of an image as :func:`decode_image` would give it, without its pixels.

    The whole stream is still decoded, so a truncated or corrupt image is rejected just
    as :func:`decode_image` rejects it; a JPEG is decoded at 1/8 scale (DCT scaling), a
    few times cheaper than in full. The EXIF orientation is applied to the size.

    Returns:
        ``(width, height, mime)``: size in pixels of the oriented image, and the MIME type.

    Raises:
        InputRejected: the bytes are not a readable image.
    """
    try:
        image = Image.open(io.BytesIO(data))
        width, height = image.size
        orientation = image.getexif().get(EXIF_ORIENTATION, 1)
        if image.format == "JPEG":
            image.draft(image.mode, PROBE_SIZE)
        image.load()
    except UNREADABLE as exc:
        raise InputRejected(f"{where}: unreadable image ({exc})", where) from exc
    mime = Image.MIME.get(image.format or "", "application/octet-stream")
    return (height, width, mime) if orientation in QUARTER_TURNS else (width, height, mime)


def decode_image(data: bytes, where: str) -> tuple[Image.Image, str]:
    """Decode image bytes fully, applying the EXIF orientation as Labelme does.

    Returns:
        ``(image, mime)``: the oriented image and the MIME type of the encoding.

    Raises:
        InputRejected: the bytes are not a readable image.
    """
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except UNREADABLE as exc:
        raise InputRejected(f"{where}: unreadable image ({exc})", where) from exc
    mime = Image.MIME.get(image.format or "", "application/octet-stream")
    if image.getexif().get(EXIF_ORIENTATION, 1) == 1:
        return image, mime  # exif_transpose would only copy it
    return ImageOps.exif_transpose(image), mime


@dataclass
class LoadedImage:
    """An input read from disk.

    Attributes:
        record: the image record with its regions.
        pixels: the decoded image, RGB; ``None`` when loaded without pixels
            (``load_item(..., pixels=False)``).
        data: the encoded image bytes.
        problems: shapes that could not become regions.
        masks: ``(H, W) bool`` mask of each region, by region id (empty when loaded
            without pixels).
        rejects: per-shape rejects made from ``problems`` by the pipeline.
        prepared: what the provider made of the input where it was read (a worker process
            or thread), see ``Provider.input_preparer``; ``None`` if nothing.
    """

    record: ImageRecord
    pixels: Image.Image | None
    data: bytes
    problems: list[ShapeProblem]
    masks: dict[str, np.ndarray]
    rejects: list[Reject] = field(default_factory=list)
    prepared: object = None


def load_item(item: SourceItem, pixels: bool = True) -> LoadedImage:
    """Read an input's image and annotations into an :class:`ImageRecord`.

    The image is always decoded in full (an unreadable image is rejected here, not at the
    model). ``pixels=False`` leaves the RGB pixels and the region masks out of the result
    (the record is the same): a small object to send between processes, for providers
    that only need the encoded bytes.

    Raises:
        InputRejected: unreadable image or annotation file, missing image, or a size
            mismatch between the annotation and the image; the reason names the file.
    """
    drafts: list[RegionDraft] = []
    problems: list[ShapeProblem] = []
    skipped: list[str] = []
    embedded = False
    annotation_path: Path | None = None
    if item.labelme_path is not None:
        annotation_path = item.labelme_path
        try:
            doc = read_labelme(item.labelme_path)
        except AnnotationError as exc:
            raise InputRejected(str(exc), str(item.labelme_path)) from exc
        if doc.image_data is not None:
            data, image_file, embedded = doc.image_data, item.labelme_path, True
        else:
            found = _resolve_labelme_image(item, doc.image_path)
            if found is None:
                raise InputRejected(
                    f"{item.labelme_path}: imagePath {doc.image_path!r} is not found next to the file"
                    " or in --images, and there is no imageData",
                    str(item.labelme_path),
                )
            image_file = found
            data = _read_bytes(found)
        image, width, height, mime = _decode(data, str(image_file), pixels)
        if (doc.height, doc.width) != (None, None) and (doc.height, doc.width) != (height, width):
            raise InputRejected(
                f"{item.labelme_path}: imageHeight x imageWidth {doc.height}x{doc.width} differ from the"
                f" image's {height}x{width}",
                str(item.labelme_path),
            )
        drafts, problems, skipped = labelme_regions(doc, height, width)
        source = "labelme"
    else:
        assert item.image_path is not None
        image_file = item.image_path
        data = _read_bytes(image_file)
        image, width, height, mime = _decode(data, str(image_file), pixels)
        source = "images"
        if item.coco is not None:
            coco_file, entry = item.coco
            annotation_path = coco_file.path
            if (entry.height, entry.width) != (height, width):
                raise InputRejected(
                    f"{coco_file.path}: images[file_name={entry.file_name!r}] height x width"
                    f" {entry.height}x{entry.width} differ from the image's {height}x{width}",
                    str(coco_file.path),
                )
            drafts, problems = coco_regions(coco_file, entry, height, width)
            source = "coco"
    regions, masks = finish_regions(drafts)
    record = ImageRecord(
        image_id=item.image_id,
        path=str(Path(image_file).resolve()),
        embedded=embedded,
        width=width,
        height=height,
        sha256=hashlib.sha256(data).hexdigest(),
        mime=mime,
        source=source,  # type: ignore[arg-type]
        annotation_path=str(Path(annotation_path).resolve()) if annotation_path else None,
        regions=regions,
        skipped_shapes=skipped,
    )
    if image is None:
        return LoadedImage(record, None, data, problems, {})
    return LoadedImage(record, image.convert("RGB"), data, problems, masks)


def _decode(data: bytes, where: str, pixels: bool) -> tuple[Image.Image | None, int, int, str]:
    """``(image or None, width, height, mime)``: :func:`decode_image`, or :func:`probe_image`
    when the pixels are not wanted."""
    if not pixels:
        return None, *probe_image(data, where)
    image, mime = decode_image(data, where)
    return image, image.width, image.height, mime


def _read_bytes(path: Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InputRejected(f"{path}: cannot read image: {exc.strerror or exc}", str(path)) from exc


def read_image_bytes(record: ImageRecord) -> bytes:
    """Encoded bytes of a recorded image (embedded Labelme data included), not decoded.

    Raises:
        InputRejected: the file is gone, unreadable, or its bytes changed since step 1
            (sha256 differs).
    """
    if record.embedded:
        try:
            doc = read_labelme(Path(record.path))
        except AnnotationError as exc:
            raise InputRejected(str(exc), record.path) from exc
        data = doc.image_data or b""
    else:
        data = _read_bytes(Path(record.path))
    if hashlib.sha256(data).hexdigest() != record.sha256:
        raise InputRejected(f"{record.path}: image bytes changed since step 1 (sha256 differs)", record.path)
    return data


def read_image(record: ImageRecord) -> tuple[bytes, Image.Image]:
    """Encoded bytes and RGB pixels of a recorded image (embedded Labelme data included).

    Raises:
        InputRejected: the file is gone, unreadable, or its bytes changed since step 1
            (sha256 differs).
    """
    data = read_image_bytes(record)
    return data, decode_image(data, record.path)[0].convert("RGB")
