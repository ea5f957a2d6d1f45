"""The adjudication queue: a Labelme package showing both annotators' outlines, and overlays.

For each flagged sample (IoU or kappa under its threshold) ``prist qa agreement`` writes:

- ``OUT/adjudication/<sample_id>.json``: a Labelme file (image in ``OUT/adjudication/images``)
  with annotator A's outline labelled ``ref:A <name>`` and B's labelled ``ref:B <name>``
  (two labels, so Labelme draws them in two colours). Reference outlines never count as the
  answer: the adjudicator relabels the better one to the target (or draws a new one), then
  ``prist annotate resolve RUN --labelme OUT/adjudication --annotator NAME`` makes it final.
- ``OUT/overlays/<sample_id>.png``: the photo with A in red, B in blue (overlap purple).

A multi-target sample's reference outlines carry the target's label too
(``ref:A alice target 2: <focus>``): the adjudicator relabels each target's better outline to
``target k: <focus>`` (or ``target k``), and every target needs one. An empty-target
sample's file is answered "nothing there" by leaving only ``ref:`` outlines (or none).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from prist_builder.annotation.polygons import fit_polygons
from prist_builder.annotation.target import REFERENCE_PREFIX, target_label
from prist_builder.annotation.workpackage import (
    IMAGES_DIR,
    LABELME_VERSION,
    SampleLike,
    dialogue_text,
    kind_meta,
    labelme_document,
    shape,
    write_image,
    write_json,
)
from prist_builder.records import ImageRecord

COLOUR_A = (230, 25, 75)
"""RGB of annotator A's mask in overlays (red)."""
COLOUR_B = (0, 130, 200)
"""RGB of annotator B's mask in overlays (blue)."""
OVERLAY_ALPHA = 0.45
"""Opacity of each mask over the photo."""

ADJUDICATION_README = """# Adjudication queue

Each file shows two annotators' outlines of the same target: `ref:A ...` and `ref:B ...`.
Outlines labelled `ref:` are never the answer. Read the dialogue (the `prist` block), then
either relabel the better outline to the target (Edit Label, any label not starting with
`ref:`) and correct it, or draw a new one. Delete nothing you are unsure of: only shapes
whose label does not start with `ref:` count. Save in place, then run
`prist annotate resolve RUN --labelme <this folder> --annotator <your-name>`.
"""

ADJUDICATION_KINDS_README = """
Several targets (`"kind": "multi"`): each outline's label ends with its target, e.g.
`ref:B bob target 2: ...`. Relabel the better outline of every target to that target's own
label (`target 2: ...`, or just `target 2`); every target needs one.
No target (`"kind": "empty"`): leave only `ref:` outlines (or delete them) if the asked-for
thing is not in the image; relabel or draw one if it is (the sample then goes to review).
"""


def reference_label(role: str, annotator: str) -> str:
    """Label of a reference outline, e.g. ``ref:A alice``."""
    return f"{REFERENCE_PREFIX}{role} {annotator}"


def overlay(photo: Image.Image, a: np.ndarray, b: np.ndarray) -> Image.Image:
    """The photo with mask ``a`` tinted red and ``b`` blue.

    Args:
        photo: the image, any mode (converted to RGB).
        a, b: ``(H, W) bool`` masks of the photo's size.
    """
    pixels = np.asarray(photo.convert("RGB"), dtype=np.float32)
    for mask, colour in ((a, COLOUR_A), (b, COLOUR_B)):
        pixels[mask] = (1 - OVERLAY_ALPHA) * pixels[mask] + OVERLAY_ALPHA * np.array(colour, dtype=np.float32)
    return Image.fromarray(pixels.round().astype(np.uint8))


