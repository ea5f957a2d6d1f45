"""``prist import prist-json``: the authors' released split as a run folder.

The released file (``PRIST/test.json``) is a JSON list of ``{"img_id": "<file name>",
"dialogue": [{"from": "human"|"gpt", "value": str}, ...], "focus": str}``, with no
images and no masks. Each entry becomes one :class:`~prist_builder.records.DialogueRecord`
(``provider="prist-json"``) whose turn texts are byte-identical to the file's; a final
answer in the released form (``"Certainly, [SEG]."``) is kept as it is with
``form="released"``. Each image becomes one :class:`~prist_builder.records.ElementsRecord`
with one element per dialogue (named after its focus); an image absent from ``--images``
is kept as an absent image (``ImageRecord.absent``) and counted. A mask
``MASKS/<sample_id>.png`` (non-zero pixels are the target, same size as the image) grounds
the element as a source region, as a Labelme build would.

Target kinds (the released file has single-target samples only; the mapping below is what
``prist export --format prist-json`` writes, so both round-trip): a final answer with two or
more ``[OBJ]{focus}[SEG]`` imports as a multi-target sample, one element per target
(``e<n>-<k>``, named after its ``[OBJ]`` focus) and its masks ``MASKS/<sample_id>/<k>.png``
(``k`` in answer order; all or none); an entry with ``"target_kind": "empty"`` (its final
answer holds neither ``[SEG]`` nor ``[OBJ]``) imports as an empty-target sample (``focus`` =
the asked-for thing the image does not hold, ``target_element_id`` ``none``, no element, no
mask). Without that key an answer lacking ``[SEG]`` is a broken entry and is rejected, as is
a released-form answer with several ``[SEG]`` and no ``[OBJ]`` (it names no target), or a
``target_kind`` the answer contradicts.

Sample ids are ``<image_id>-<n>``: ``n`` counts the image's dialogues in file order from 0.
Records are written through :class:`~prist_builder.pipeline.store.RunStore` (journalled,
crash-safe); a re-run skips what was already imported. Entries that cannot be read go to
``rejects.jsonl`` with their reason and the rest goes on.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError
from pydantic import ValidationError

from prist_builder import appendlog
from prist_builder.annotation.masks import area, encode, rle_bbox
from prist_builder.interop.released_entries import (
    PROVIDER,
    answer_kind,
    entry_dialogue,
    entry_problem,
    turn_bounds,
)
from prist_builder.pipeline.store import MANIFEST_FILE, REJECTS_FILE, RunStore, write_json_atomic
from prist_builder.records import DialogueRecord, Element, ElementsRecord, ImageRecord, Reject, SourceRegion
from prist_builder.sources import InputRejected, decode_image

MASK_SUFFIX = ".png"

SCENE_ELEMENT = "scene"
"""Element id given to an image whose every entry is empty-target (an elements record needs one)."""
SCENE_DESCRIPTION = (
    "The whole picture (the released format lists no elements; it stands in for an image asked only"
    " about things it does not hold)."
)


class ImportError_(ValueError):
    """The file cannot be imported at all (not JSON, not a list): one line naming the file."""


@dataclass
class ImportSummary:
    """What an import did.

    Attributes:
        samples: dialogues in the run after the import.
        images: distinct images.
        images_absent: images not found under ``--images`` (kept without pixels).
        samples_without_image: dialogues about those images.
        masks: samples that got a mask from ``--masks``.
        rejected: entry index -> reason, for entries set aside (also in ``rejects.jsonl``).
        warnings: entry index -> reason, for imported entries whose mask could not be used.
        forms: dialogue form -> count (``released`` / ``prist``).
    """

    samples: int = 0
    images: int = 0
    images_absent: int = 0
    samples_without_image: int = 0
    masks: int = 0
    rejected: dict[int, str] = field(default_factory=dict)
    warnings: dict[int, str] = field(default_factory=dict)
    forms: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for ``manifest.json`` and ``--json``."""
        return {
            **self.__dict__,
            "rejected": {str(k): v for k, v in self.rejected.items()},
            "warnings": {str(k): v for k, v in self.warnings.items()},
        }


def _image_ids(names: list[str]) -> dict[str, str]:
    """img_id -> image_id: the file stem, or the whole name with dots replaced when stems collide."""
    stems = Counter(Path(n).stem for n in names)
    return {n: Path(n).stem if stems[Path(n).stem] == 1 else n.replace(".", "_") for n in names}


