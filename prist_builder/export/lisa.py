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

from prist_builder.annotation.masks import decode
from prist_builder.annotation.polygons import fit_polygons, mask_to_polygons
from prist_builder.export.images import JPEG_QUALITY, ImageUnavailable, export_image
from prist_builder.export.selection import NO_IMAGE, NO_MASK, Selection
from prist_builder.export.splits import SPLITS
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


def lisa_json(sample: Sample, name: str) -> dict[str, Any]:
    """The ReasonSeg JSON of one sample (see the module docstring)."""
    assert sample.mask is not None
    question = sample.dialogue.reasoning_question
    shapes = [
        {
            "label": "ignore" if hole else "target",
            "points": points,
            "group_id": None,
            "shape_type": "polygon",
            "flags": {},
            "description": "",
        }
        for points, hole in mask_polygons(decode(sample.mask))
    ]
    return {
        "text": [question or sample.dialogue.focus],
        "is_sentence": bool(question),
        "shapes": shapes,
        "imagePath": name,
        "imageHeight": sample.image.height,
        "imageWidth": sample.image.width,
        "imageData": None,
        "version": LABELME_VERSION,
        "flags": {},
        "dialogue": [{"role": t.role, "content": t.content} for t in sample.dialogue.turns],
        "focus": sample.dialogue.focus,
    }


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

    Samples without a mask or an image are left out and recorded in ``selection.left_out``.
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
