"""Write Labelme work packages: one file per (sample, annotator), ready to open in Labelme.

Layout of ``prist annotate export RUN --out DIR``::

    DIR/README.md          what to do, in a few lines
    DIR/assignment.csv     sample_id, image_id, group, annotator, role (A or B)
    DIR/images/<image_id>.<ext>      each image once (EXIF kept: Labelme applies it)
    DIR/<annotator>/<sample_id>.json Labelme file, imagePath "../images/<image_id>.<ext>"

Each Labelme file names the target (the dialogue's focus) and carries the dialogue in the
first shape's ``description`` and under the top-level ``prist`` key (which Labelme keeps on
save) with the sample id. When the run has a mask for the sample (a grounded region or a
SAM pre-label) it is pre-filled as editable polygons labelled with the focus; otherwise the
file has no shapes and the annotator draws the target. A re-export into the same folder
writes only the files that are missing: an annotator's saved work is never overwritten.

A multi-target sample's file names each target by its own label, ``target k: <focus>`` in the
final answer's order (:func:`~prist_builder.annotation.target.target_label`), lists them under
``prist.targets`` (``number``, ``label``, ``element_id``, ``focus``) with ``prist.kind``
``multi``, and pre-fills each grounded target's outline under its label. An empty-target
sample's file (``prist.kind`` ``empty``, ``prist.target`` the asked-for thing) has no shapes:
saved untouched it means "nothing there". Single-target files are written as before.
"""

from __future__ import annotations

import csv
import json
import mimetypes
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from prist_builder.annotation.assignment import Assignment
from prist_builder.annotation.masks import decode
from prist_builder.annotation.polygons import fit_polygons
from prist_builder.annotation.target import PRIST_KEY, target_label
from prist_builder.records import DialogueRecord, ImageRecord

LABELME_VERSION = "5.4.1"
"""Labelme file-format version written (read by labelme 5.4 up to 6.x)."""
ASSIGNMENT_CSV = "assignment.csv"
IMAGES_DIR = "images"


class SampleLike(Protocol):
    """What the package writer needs of a sample (``prist_builder.samples.Sample`` fits)."""

    dialogue: DialogueRecord
    image: ImageRecord


@dataclass
class PackageSummary:
    """What an export wrote.

    Attributes:
        files: Labelme files written (one per sample and annotator).
        prefilled: samples whose files carry a pre-filled outline.
        per_annotator: files per annotator (written or kept).
        kept: files already in the package, left as they are (a re-export never overwrites).
    """

    files: int
    prefilled: int
    per_annotator: dict[str, int]
    kept: int = 0


def dialogue_text(dialogue: DialogueRecord) -> str:
    """The dialogue as plain text, one ``User:``/``Assistant:`` line per message."""
    return "\n".join(f"{'User' if t.role == 'user' else 'Assistant'}: {t.content}" for t in dialogue.turns)


def image_name(image: ImageRecord) -> str:
    """File name of an image inside a package: ``<image_id>`` plus the extension of its MIME type."""
    suffix = mimetypes.guess_extension(image.mime) or Path(image.path).suffix or ".img"
    return f"{image.image_id}{'.jpg' if suffix == '.jpe' else suffix}"


def shape(label: str, points: list[list[float]], description: str = "") -> dict[str, Any]:
    """One Labelme polygon shape dict."""
    return {
        "label": label,
        "points": points,
        "group_id": None,
        "description": description,
        "shape_type": "polygon",
        "flags": {},
        "mask": None,
    }


def labelme_document(
    image: ImageRecord, image_path: str, shapes: list[dict[str, Any]], meta: dict[str, Any]
) -> dict[str, Any]:
    """A Labelme JSON document for an image of the run (``imageData`` left out)."""
    return {
        "version": LABELME_VERSION,
        "flags": {},
        "shapes": shapes,
        "imagePath": image_path,
        "imageData": None,
        "imageHeight": image.height,
        "imageWidth": image.width,
        PRIST_KEY: meta,
    }


def write_image(out: Path, image: ImageRecord, load_bytes: Callable[[ImageRecord], bytes]) -> str:
    """Copy an image into ``out/images`` once; returns its name there."""
    name = image_name(image)
    target = out / IMAGES_DIR / name
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        partial.write_bytes(load_bytes(image))
        partial.replace(target)
    return name


