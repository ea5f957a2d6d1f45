"""Rows of the export contract built from public datasets, and what every converter shares.

A row holds exactly the columns of ``prist_builder.export.features.FEATURES`` (README "The
export folder") as plain Python values; masks are COCO compressed RLE made by pycocotools.
The image column carries the source file's bytes, in the pixel frame of the dataset's
annotations (see :func:`read_image`).
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError
from pycocotools import mask as coco_mask

from prist_builder.records.limits import OBJ_TOKEN, SEG_TOKEN
from prist_builder.stats import granularity

EXIF_ORIENTATION = ExifTags.Base.Orientation
JPEG_QUALITY = 95
"""Quality of a JPEG re-encoded without its EXIF orientation."""


class ConvertError(ValueError):
    """A dataset cannot be converted at all (missing folder, unreadable index file); the message
    names the file and the field."""


@dataclass(frozen=True)
class Reject:
    """A record left out, with where and why (one line of ``rejects.jsonl``).

    Attributes:
        file: the file holding the record.
        field: the record or field that is wrong (``refs[12].ann_id``, ``shapes[0].points``).
        reason: what is wrong.
    """

    file: str
    field: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        """The JSON line's content."""
        return {"file": self.file, "field": self.field, "reason": self.reason}


Item = tuple[str, dict[str, Any]] | Reject
"""What a converter yields: ``(split, row)`` or a :class:`Reject`."""


@dataclass
class Options:
    """Converter settings (``prist convert`` options).

    Attributes:
        images: folder the dataset's image file names are relative to (``None``: the
            converter's default for the dataset's layout).
        splits: splits to convert in the dataset's own names (``None``: all).
        classes_per_sample: semantic/part segmentation: classes asked for in one sample (an
            image with more classes gives several samples; LISA samples 3).
        seed: seed of the class grouping and of the question wording.
        split_by: RefCOCO: the refs file's partition (``unc``, ``umd``, ``google``;
            ``None``: the first present of these).
        name: dataset name used in sample ids and ``source`` (``None``: from the folder name).
        limit: stop after this many rows (a quick slice).
    """

    images: Path | None = None
    splits: Sequence[str] | None = None
    classes_per_sample: int = 3
    seed: int = 0
    split_by: str | None = None
    name: str | None = None
    limit: int | None = None


SPLIT_NAMES = {"train": "train", "training": "train", "val": "validation", "validation": "validation", "test": "test"}
"""Dataset split names mapped to the export contract's (RefCOCO's ``testA``/``testB`` keep theirs)."""


def export_split(name: str) -> str:
    """The export folder's split name for a dataset's split name (``val`` -> ``validation``)."""
    return SPLIT_NAMES.get(name, SPLIT_NAMES.get(name.lower().rstrip("0123456789"), name))


def wanted(split: str, options: Options) -> bool:
    """Whether a dataset split (its own name) is to be converted."""
    return options.splits is None or split in options.splits or export_split(split) in options.splits


@dataclass(frozen=True)
class ImageFile:
    """An image ready for a row: its bytes (in the annotations' frame) and size in pixels."""

    data: bytes
    name: str
    width: int
    height: int


def read_image(path: Path, size: tuple[int, int] | None = None) -> ImageFile:
    """Read an image file for a row.

    A file whose EXIF orientation is the identity goes out byte for byte. Public datasets
    annotate the pixels as stored, so a file with another orientation is re-encoded in its
    stored frame without the tag (readers that honour EXIF would otherwise turn it); when
    only the turned frame matches ``size`` (``(height, width)`` of the annotations), that one is used.

    Raises:
        ValueError: unreadable file, or ``size`` matches neither frame (message names the file).
    """
    try:
        data = Path(path).read_bytes()
        image = Image.open(io.BytesIO(data))
        width, height = image.size
        orientation = image.getexif().get(EXIF_ORIENTATION, 1)
    except (OSError, UnidentifiedImageError) as exc:
        raise ValueError(f"cannot read image: {exc}") from None
    if orientation != 1:
        turned = ImageOps.exif_transpose(image) if size is not None and size != (height, width) else image
        if size is not None and tuple(reversed(turned.size)) != tuple(size):
            raise ValueError(f"image is {width}x{height}, annotations are {size[1]}x{size[0]}")
        out = io.BytesIO()
        fmt = image.format or "PNG"
        turned.save(out, format=fmt, **({"quality": JPEG_QUALITY} if fmt == "JPEG" else {}))
        data, (width, height) = out.getvalue(), turned.size
    elif size is not None and (height, width) != tuple(size):
        raise ValueError(f"image is {width}x{height}, annotations are {size[1]}x{size[0]}")
    return ImageFile(data, Path(path).name, width, height)


