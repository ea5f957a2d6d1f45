"""Read the target mask an annotator drew in a Labelme file of a work package.

A work-package file holds one sample. For a single-target sample its target is the union of
every area shape (``polygon``, ``oriented_rectangle``, ``rectangle``, ``circle``, ``mask``)
whatever its label, except:

- shapes labelled ``__ignore__`` / ``_background_`` (Labelme's "leave out" labels);
- reference shapes whose label starts with :data:`REFERENCE_PREFIX` (the two annotators'
  outlines shown to an adjudicator; relabel one to make it the answer);
- shapes without area (``line``, ``linestrip``, ``point``, ``points``), listed as skipped.

Every shape must be valid: one broken shape (e.g. a polygon with fewer than 3 points) makes
the whole file an error naming ``shapes[i]``, since a partial mask would be a wrong mask.
The image is the embedded ``imageData`` or ``imagePath`` relative to the file (Windows
separators accepted); its size after the EXIF orientation (as Labelme shows it) must equal
``imageHeight``/``imageWidth`` and the run's image.

A multi-target sample (:class:`TargetSpec` ``kind="multi"``) has one label per target, in the
final answer's order: ``target 1: <focus>``, ``target 2: <focus>``, ... (:func:`target_label`;
the numbers and Labelme's colour per label keep them apart). Each shape belongs to the target
its label names, by the full label or its short form ``target k``; a shape whose label names
no target is an error naming ``shapes[i]``. The target list is also in the file's ``prist``
block (``targets``). An empty-target sample (``kind="empty"``) asks for something the image
does not hold: an untouched file (no shape) means "nothing there"; any shape drawn is read as
the annotator having found it.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from prist_builder.annotation.labelme import LabelmeFile, read_labelme, shape_mask
from prist_builder.annotation.masks import AREA_SHAPES, NON_AREA_SHAPES
from prist_builder.annotation.regions import IGNORE_LABELS, AnnotationError

REFERENCE_PREFIX = "ref:"
"""Labels starting with this mark reference outlines (adjudication packages): never the target."""
PRIST_KEY = "prist"
"""Top-level key of a work-package file holding its sample id, annotator and dialogue (Labelme keeps it)."""
TARGET_LABEL_PREFIX = "target"
"""Labels of a multi-target sample's targets start with this and the target's 1-based number."""
_SHORT_LABEL = re.compile(r"^\s*" + TARGET_LABEL_PREFIX + r"\s*(\d+)\s*$", re.IGNORECASE)


def target_label(number: int, focus: str) -> str:
    """The Labelme label of target ``number`` (1-based, answer order) of a multi-target sample,
    e.g. ``target 2: the cup that still holds coffee``."""
    return f"{TARGET_LABEL_PREFIX} {number}: {focus.strip()}"


@dataclass(frozen=True)
class TargetSpec:
    """What a work-package file of a sample must hold, from the run's dialogue.

    Attributes:
        kind: ``single``, ``multi`` or ``empty`` (:data:`~prist_builder.records.dialogue.TargetKind`).
        foci: the targets' descriptions in answer order (multi); the asked-for absent thing
            (empty); the focus (single).
    """

    kind: str = "single"
    foci: tuple[str, ...] = ()

    @property
    def labels(self) -> list[str]:
        """The targets' Labelme labels (:func:`target_label`); ``[]`` unless ``multi``."""
        return [target_label(k, f) for k, f in enumerate(self.foci, start=1)] if self.kind == "multi" else []

    def match(self, label: str) -> int | None:
        """0-based index of the target a multi-target label names (full label or ``target k``), else None."""
        labels = self.labels
        stripped = label.strip()
        if stripped in labels:
            return labels.index(stripped)
        short = _SHORT_LABEL.match(stripped)
        if short and 1 <= int(short.group(1)) <= len(labels):
            return int(short.group(1)) - 1
        return None


def target_spec(dialogue: Any) -> TargetSpec:
    """The :class:`TargetSpec` of a :class:`~prist_builder.records.DialogueRecord`."""
    if dialogue.kind == "multi":
        return TargetSpec("multi", tuple(t.focus for t in dialogue.targets))
    return TargetSpec(dialogue.kind, (dialogue.focus,))


@dataclass
class TargetFile:
    """The target mask read from one annotator's Labelme file.

    Attributes:
        path: the file.
        sample_id: from the file's ``prist.sample_id``, else its name without ``.json``.
        mask: ``(H, W) bool`` union of the target shapes.
        sha256: hex digest of the file's bytes.
        shapes: how many shapes make up the target.
        skipped: one line per shape left out on purpose (reference, ignore, no area).
        masks: multi-target file: one ``(H, W) bool`` mask per target in answer order
            (``mask`` is their union); ``None`` otherwise.
    """

    path: Path
    sample_id: str
    mask: np.ndarray
    sha256: str
    shapes: int
    skipped: list[str] = field(default_factory=list)
    masks: list[np.ndarray] | None = None


def file_sample_id(path: Path, data: dict[str, Any] | None = None) -> str:
    """The sample a work-package file is for: ``prist.sample_id`` if present, else the file stem."""
    meta = (data or {}).get(PRIST_KEY)
    if isinstance(meta, dict) and isinstance(meta.get("sample_id"), str) and meta["sample_id"]:
        return meta["sample_id"]
    return Path(path).stem


