"""``prist export --format lisa``: the ReasonSeg layout that LISA's ``ReasonSegDataset`` reads.

``OUT/{train,val,test}/<sample_id>.jpg`` with ``<sample_id>.json`` beside it (LISA globs
``*.jpg`` and reads the JSON of the same stem). The JSON is a Labelme-style file::

    {"text": [query], "is_sentence": bool, "shapes": [{"label": "target", "points": [[x, y], ...],
     "shape_type": "polygon", "group_id": null, "flags": {}, "description": ""}],
     "imagePath", "imageHeight", "imageWidth", "imageData": null, "version", "flags",
     "dialogue": [{"role", "content"}], "focus": str}

``text`` holds the reasoning question when the run has one (``is_sentence`` true), else the
focus; ``dialogue`` and ``focus`` carry the multi-turn dialogue for readers that want it
(LISA ignores unknown keys). Polygons are the annotation loop's outlines
(:mod:`prist_builder.annotation.polygons`); holes come out as shapes labelled ``ignore``,
which LISA leaves out of the loss (its format has no background shapes). Non-JPEG images
are re-encoded as JPEG, since LISA looks for ``*.jpg`` only. Only samples with a mask and
an image go out.

Target kinds. LISA reads one mask per file: every ``target`` shape of it, whatever its
number (``utils/data_processing.py`` ``get_mask_from_json``), shared by all the file's
queries. A multi-target sample therefore lists the shapes of all its targets (LISA trains on
their union) and keeps each target apart in Labelme's ``group_id`` (target ``k`` of the
answer order has ``group_id`` ``k``), with ``"target_kind": "multi"`` and ``"targets":
[{"focus", "element_id", "group_id"}]`` (keys LISA ignores); :func:`read_lisa_targets` reads
the masks per target back. An empty-target sample cannot be written: LISA's answer to a
ReasonSeg query is always ``[SEG]`` with a mask, so such a sample is left out with a reason
(:data:`EMPTY_REFUSED`).
"""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from scipy import ndimage

from prist_builder.annotation.masks import decode, polygon_area, rasterize
from prist_builder.annotation.polygons import fit_polygons, mask_to_polygons
from prist_builder.export.images import JPEG_QUALITY, ImageUnavailable, export_image
from prist_builder.export.selection import NO_IMAGE, NO_MASK, Selection, refusal
from prist_builder.export.splits import SPLITS
from prist_builder.records.rle import RLE
from prist_builder.samples import Sample

LISA_SPLITS = {"train": "train", "validation": "val", "test": "test"}
"""Our split names and ReasonSeg's folder names."""

LABELME_VERSION = "5.4.1"
"""The Labelme file version written (the JSON keys are stable across Labelme versions)."""


def mask_polygons(mask: np.ndarray) -> list[tuple[list[list[float]], bool]]:
    """Outlines of a ``(H, W) bool`` mask as ``([[x, y], ...] in pixels, is_hole)`` polygons.

    The outer outlines are :func:`prist_builder.annotation.polygons.fit_polygons` of the mask
    (the project's one mask-to-polygon conversion); holes are the outlines of what filling
    the mask's holes adds.
    """
    outer, _ = fit_polygons(mask)
    holes = ndimage.binary_fill_holes(mask) & ~mask
    return [(points, False) for points in outer] + [(points, True) for points in mask_to_polygons(holes)]


def _jpeg(image: dict[str, Any]) -> bytes:
    data: bytes = image["bytes"]
    if data[:3] == b"\xff\xd8\xff":
        return data
    buffer = io.BytesIO()
    Image.open(io.BytesIO(data)).convert("RGB").save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


EMPTY_REFUSED = refusal("lisa", "an empty-target sample (LISA answers every query with [SEG] and one mask)")
"""Why :func:`write_lisa` leaves an empty-target sample out."""


def _shapes(mask: RLE, group_id: int | None) -> list[dict[str, Any]]:
    return [
        {
            "label": "ignore" if hole else "target",
            "points": points,
            "group_id": group_id,
            "shape_type": "polygon",
            "flags": {},
            "description": "",
        }
        for points, hole in mask_polygons(decode(mask))
    ]


