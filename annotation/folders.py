"""Agreement between two annotators' Labelme folders of the same images (no run needed).

``prist qa agreement --a DIR --b DIR`` pairs the files by name (``x.json`` in both folders).
Inside a pair of files, shapes are matched so (``--match``):

- ``label`` (default): each label present in either file is one unit, the union of that
  label's shapes; a label only one annotator used scores against an empty mask.
- ``instance``: a label's instances (shapes sharing ``label`` and a non-null ``group_id``
  are one instance; a shape with ``group_id: null`` is its own) are paired by optimal
  assignment on IoU (scipy's ``linear_sum_assignment``); an unmatched instance scores
  against an empty mask.

``__ignore__``/``_background_`` shapes and shapes without area are left out. Each unit is
reported as ``<file stem>:<label>`` (``#k`` appended per instance).

Work-package files of a multi-target sample (``prist.kind`` ``multi``) are scored per target
label (the short form ``target k`` counts as target k's label) and on the union of all their
targets, reported as ``<file stem>:(union)``; those of an empty-target sample
(``prist.kind`` ``empty``) as one unit ``<file stem>:(none)``, the union of whatever was
drawn, so two untouched files agree (IoU 1, kappa 1). Groups come from a CSV
with columns ``sample_id`` (or ``sample``, the file stem) and ``group`` (the
``assignment.csv`` of a work package fits); files not in it are in group ``all``.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from prist_builder.annotation.agreement import match_instances, score_pair
from prist_builder.annotation.defaults import MATCH_MODES
from prist_builder.annotation.labelme import labelme_regions, read_labelme
from prist_builder.annotation.regions import AnnotationError, RegionDraft
from prist_builder.annotation.report import ScoredPair
from prist_builder.annotation.target import PRIST_KEY, TargetSpec, image_size

DEFAULT_GROUP = "all"


@dataclass
class FolderUnit:
    """One scored unit of a pair of files, with both masks (``(H, W) bool``) for overlays."""

    pair: ScoredPair
    mask_a: np.ndarray
    mask_b: np.ndarray
    file_a: Path
    file_b: Path


@dataclass
class FolderResult:
    """Scored units and one-line errors (unpaired or broken files)."""

    units: list[FolderUnit] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def read_groups(path: Path) -> dict[str, str]:
    """``{sample: group}`` from a CSV with ``group`` and ``sample_id`` (or ``sample``) columns.

    Raises:
        AnnotationError: unreadable file or missing columns (names the file and the column).
    """
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as exc:
        raise AnnotationError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if not rows:
        return {}
    key = "sample_id" if "sample_id" in rows[0] else "sample"
    if key not in rows[0] or "group" not in rows[0]:
        raise AnnotationError(f"{path}: needs columns 'sample_id' (or 'sample') and 'group'")
    return {row[key]: row["group"] for row in rows if row.get(key)}


def _instances(path: Path) -> tuple[dict[str, list[RegionDraft]], tuple[int, int], TargetSpec]:
    doc = read_labelme(path)
    height, width = (doc.height, doc.width) if doc.height and doc.width else image_size(doc)
    drafts, problems, _ = labelme_regions(doc, height, width)
    if problems:
        raise AnnotationError(
            problems[0].reason if problems[0].reason.startswith(str(path)) else f"{path}: {problems[0].reason}"
        )
    spec = _file_spec(path)
    by_label: dict[str, list[RegionDraft]] = {}
    for draft in drafts:
        if not draft.ignore:
            found = spec.match(draft.label) if spec.kind == "multi" else None
            by_label.setdefault(spec.labels[found] if found is not None else draft.label, []).append(draft)
    return by_label, (height, width), spec


def _file_spec(path: Path) -> TargetSpec:
    """The :class:`TargetSpec` a work-package file declares in its ``prist`` block (single if none)."""
    try:
        meta = json.loads(Path(path).read_text(encoding="utf-8")).get(PRIST_KEY)
    except (OSError, ValueError, AttributeError):
        return TargetSpec()
    if not isinstance(meta, dict) or meta.get("kind") not in ("multi", "empty"):
        return TargetSpec()
    targets = meta.get("targets") if isinstance(meta.get("targets"), list) else []
    foci = tuple(str(t.get("focus", "")) for t in targets if isinstance(t, dict))
    return TargetSpec(meta["kind"], foci)


def compare_folders(
    folder_a: Path,
    folder_b: Path,
    groups: dict[str, str] | None = None,
    match: str = "label",
    iou_min: float = 0.0,
    kappa_min: float = 0.0,
    names: tuple[str, str] = ("A", "B"),
) -> FolderResult:
    """Score every pair of same-named Labelme files of two folders (rules in the module docstring).

    Raises:
        ValueError: unknown ``match`` mode.
        NotADirectoryError: a folder does not exist.
    """
    if match not in MATCH_MODES:
        raise ValueError(f"--match must be one of {', '.join(MATCH_MODES)}, got {match!r}")
    for folder in (folder_a, folder_b):
        if not Path(folder).is_dir():
            raise NotADirectoryError(f"{folder}: not a folder")
    groups = groups or {}
    files_a = {p.name: p for p in sorted(Path(folder_a).glob("*.json"))}
    files_b = {p.name: p for p in sorted(Path(folder_b).glob("*.json"))}
    result = FolderResult()
    for name in sorted(set(files_a) ^ set(files_b)):
        result.errors.append(f"{files_a.get(name) or files_b.get(name)}: no file of that name in the other folder")
    for name in sorted(set(files_a) & set(files_b)):
        path_a, path_b = files_a[name], files_b[name]
        try:
            (labels_a, size_a, spec), (labels_b, size_b, _) = _instances(path_a), _instances(path_b)
        except AnnotationError as exc:
            result.errors.append(str(exc))
            continue
        if size_a != size_b:
            result.errors.append(
                f"{path_b}: image is {size_b[0]}x{size_b[1]} but {path_a} says {size_a[0]}x{size_a[1]}"
            )
            continue
        stem = Path(name).stem
        group = groups.get(stem, DEFAULT_GROUP)
        empty = np.zeros(size_a, dtype=bool)
        every_a = [d.mask for drafts in labels_a.values() for d in drafts]
        every_b = [d.mask for drafts in labels_b.values() for d in drafts]
        whole = [
            (f"{stem}:({'none' if spec.kind == 'empty' else 'union'})", _union(every_a, empty), _union(every_b, empty))
        ]
        for label in sorted(set(labels_a) | set(labels_b)) if spec.kind != "empty" else []:
            masks_a = [d.mask for d in labels_a.get(label, [])]
            masks_b = [d.mask for d in labels_b.get(label, [])]
            if match == "label":
                units = [(f"{stem}:{label}", _union(masks_a, empty), _union(masks_b, empty))]
            else:
                units = [
                    (
                        f"{stem}:{label}#{k}",
                        masks_a[m.a] if m.a is not None else empty,
                        masks_b[m.b] if m.b is not None else empty,
                    )
                    for k, m in enumerate(match_instances(masks_a, masks_b))
                ]
            _score(result, units, group, names, (iou_min, kappa_min), (path_a, path_b))
        if spec.kind != "single":
            _score(result, whole, group, names, (iou_min, kappa_min), (path_a, path_b))
    return result


def _score(
    result: FolderResult,
    units: list[tuple[str, np.ndarray, np.ndarray]],
    group: str,
    names: tuple[str, str],
    thresholds: tuple[float, float],
    paths: tuple[Path, Path],
) -> None:
    """Score ``(unit id, mask A, mask B)`` units into ``result`` (flagged under a threshold)."""
    for unit_id, mask_a, mask_b in units:
        score = score_pair(mask_a, mask_b)
        flagged = score.iou < thresholds[0] or score.kappa < thresholds[1]
        pair = ScoredPair(unit_id, group, names[0], names[1], score, flagged)
        result.units.append(FolderUnit(pair, mask_a, mask_b, *paths))


def _union(masks: list[np.ndarray], empty: np.ndarray) -> np.ndarray:
    out = empty.copy()
    for mask in masks:
        out |= mask
    return out