def write_json(path: Path, document: dict[str, Any]) -> None:
    """Write JSON atomically (temporary file, then rename): a kill never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(document, ensure_ascii=False, indent=2), encoding="utf-8")
    partial.replace(path)


def write_package(
    out: Path,
    samples: Iterable[SampleLike],
    assignments: dict[str, Assignment],
    prefill: dict[str, np.ndarray],
    load_bytes: Callable[[ImageRecord], bytes],
    target_prefill: dict[str, list[np.ndarray | None]] | None = None,
) -> PackageSummary:
    """Write the work package of every assigned sample under ``out`` (layout in the module docstring).

    Args:
        out: package folder (created).
        samples: the run's samples.
        assignments: sample id -> its assignment (samples without one are left out).
        prefill: sample id -> ``(H, W) bool`` mask to pre-fill as polygons.
        load_bytes: the encoded bytes of a run image.
        target_prefill: multi-target sample id -> one ``(H, W) bool`` mask (or ``None``) per
            target in answer order, pre-filled under each target's label (default: the
            targets' grounded masks).

    Returns:
        counts of what was written.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[Sequence[str]] = []
    per_annotator: dict[str, int] = {}
    files = prefilled = kept = 0
    special = False
    for sample in samples:
        dialogue, image = sample.dialogue, sample.image
        assignment = assignments.get(dialogue.sample_id)
        if assignment is None:
            continue
        name = write_image(out, image, load_bytes)
        text = dialogue_text(dialogue)
        if dialogue.kind == "single":
            outlines = fit_polygons(prefill[dialogue.sample_id])[0] if dialogue.sample_id in prefill else []
            shapes = [shape(dialogue.focus, points, text if i == 0 else "") for i, points in enumerate(outlines)]
        else:
            shapes = target_shapes(dialogue, text, (target_prefill or {}).get(dialogue.sample_id))
            special = True
        prefilled += bool(shapes)
        for role, annotator in zip("AB", assignment.annotators, strict=False):
            meta = {
                "sample_id": dialogue.sample_id,
                "image_id": image.image_id,
                "annotator": annotator,
                "group": assignment.group,
                "target": dialogue.focus,
                "dialogue": text,
                **kind_meta(dialogue),
            }
            target = out / annotator / f"{dialogue.sample_id}.json"
            if target.exists():  # never overwrite an annotator's (possibly edited) file
                kept += 1
            else:
                write_json(target, labelme_document(image, f"../{IMAGES_DIR}/{name}", shapes, meta))
                files += 1
            rows.append((dialogue.sample_id, image.image_id, assignment.group, annotator, role))
            per_annotator[annotator] = per_annotator.get(annotator, 0) + 1
    with open(out / ASSIGNMENT_CSV, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(("sample_id", "image_id", "group", "annotator", "role"))
        writer.writerows(rows)
    (out / "README.md").write_text(README + (KINDS_README if special else ""), encoding="utf-8")
    return PackageSummary(files, prefilled, per_annotator, kept)


def kind_meta(dialogue: DialogueRecord) -> dict[str, Any]:
    """The ``prist`` block's extra keys for a multi- or empty-target sample (``{}`` for single).

    ``kind``; for multi, ``targets``: one ``{number, label, element_id, focus}`` per target in
    answer order (``number`` 1-based, ``label`` the Labelme label to use)."""
    if dialogue.kind == "single":
        return {}
    targets = [
        {"number": k, "label": target_label(k, t.focus), "element_id": t.element_id, "focus": t.focus}
        for k, t in enumerate(dialogue.targets, start=1)
    ]
    return {"kind": dialogue.kind, "targets": targets}


def target_shapes(
    dialogue: DialogueRecord, text: str, masks: list[np.ndarray | None] | None = None
) -> list[dict[str, Any]]:
    """Pre-filled polygons of a multi-target sample, each under its target's label: ``masks``
    (``(H, W) bool`` or ``None`` per target, answer order), by default the grounded targets'
    masks; the first polygon carries the dialogue ``text`` as its description. ``[]`` for empty."""
    if masks is None:
        masks = [decode(t.mask) if t.mask is not None else None for t in dialogue.targets]
    shapes: list[dict[str, Any]] = []
    for k, (target, mask) in enumerate(zip(dialogue.targets, masks, strict=False), start=1):
        if mask is None:
            continue
        for points in fit_polygons(mask)[0]:
            shapes.append(shape(target_label(k, target.focus), points, "" if shapes else text))
    return shapes


README = """# Annotation work package

Each folder named after an annotator holds one Labelme file per sample for that annotator
(`assignment.csv` lists them, with the group and whether you are annotator A or B).

1. Install Labelme (`pip install labelme`) and open your folder: `labelme <your-name>/`.
2. Read the dialogue (the `prist` block of the file, and the first outline's description):
   its last answer names the target. Outline only that target, as tightly as you can.
3. If an outline is already there, correct it: move points, add a polygon for a part it
   missed, delete a wrong one. Any label works; every polygon, rectangle, circle or mask
   you leave is part of the target (except labels `__ignore__` and `ref:...`).
4. If the target is not in the image, delete every outline and save.
5. Save (Ctrl+S) each file in place, without renaming it, and send the folder back.

Import: `prist annotate import RUN --labelme <your-name>/ --annotator <your-name>`.
"""

KINDS_README = """
## Several targets, or none

- Several targets (`"kind": "multi"` in the `prist` block): the last answer names each target
  in turn, and each has its own label, `target 1: ...`, `target 2: ...` (listed under
  `prist.targets`; Labelme gives each label its own colour). Outline every target under its
  own label; typing just `target 2` also works. Any other label (except `__ignore__` and
  `ref:...`) is refused on import, so check the number before you save.
- No target (`"kind": "empty"`): the user asks for something the image should not hold (named
  in `prist.target`). If it really is not there, save the file untouched (no outline). If you
  do find it, outline it: the sample will be reviewed.
"""