def image_size(doc: LabelmeFile) -> tuple[int, int]:
    """``(height, width)`` in pixels of a Labelme file's image, EXIF orientation applied.

    Raises:
        AnnotationError: no image (neither ``imageData`` nor a readable ``imagePath``), or
            an unreadable one; the message names the file and the field.
    """
    if doc.image_data is not None:
        source, data = "imageData", doc.image_data
    elif doc.image_path:
        image_file = doc.path.parent / doc.image_path
        if not image_file.is_file():
            raise AnnotationError(f"{doc.path}: field 'imagePath': image {doc.image_path!r} not found next to the file")
        source, data = "imagePath", image_file.read_bytes()
    else:
        raise AnnotationError(f"{doc.path}: field 'imagePath': no image (no imageData and no imagePath)")
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = ImageOps.exif_transpose(image).size if _rotated(image) else image.size
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise AnnotationError(f"{doc.path}: field '{source}': unreadable image ({exc})") from exc
    return height, width


def _rotated(image: Image.Image) -> bool:
    """The EXIF orientation swaps or flips the frame (5..8 swap width and height)."""
    return image.getexif().get(ImageOps.ExifTags.Base.Orientation, 1) not in (0, 1)


def read_target(
    path: Path,
    size_of: Callable[[str], tuple[int, int]],
    require_target: bool = False,
    spec_of: Callable[[str], TargetSpec] | None = None,
) -> TargetFile:
    """Read one work-package file and rasterise its target (per target for a multi-target sample).

    Args:
        path: the Labelme JSON file.
        size_of: sample id -> the run's ``(height, width)`` in pixels (EXIF-corrected) of its
            image; raises :class:`AnnotationError` for a sample the run does not have.
        require_target: raise when no shape makes up the target (adjudication files, where
            an untouched file must not become an empty final mask); for a multi-target
            sample, when a target has no shape. Not applied to an empty-target sample, where
            no shape is the answer "nothing there".
        spec_of: sample id -> its :class:`TargetSpec` (default: single-target).

    Raises:
        AnnotationError: bad JSON, missing or unreadable image, size mismatch, a broken
            shape, or (multi) a shape whose label names no target; one line naming the file
            and the field (``shapes[i]`` for a shape).
    """
    path = Path(path)
    doc = read_labelme(path)
    raw = path.read_bytes()
    sample_id = file_sample_id(path, json.loads(raw.decode("utf-8")))
    height, width = size_of(sample_id)
    actual = image_size(doc)
    declared = (doc.height, doc.width)
    if declared != (None, None) and declared != actual:
        raise AnnotationError(
            f"{path}: field 'imageHeight'/'imageWidth': {declared[0]}x{declared[1]} but the image is"
            f" {actual[0]}x{actual[1]}"
        )
    if actual != (height, width):
        raise AnnotationError(f"{path}: image is {actual[0]}x{actual[1]} but the run's image is {height}x{width}")
    spec = spec_of(sample_id) if spec_of is not None else TargetSpec()
    count = len(spec.foci) if spec.kind == "multi" else 1
    masks = [np.zeros((height, width), dtype=bool, order="F") for _ in range(count)]
    used_per = [0] * count
    skipped: list[str] = []
    used = 0
    for index, shape in enumerate(doc.shapes):
        where = f"shapes[{index}]"
        if not isinstance(shape, dict):
            raise AnnotationError(f"{path}: {where} is not an object")
        label = shape.get("label")
        shape_type = shape.get("shape_type") or "polygon"
        if not isinstance(label, str):
            raise AnnotationError(f"{path}: {where}.label is missing or not a string")
        if shape_type in NON_AREA_SHAPES:
            skipped.append(f"{where} ({label!r}, {shape_type}): no area")
            continue
        if shape_type not in AREA_SHAPES:
            raise AnnotationError(f"{path}: {where}.shape_type {shape_type!r} is unknown")
        if label.startswith(REFERENCE_PREFIX) or label in IGNORE_LABELS:
            skipped.append(f"{where} ({label!r}): reference or ignore label")
            continue
        index_of = 0
        if spec.kind == "multi":
            found = spec.match(label)
            if found is None:
                expected = ", ".join(repr(x) for x in spec.labels)
                raise AnnotationError(
                    f"{path}: {where}.label {label!r} names no target of this sample (expected one of {expected},"
                    f" or '{TARGET_LABEL_PREFIX} k')"
                )
            index_of = found
        try:
            masks[index_of] |= shape_mask(shape, shape_type, height, width)
        except ValueError as exc:
            raise AnnotationError(f"{path}: {where} ({label!r}): {exc}") from None
        used += 1
        used_per[index_of] += 1
    if require_target and spec.kind != "empty":
        missing = [k + 1 for k, n in enumerate(used_per) if n == 0]
        if spec.kind == "multi" and missing and used:
            raise AnnotationError(
                f"{path}: field 'shapes': no shape for {', '.join(repr(spec.labels[k - 1]) for k in missing)}"
            )
        if used == 0:
            raise AnnotationError(
                f"{path}: field 'shapes': no target shape (relabel a '{REFERENCE_PREFIX}' outline or draw one)"
            )
    digest = hashlib.sha256(raw).hexdigest()
    if spec.kind != "multi":
        return TargetFile(path, sample_id, masks[0], digest, used, skipped)
    union = np.zeros((height, width), dtype=bool, order="F")
    for mask in masks:
        union |= mask
    return TargetFile(path, sample_id, union, digest, used, skipped, masks)