def _image_record(
    image_id: str, name: str, images: Path | None, fallback: Path
) -> tuple[ImageRecord, tuple[int, int] | None]:
    """The image record of ``name`` and its ``(H, W)`` in pixels, or an absent record and ``None``."""
    path = (images / name) if images is not None else None
    if path is not None and path.is_file():
        data = path.read_bytes()
        try:
            pixels, mime = decode_image(data, str(path))
        except InputRejected:
            pixels = None
        if pixels is not None:
            width, height = pixels.size
            record = ImageRecord(
                image_id=image_id,
                path=str(path.absolute()),
                width=width,
                height=height,
                sha256=hashlib.sha256(data).hexdigest(),
                mime=mime,
                source=PROVIDER,
            )
            return record, (height, width)
    where = (images or fallback) / name
    mime = Image.MIME.get(Image.registered_extensions().get(Path(name).suffix.lower(), ""), "application/octet-stream")
    record = ImageRecord(
        image_id=image_id, path=str(where.absolute()), width=0, height=0, sha256="", mime=mime, source=PROVIDER
    )
    return record, None


def _read_mask(path: Path, shape: tuple[int, int]) -> np.ndarray:
    try:
        with Image.open(path) as image:
            mask = np.asarray(image.convert("L")) > 0
    except (OSError, UnidentifiedImageError) as exc:
        raise ValueError(f"{path}: unreadable mask ({exc})") from exc
    if mask.shape != shape:
        raise ValueError(f"{path}: mask is {mask.shape[0]}x{mask.shape[1]}, the image {shape[0]}x{shape[1]}")
    if not mask.any():
        raise ValueError(f"{path}: mask is empty")
    return mask


def _region(mask_file: Path, shape: tuple[int, int], region_id: str, label: str) -> SourceRegion:
    """A source region of a mask file. Raises ``ValueError`` (naming the file) when unusable."""
    rle = encode(_read_mask(mask_file, shape))
    return SourceRegion(
        region_id=region_id,
        label=label,
        shape_types=["mask"],
        source=str(mask_file),
        mask=rle,
        area=area(rle),
        bbox=rle_bbox(rle),
    )


def _mask_files(masks: Path | None, sample_id: str, kind: str, count: int) -> list[Path]:
    """The mask files of a sample: ``MASKS/<sample_id>.png`` for one target,
    ``MASKS/<sample_id>/<k>.png`` (``k`` = 0.. in answer order) for a multi-target one; ``[]``
    when absent (an empty-target sample has none)."""
    if masks is None or kind == "empty":
        return []
    if kind == "single":
        path = masks / f"{sample_id}{MASK_SUFFIX}"
        return [path] if path.is_file() else []
    return [masks / sample_id / f"{k}{MASK_SUFFIX}" for k in range(count)]