def encode_mask(mask: np.ndarray) -> dict[str, Any]:
    """COCO compressed RLE ``{"size": [h, w], "counts": str}`` of a ``(H, W)`` bool mask."""
    rle = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def coco_segmentation_rle(segmentation: Any, height: int, width: int) -> dict[str, Any]:
    """COCO RLE of a COCO ``segmentation`` (polygon list, uncompressed or compressed RLE), as
    cocoapi's ``annToRLE`` makes it (pycocotools rasterises polygons, so masks equal the
    benchmark's own ground truth).

    Raises:
        ValueError: neither form, or a malformed polygon.
    """
    if isinstance(segmentation, list):
        polygons = [p for p in segmentation if isinstance(p, list)]
        if not polygons or any(len(p) < 6 or len(p) % 2 for p in polygons):
            raise ValueError("a polygon needs an even list of at least 6 coordinates")
        rle = coco_mask.merge(coco_mask.frPyObjects(polygons, height, width))
    elif isinstance(segmentation, dict) and "counts" in segmentation and "size" in segmentation:
        if [int(v) for v in segmentation["size"]] != [height, width]:
            raise ValueError(f"RLE size {segmentation['size']} differs from the image's [{height}, {width}]")
        if isinstance(segmentation["counts"], list):
            rle = coco_mask.frPyObjects(segmentation, height, width)
        else:
            counts = segmentation["counts"]
            rle = {"size": [height, width], "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
    else:
        raise ValueError("segmentation is neither a polygon list nor an RLE object")
    counts = rle["counts"]
    return {"size": [height, width], "counts": counts.decode("ascii") if isinstance(counts, bytes) else counts}


def merge_rles(rles: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Union of COCO compressed RLEs of one size."""
    if len(rles) == 1:
        return dict(rles[0])
    raw = [{"size": r["size"], "counts": r["counts"].encode("ascii")} for r in rles]
    merged = coco_mask.merge(raw)
    return {"size": list(rles[0]["size"]), "counts": merged["counts"].decode("ascii")}


def _target(focus: str, rle: dict[str, Any], height: int, width: int) -> dict[str, Any]:
    raw = {"size": rle["size"], "counts": rle["counts"].encode("ascii")}
    pixels = int(coco_mask.area(raw))
    return {
        "focus": focus,
        "mask": {"size": list(rle["size"]), "counts": rle["counts"]},
        "box": [float(v) for v in coco_mask.toBbox(raw)],
        "area": pixels,
        "granularity": granularity(pixels, height, width),
        "element_id": None,
    }


def make_row(
    *,
    sample_id: str,
    image_id: str,
    image: ImageFile,
    turns: Sequence[tuple[str, str]],
    targets: Sequence[tuple[str, dict[str, Any]]] = (),
    source: str,
    converter: str,
) -> dict[str, Any]:
    """One row of the export contract.

    Args:
        sample_id, image_id: ids (unique per sample / per image within the dataset).
        image: the image (bytes and size in pixels).
        turns: ``(role, content)`` messages, ``user``/``assistant`` alternating, user first.
        targets: ``(focus, RLE)`` per ``[SEG]`` of the final answer, in order.
        source: the dataset and file the sample comes from.
        converter: the FORMAT name (recorded as ``provenance.provider`` ``convert:FORMAT``).
    """
    conversations = [
        {"from": "human" if role == "user" else "gpt", "value": f"<image>\n{text}" if index == 0 else text}
        for index, (role, text) in enumerate(turns)
    ]
    return {
        "sample_id": sample_id,
        "image_id": image_id,
        "image": {"bytes": image.data, "path": image.name},
        "width": image.width,
        "height": image.height,
        "turns": [{"role": role, "content": text} for role, text in turns],
        "conversations": conversations,
        "focus": targets[0][0] if targets else None,
        "targets": [_target(focus, rle, image.height, image.width) for focus, rle in targets],
        "elements": [],
        "tree": None,
        "source": source,
        "provenance": {
            "provider": f"convert:{converter}",
            "model": None,
            "prompt_version": None,
            "mask_rule": "dataset",
            "annotators": [],
            "agreement_iou": None,
            "agreement_kappa": None,
            "review_status": None,
            "reviewer": None,
        },
    }


def span(name: str) -> str:
    """The segmentation template of one target, ``[OBJ]{name}[SEG]`` (section 4.1)."""
    return f"{OBJ_TOKEN}{name}{SEG_TOKEN}"


def limited(items: Iterator[Item], limit: int | None) -> Iterator[Item]:
    """``items`` until ``limit`` rows have gone by (rejects do not count)."""
    rows = 0
    for item in items:
        if limit is not None and rows >= limit:
            return
        yield item
        if not isinstance(item, Reject):
            rows += 1
