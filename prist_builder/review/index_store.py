"""The review index kept beside the run (``RUN/.review-index.json``): built once, reused while
the run is unchanged, rebuilt when one of its files changes.

It holds what the list page filters on (one :class:`~prist_builder.review.index.Row` per
sample) and where each sample's records start in the run's files (byte offsets, so a sample
page reads three lines instead of joining the whole run, and a photo's image record is read
from its ``elements.jsonl`` line when it is first served). ``reviews.jsonl`` is not part of it: decisions are folded
at start-up and whenever that file changes (:meth:`RunIndex.refresh`).

The stamp is the size and modification time (ns) of each file the index is built from; a
different stamp, a missing or unreadable index, or another :data:`INDEX_VERSION` rebuilds it.
A run folder that cannot be written keeps the index in memory only.

Layout (version 3: rows gained the target kind and count), compact JSON because reading it
is most of a start on a big run:
``{"version", "stamp", "rejects", "fields", "rows", "offsets"}`` where each row is a
list of the :data:`ROW_FIELDS` values (the position and the lower-cased focus are derived on
read) and each offset a ``[dialogue, elements, tree]`` triple.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from prist_builder import appendlog
from prist_builder.pipeline.store import MANIFEST_FILE, REJECTS_FILE
from prist_builder.records import DialogueRecord, ElementsRecord, Reject, TreeRecord
from prist_builder.records.curation import FINAL_MASKS_FILE, FinalMask
from prist_builder.records.granularity import granularity

log = logging.getLogger(__name__)

INDEX_FILE = ".review-index.json"
"""The stored index, inside the run folder."""
INDEX_VERSION = 3
"""Bumped when the stored layout changes (an index of another version is rebuilt)."""
DIALOGUES, ELEMENTS, TREES = "dialogues.jsonl", "elements.jsonl", "trees.jsonl"
WATCHED = (DIALOGUES, ELEMENTS, TREES, REJECTS_FILE, FINAL_MASKS_FILE, MANIFEST_FILE)
"""The run files the index is built from (its stamp)."""
NO_TREE = -1
"""Offset of a sample whose image has no tree record."""
ROW_FIELDS = ("sample_id", "image_id", "focus", "provider", "granularity", "turns", "image_rejects", "kind", "targets")
"""Stored values of each row, in order (see :class:`~prist_builder.review.index.Row`)."""


@dataclass
class StoredIndex:
    """The content of ``RUN/.review-index.json``.

    Attributes:
        rows: per sample, in run order, the list of its :data:`ROW_FIELDS` values.
        offsets: per sample, byte offsets of its line in ``dialogues.jsonl``, its image's line in
            ``elements.jsonl`` and in ``trees.jsonl`` (:data:`NO_TREE` if none).
        rejects: lines in ``rejects.jsonl``.
        built: ``True`` when built by this call, ``False`` when read from disk.
    """

    rows: list[list[Any]]
    offsets: list[list[int]]
    rejects: int
    built: bool = True


def run_stamp(run: Path) -> dict[str, list[int] | None]:
    """Size and modification time (ns) of each watched file of ``run`` (``None`` when absent)."""
    out: dict[str, list[int] | None] = {}
    for name in WATCHED:
        try:
            info = (Path(run) / name).stat()
        except FileNotFoundError:
            out[name] = None
            continue
        out[name] = [info.st_size, info.st_mtime_ns]
    return out


def lines_with_offsets(path: Path) -> Iterator[tuple[int, bytes]]:
    """``(byte offset, line)`` of each complete, non-empty line (a torn last line is left out);
    :func:`prist_builder.pipeline.store.iter_lines` without the blank lines."""
    from prist_builder.pipeline.store import iter_lines

    return ((offset, line) for offset, line in iter_lines(path) if line.strip())


def read_line(path: Path, offset: int) -> bytes:
    """The line of ``path`` that starts at byte ``offset``."""
    with open(path, "rb") as handle:
        handle.seek(offset)
        return handle.readline()


def load_or_build(run: Path, bounds: dict[str, Any]) -> StoredIndex:
    """The stored index of ``run`` when its stamp matches the run's files, else a fresh one (saved).

    Raises:
        FileNotFoundError: ``run`` has no ``dialogues.jsonl``.
        pydantic.ValidationError: a build record is invalid (when building).
        prist_builder.appendlog.LogLineError: ``final_masks.jsonl`` has a broken line.
    """
    run = Path(run)
    if not (run / DIALOGUES).exists():
        raise FileNotFoundError(f"{run}: not a run folder (no {DIALOGUES})")
    stamp = run_stamp(run)
    path = run / INDEX_FILE
    try:
        stored = json.loads(path.read_bytes())
        if (
            stored.get("version") == INDEX_VERSION
            and stored.get("stamp") == stamp
            and stored.get("fields") == list(ROW_FIELDS)
            and len(stored["rows"]) == len(stored["offsets"])
        ):
            rows, offsets, rejects = stored["rows"], stored["offsets"], int(stored["rejects"])
            if isinstance(rows, list) and isinstance(offsets, list):
                return StoredIndex(rows, offsets, rejects, built=False)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass  # absent, torn or foreign: build it again
    index = build_index(run, bounds)
    if run_stamp(run) == stamp:  # the run did not change while it was read
        data = {"version": INDEX_VERSION, "stamp": stamp, "fields": list(ROW_FIELDS)}
        data.update((k, v) for k, v in asdict(index).items() if k != "built")
        try:
            _write_compact(path, data)
        except OSError as exc:
            log.warning("%s: review index not saved (%s); it is rebuilt at every start", path, exc)
    return index


def _write_compact(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as compact JSON through a temporary file and ``os.replace`` (never torn)."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(data, handle, separators=(",", ":"))
        handle.write("\n")
    os.replace(tmp, path)


def build_index(run: Path, bounds: dict[str, Any]) -> StoredIndex:
    """Read the run's files once and index every sample (see :class:`StoredIndex`)."""
    from prist_builder.annotation.masks import area  # numpy, pycocotools: only when (re)building

    elements: dict[str, tuple[int, ElementsRecord]] = {}
    for offset, line in lines_with_offsets(run / ELEMENTS):
        record = ElementsRecord.model_validate_json(line)
        elements[record.image_id] = (offset, record)
    trees: dict[str, int] = {}
    for offset, line in lines_with_offsets(run / TREES):
        trees[TreeRecord.model_validate_json(line).image_id] = offset
    finals = appendlog.latest(appendlog.read(run / FINAL_MASKS_FILE, FinalMask), lambda r: r.sample_id)
    per_image: Counter[str] = Counter()
    rejects = 0
    for _, line in lines_with_offsets(run / REJECTS_FILE):
        reject = Reject.model_validate_json(line)
        rejects += 1
        if reject.image_id:
            per_image[reject.image_id] += 1
    rows: list[list[Any]] = []
    offsets: list[list[int]] = []
    for offset, line in lines_with_offsets(run / DIALOGUES):
        dialogue = DialogueRecord.model_validate_json(line, context=bounds)
        found = elements.get(dialogue.image_id)
        if found is None:
            continue
        element_offset, record = found
        image = record.image
        final = finals.get(dialogue.sample_id)
        mask = final.mask if final is not None else dialogue.mask
        empty = dialogue.kind == "empty"  # nothing to measure: its mask, if any, has no pixels
        grain = "none" if mask is None or empty else granularity(area(mask), image.height, image.width)
        rows.append(
            [
                dialogue.sample_id,
                dialogue.image_id,
                dialogue.focus,
                dialogue.provider,
                grain,
                dialogue.num_turns,
                per_image.get(dialogue.image_id, 0),
                dialogue.kind,
                len(dialogue.targets) if dialogue.kind == "multi" else int(not empty),
            ]
        )
        offsets.append([offset, element_offset, trees.get(dialogue.image_id, NO_TREE)])
    return StoredIndex(rows, offsets, rejects)