def import_prist_json(file: Path, run: Path, images: Path | None = None, masks: Path | None = None) -> ImportSummary:
    """Import the authors' released JSON split into the run folder ``run``.

    Args:
        file: the released JSON file (e.g. ``PRIST/test.json``).
        run: the run folder to write (created; a re-run continues it).
        images: folder holding the images by ``img_id``; ``None`` when there are none.
        masks: folder of ``<sample_id>.png`` target masks (non-zero = target), optional.

    Raises:
        ImportError_: the file is not JSON or not a list.
        prist_builder.pipeline.store.RunLockedError: another process writes ``run``.
    """
    file, run = Path(file), Path(run)
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ImportError_(f"{file}: cannot read JSON ({exc})") from exc
    if not isinstance(raw, list):
        raise ImportError_(f"{file}: top level is {type(raw).__name__}; expected a list of dialogues")
    summary = ImportSummary()
    good: list[tuple[int, dict]] = []
    problems: dict[int, str] = {}
    for index, entry in enumerate(raw):
        problem = entry_problem(entry)
        if problem:
            problems[index] = f"{file}: entry [{index}]: {problem}"
        else:
            good.append((index, entry))
    bounds = turn_bounds([e for _, e in good])
    by_image: dict[str, list[tuple[int, dict]]] = {}
    for index, entry in good:
        by_image.setdefault(entry["img_id"], []).append((index, entry))
    ids = _image_ids(list(by_image))
    sample_of: dict[int, tuple[str, list[str], list[SourceRegion]]] = {}
    logged: set[int] = set()
    with RunStore(run) as store:
        records: dict[str, ElementsRecord] = {}
        for name, items in by_image.items():
            image_id = ids[name]
            image, shape = _image_record(image_id, name, images, file.parent)
            elements, regions = [], []
            for n, (index, entry) in enumerate(items):
                sample_id = f"{image_id}-{n}"
                kind, foci = answer_kind(entry)
                ids_ = [f"e{n}"] if kind == "single" else [f"e{n}-{k}" for k in range(len(foci))]
                files = _mask_files(masks, sample_id, kind, len(foci))
                found: list[SourceRegion] = []
                if kind == "empty" and masks is not None and (masks / f"{sample_id}{MASK_SUFFIX}").is_file():
                    problems.setdefault(
                        index, f"{masks / sample_id}{MASK_SUFFIX}: an empty-target entry; mask not used"
                    )
                elif any(f.is_file() for f in files):
                    missing = [f for f in files if not f.is_file()]
                    if shape is None:
                        problems.setdefault(index, f"{files[0]}: the image {name} is absent; mask not used")
                    elif missing:
                        problems.setdefault(index, f"{missing[0]}: no such file; the sample's masks not used")
                    else:
                        try:
                            found = [
                                _region(f, shape, f"r{n}" if kind == "single" else f"r{n}-{k}", focus)
                                for k, (f, focus) in enumerate(zip(files, foci, strict=True))
                            ]
                        except ValueError as exc:
                            problems.setdefault(index, str(exc))
                regions.extend(found)
                for k, (element_id, focus) in enumerate(zip(ids_, foci, strict=True)):
                    region_id = found[k].region_id if found else None
                    elements.append(Element(element_id=element_id, name=focus, description=focus, region_id=region_id))
                sample_of[index] = (sample_id, ids_, found)
            if not elements:  # every entry of the image is empty-target: the record needs one element
                elements.append(Element(element_id=SCENE_ELEMENT, name="the scene", description=SCENE_DESCRIPTION))
            image = image.model_copy(update={"regions": regions})
            records[image_id] = ElementsRecord(image_id=image_id, provider=PROVIDER, image=image, elements=elements)
            if not store.is_done("elements", image_id):
                store.commit("elements", image_id, [records[image_id]], [])
        for index, entry in good:
            sample_id, element_ids, found = sample_of[index]
            if store.is_done("dialogues", sample_id):
                continue
            record = records[ids[entry["img_id"]]]
            try:
                dialogue = entry_dialogue(entry, sample_id, record.image_id, element_ids, found or None, bounds)
            except ValidationError as exc:
                reason = f"{file}: entry [{index}]: {exc.errors()[0]['msg']}"
                problems[index] = reason
                logged.add(index)
                store.commit(
                    "dialogues",
                    sample_id,
                    [],
                    [
                        Reject(
                            input_id=sample_id,
                            image_id=record.image_id,
                            step="dialogues",
                            reason=reason,
                            source_file=str(file),
                            raw=entry,
                        )
                    ],
                )
                continue
            store.commit("dialogues", sample_id, [dialogue], [])
        for index, reason in problems.items():
            if index in logged:
                continue
            key = f"#entry-{index}" if index not in sample_of else f"#mask-{index}"
            if not store.is_done("dialogues", key):
                store.commit(
                    "dialogues",
                    key,
                    [],
                    [Reject(input_id=key, step="dialogues", reason=reason, source_file=str(file), raw=raw[index])],
                )
        dialogues = list(store.records("dialogues", DialogueRecord)) if (run / "dialogues.jsonl").exists() else []
    for name in ("trees.jsonl", REJECTS_FILE):
        appendlog.touch(run / name)
    imported = {d.sample_id for d in dialogues}
    summary.rejected = {i: r for i, r in sorted(problems.items()) if sample_of.get(i, ("",))[0] not in imported}
    summary.warnings = {i: r for i, r in sorted(problems.items()) if i not in summary.rejected}
    summary.samples = len(dialogues)
    summary.images = len(records)
    absent = {r.image_id for r in records.values() if r.image.absent}
    summary.images_absent = len(absent)
    summary.samples_without_image = sum(1 for d in dialogues if d.image_id in absent)
    summary.masks = sum(1 for d in dialogues if d.mask is not None)
    summary.forms = dict(Counter(d.form for d in dialogues))
    _write_manifest(run, file, images, masks, bounds, summary)
    return summary


def _write_manifest(
    run: Path, file: Path, images: Path | None, masks: Path | None, bounds: dict[str, int], summary: ImportSummary
) -> None:
    data = file.read_bytes()
    write_json_atomic(
        run / MANIFEST_FILE,
        {
            "config": {
                "provider": PROVIDER,
                "seed": 0,
                "images": str(images.absolute()) if images else None,
                "labelme": None,
                "coco": None,
                **bounds,
                "provider_options": {},
            },
            "provider": {"name": PROVIDER},
            "import": {
                "format": "prist-json",
                "file": str(file.absolute()),
                "sha256": hashlib.sha256(data).hexdigest(),
                "masks": str(masks.absolute()) if masks else None,
                **summary.as_dict(),
            },
            "counts": {"images": summary.images, "dialogues": summary.samples, "rejects": len(summary.rejected)},
        },
    )