def lisa_json(sample: Sample, name: str) -> dict[str, Any]:
    """The ReasonSeg JSON of one single- or multi-target sample (see the module docstring).

    A multi-target sample lists the shapes of every target, target ``k`` (answer order) with
    ``group_id`` ``k``, and adds ``target_kind`` ``"multi"`` and ``targets`` (``focus``,
    ``element_id``, ``group_id`` each); a single-target file is as it always was.

    Raises:
        ValueError: an empty-target sample, or a sample without one final mask per target.
    """
    assert sample.mask is not None
    if sample.kind == "empty":
        raise ValueError(f"{sample.sample_id}: {EMPTY_REFUSED}")
    question = sample.dialogue.reasoning_question
    out: dict[str, Any] = {
        "text": [question or sample.dialogue.focus],
        "is_sentence": bool(question),
        "shapes": [],
        "imagePath": name,
        "imageHeight": sample.image.height,
        "imageWidth": sample.image.width,
        "imageData": None,
        "version": LABELME_VERSION,
        "flags": {},
        "dialogue": [{"role": t.role, "content": t.content} for t in sample.dialogue.turns],
        "focus": sample.dialogue.focus,
    }
    if sample.kind == "single":
        out["shapes"] = _shapes(sample.mask, None)
        return out
    wanted = sample.dialogue.target_list()
    if len(sample.masks) != len(wanted):
        raise ValueError(f"{sample.sample_id}: {len(sample.masks)} final masks for {len(wanted)} targets")
    out["shapes"] = [shape for k, mask in enumerate(sample.masks) for shape in _shapes(mask, k)]
    out["target_kind"] = "multi"
    out["targets"] = [{"focus": t.focus, "element_id": t.element_id, "group_id": k} for k, t in enumerate(wanted)]
    return out


def read_lisa_targets(anno: dict[str, Any], height: int, width: int) -> list[np.ndarray]:
    """The per-target ``(H, W)`` bool masks of a ReasonSeg JSON written by :func:`lisa_json`,
    in answer order: the shapes of each ``group_id`` (``targets`` order), ``target`` shapes
    filled and ``ignore`` ones cleared, largest first as LISA paints; one mask of every shape
    for a file without ``targets`` (LISA's own files, a single-target export).

    Raises:
        ValueError: a shape without ``label``/``points`` or of a group no target names.
    """
    groups = [t["group_id"] for t in anno.get("targets") or [{"group_id": None}]]
    shapes: dict[Any, list[dict[str, Any]]] = {g: [] for g in groups}
    for index, shape in enumerate(anno.get("shapes", [])):
        if "label" not in shape or "points" not in shape:
            raise ValueError(f"shapes[{index}]: needs label and points")
        if str(shape["label"]).lower() == "flag":
            continue
        group = shape.get("group_id") if len(groups) > 1 else groups[0]
        if group not in shapes:
            raise ValueError(f"shapes[{index}].group_id: {group!r} names no target")
        shapes[group].append(shape)
    out = []
    for group in groups:
        canvas = np.zeros((height, width), dtype=np.uint8)
        painted = sorted(shapes[group], key=lambda s: -abs(polygon_area([tuple(p) for p in s["points"]])))
        for shape in painted:
            value = 2 if "ignore" in str(shape["label"]).lower() else 1
            canvas[rasterize("polygon", [tuple(p) for p in shape["points"]], height, width)] = value
        out.append(canvas == 1)
    return out


def _place(first: Path | None, data: bytes, target: Path) -> Path:
    """Write ``data`` to ``target``, as a hard link to ``first`` (same image) when possible."""
    if first is not None:
        try:
            os.link(first, target)
            return first
        except OSError:
            shutil.copyfile(first, target)
            return first
    target.write_bytes(data)
    return target


def write_lisa(selection: Selection, out: Path) -> dict[str, Path]:
    """Write the ReasonSeg layout under ``out``; returns the folder of each split.

    Samples without a mask or an image, and empty-target samples (:data:`EMPTY_REFUSED`),
    are left out and recorded in ``selection.left_out``.
    """
    folders = {}
    for name in SPLITS:
        folder = out / LISA_SPLITS[name]
        folder.mkdir(parents=True, exist_ok=True)
        folders[name] = folder
        first: dict[str, Path] = {}
        data: dict[str, bytes] = {}
        for sample in selection.splits[name]:
            if sample.mask is None:
                selection.leave_out(sample.sample_id, NO_MASK)
                continue
            if sample.kind == "empty":
                selection.leave_out(sample.sample_id, EMPTY_REFUSED)
                continue
            key = sample.dialogue.image_id
            if key not in data:
                try:
                    data = {key: _jpeg(export_image(sample.image))}
                except ImageUnavailable as exc:
                    selection.leave_out(sample.sample_id, f"{NO_IMAGE}: {exc}")
                    continue
            file_name = f"{sample.sample_id}.jpg"
            first[key] = _place(first.get(key), data[key], folder / file_name)
            (folder / f"{sample.sample_id}.json").write_text(
                json.dumps(lisa_json(sample, file_name), ensure_ascii=False), encoding="utf-8"
            )
    return folders