def write_folder_queue(
    out: Path,
    flagged: list[tuple[Path, str, np.ndarray, np.ndarray]],
    names: tuple[str, str],
    image: Callable[[Path], tuple[str, bytes]],
) -> int:
    """Adjudication Labelme files for the folder form: one per image with a flagged label.

    Args:
        out: the ``--out`` folder; writes ``out/adjudication/<file name>`` and its ``images/``.
        flagged: ``(file of annotator A, label, mask_a, mask_b)`` per flagged unit, ``(H, W) bool``.
        names: the two annotators' names (their folder names).
        image: A's file -> (image file name, encoded bytes).

    Returns:
        the number of files written. The outlines are labelled ``ref:A <name> <label>`` and
        ``ref:B <name> <label>``; the adjudicator relabels the right one to the label.
    """
    queue = Path(out) / "adjudication"
    by_file: dict[Path, list[tuple[str, np.ndarray, np.ndarray]]] = {}
    for path, label, mask_a, mask_b in flagged:
        by_file.setdefault(path, []).append((label, mask_a, mask_b))
    for path, units in by_file.items():
        name, data = image(path)
        target = queue / IMAGES_DIR / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        shapes = []
        for label, mask_a, mask_b in units:
            shapes += [shape(f"{reference_label('A', names[0])} {label}", p) for p in fit_polygons(mask_a)[0]]
            shapes += [shape(f"{reference_label('B', names[1])} {label}", p) for p in fit_polygons(mask_b)[0]]
        height, width = units[0][1].shape
        document = {
            "version": LABELME_VERSION,
            "flags": {},
            "shapes": shapes,
            "imagePath": f"{IMAGES_DIR}/{name}",
            "imageData": None,
            "imageHeight": height,
            "imageWidth": width,
            "prist": {"labels": [u[0] for u in units], "annotators": list(names)},
        }
        write_json(queue / path.name, document)
    if by_file:
        (queue / "README.md").write_text(ADJUDICATION_README, encoding="utf-8")
    return len(by_file)


def write_queue(
    out: Path,
    flagged: list[tuple[SampleLike, str, list[np.ndarray], str, list[np.ndarray]]],
    load_image: Callable[[ImageRecord], tuple[bytes, Image.Image]],
) -> int:
    """Write the adjudication package and the overlays of flagged samples under ``out``.

    Args:
        out: the ``--out`` folder; writes ``out/adjudication`` and ``out/overlays``.
        flagged: ``(sample, annotator_a, masks_a, annotator_b, masks_b)`` per flagged sample;
            the masks ``(H, W) bool``, one per target in answer order for a multi-target
            sample, else one (the target's, or what was drawn on an empty-target sample).
        load_image: encoded bytes and decoded (EXIF-corrected) pixels of a run image.

    Returns:
        the number of samples queued.
    """
    queue, overlays = Path(out) / "adjudication", Path(out) / "overlays"
    queue.mkdir(parents=True, exist_ok=True)
    overlays.mkdir(parents=True, exist_ok=True)
    special = any(item[0].dialogue.kind != "single" for item in flagged)
    (queue / "README.md").write_text(ADJUDICATION_README + (ADJUDICATION_KINDS_README if special else ""), "utf-8")
    for sample, name_a, masks_a, name_b, masks_b in flagged:
        dialogue, image = sample.dialogue, sample.image
        data, photo = load_image(image)
        file_name = write_image(queue, image, lambda _, data=data: data)
        text = dialogue_text(dialogue)
        multi = dialogue.kind == "multi" and len(masks_a) == len(masks_b) == len(dialogue.targets)
        shapes = []
        for role, name, masks in (("A", name_a, masks_a), ("B", name_b, masks_b)):
            for k, mask in enumerate(masks, start=1):
                label = reference_label(role, name)
                if multi:
                    label = f"{label} {target_label(k, dialogue.targets[k - 1].focus)}"
                shapes += [shape(label, points, text if role == "A" else "") for points in fit_polygons(mask)[0]]
        meta = {
            "sample_id": dialogue.sample_id,
            "image_id": image.image_id,
            "target": dialogue.focus,
            "dialogue": text,
            "annotators": [name_a, name_b],
            **kind_meta(dialogue),
        }
        write_json(
            queue / f"{dialogue.sample_id}.json", labelme_document(image, f"{IMAGES_DIR}/{file_name}", shapes, meta)
        )
        overlay(photo, _union(masks_a), _union(masks_b)).save(overlays / f"{dialogue.sample_id}.png")
    return len(flagged)


def _union(masks: list[np.ndarray]) -> np.ndarray:
    """Pixel-wise OR of one or more ``(H, W) bool`` masks."""
    return np.logical_or.reduce(masks) if len(masks) > 1 else masks[0]
