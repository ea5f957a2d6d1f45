"""``prist export`` in the default format: a Hugging Face dataset folder.

Layout of ``DIR`` (the export dataset contract)::

    data/{train,validation,test}-NNNNN-of-NNNNN.parquet   rows of FEATURES (or IMAGE_FEATURES with
                                                           rows="image"), shards of bounded size
    README.md                                              dataset card with YAML metadata
    export.json                                            source run, seed, split sizes, left out
    assets/*.png                                           the card's pictures

Everything is written into ``DIR/.staging`` first and moved into place at the end, with
``export.json`` last, so a crash leaves either the previous export or the new one, and a
re-run simply writes the export again.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter, OrderedDict
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from datasets.arrow_writer import ParquetWriter

from prist_builder.export.card import write_card
from prist_builder.export.card_facts import CardFacts, SplitFacts
from prist_builder.export.features import FEATURES, IMAGE_FEATURES, image_row, sample_row
from prist_builder.export.images import ImageUnavailable, export_image
from prist_builder.export.selection import NO_IMAGE, REFUSED, Selection, leave_out_reason
from prist_builder.export.splits import SPLITS, SplitSpec, assign_splits
from prist_builder.export.summary import ExportSummary
from prist_builder.exported import EXPORT_MANIFEST, ROW_LAYOUTS, RowLayout
from prist_builder.pipeline.store import write_json_atomic
from prist_builder.records import ImageRecord
from prist_builder.samples import Sample, iter_samples

DATA_DIR = "data"
CARD_FILE = "README.md"
ASSETS_DIR = "assets"
STAGING_DIR = ".staging"
OWN_ENTRIES = frozenset({DATA_DIR, CARD_FILE, EXPORT_MANIFEST, ASSETS_DIR, STAGING_DIR})
"""Entries of ``DIR`` an export owns and replaces."""

MAX_SHARD_BYTES = 256 * 1024 * 1024
"""Default upper bound of one parquet shard's payload in bytes (images plus text)."""

BATCH_ROWS = 100
"""Rows encoded and written at a time (also the row-group size ``datasets`` uses for image data)."""

IMAGE_CACHE = 16
"""Images kept in memory while writing (samples of one image are usually adjacent)."""


class ExportError(Exception):
    """The export cannot be written (one-line message naming the file)."""


def check_target(out: Path) -> None:
    """Refuse to write into a folder holding files that are not an earlier export.

    Raises:
        ExportError: ``out`` exists, is not empty, and holds entries an export does not own.
    """
    if not out.exists():
        return
    if not out.is_dir():
        raise ExportError(f"{out}: exists and is not a folder")
    foreign = sorted(p.name for p in out.iterdir() if p.name not in OWN_ENTRIES)
    if foreign and not (out / EXPORT_MANIFEST).exists():
        raise ExportError(f"{out}: not empty and not an earlier export (holds {foreign[0]!r}); choose another --out")


def _payload_bytes(row: dict[str, Any]) -> int:
    image = row["image"]
    text = 0
    for entry in row.get("samples") or [row]:
        text += sum(len(t["content"]) for t in entry["turns"]) + sum(len(t["mask"]["counts"]) for t in entry["targets"])
    return (len(image["bytes"]) if image else 0) + 2 * text


def _read_image(record_json: str) -> dict[str, Any] | None:
    """The image of an ``ImageRecord`` (JSON, regions left out) as a row holds it; ``None``
    for an image the run does not hold. Raises :class:`ImageUnavailable`."""
    record = ImageRecord.model_validate_json(record_json)
    return export_image(record) if record.sha256 else None


def iter_rows(samples: list[Sample], selection: Selection) -> Iterator[dict[str, Any]]:
    """Rows of :data:`FEATURES` for ``samples``; a sample whose image cannot be read is left out.

    An unreadable image is recorded in ``selection.left_out`` under :data:`NO_IMAGE` with
    the file's message, unless the image is absent by design (an import without pixels).
    """
    image_of = lru_cache(maxsize=IMAGE_CACHE)(_read_image)
    for sample in samples:
        try:
            image = image_of(sample.image.model_dump_json(exclude={"regions"}))
        except ImageUnavailable as exc:
            selection.leave_out(sample.sample_id, f"{NO_IMAGE}: {exc}")
            continue
        yield sample_row(sample, image)


def _columns(rows: list[dict[str, Any]], features: Any = FEATURES) -> dict[str, list[Any]]:
    return {name: [row[name] for row in rows] for name in features}


def write_split(
    name: str,
    samples: list[Sample],
    selection: Selection,
    staging: Path,
    max_shard_bytes: int,
    rows: RowLayout = "sample",
) -> list[str]:
    """Write one split as parquet shards of at most about ``max_shard_bytes``; returns their names.

    Rows are encoded and written in batches of :data:`BATCH_ROWS` by ``datasets``' own
    parquet writer (the one its builders use: same schema metadata, row groups sized for
    image data), so memory stays bounded by one batch. An empty split is one shard with no
    rows, so that every split has its file. ``rows="image"`` writes one
    :data:`IMAGE_FEATURES` row per image instead of one :data:`FEATURES` row per sample
    (an image's samples are written together, in their order, at the place of its first).
    A sample whose image cannot be read is left out (recorded in ``selection``).
    """
    writer = SplitWriter(name, staging, max_shard_bytes, rows, Counter(s.image.image_id for s in samples))
    for sample in samples:
        writer.add(sample)
    names = writer.finish()
    for sample_id, reason in writer.no_image:
        selection.leave_out(sample_id, reason)
    return names


class SplitWriter:
    """One split's parquet shards, fed one sample at a time (what :func:`write_split` writes
    from a list, byte for byte), so that an export never holds the run's samples.

    Args:
        name: the split.
        staging: the folder the shards are written to.
        max_shard_bytes: about the most bytes of images and text per parquet file.
        rows: the row layout (see :func:`write_split`).
        expected: ``rows="image"``: image id -> how many of its samples this split gets;
            an image's row is written once all have come, images in the order of their
            first sample (an image's samples are usually adjacent; those that are not wait
            in memory).

    Attributes:
        facts: the card's figures of the samples written (:class:`~.card_facts.SplitFacts`).
        no_image: ``(sample_id, reason)`` of samples left out because their image cannot
            be read, in the order :func:`write_split` records them.
    """

    def __init__(
        self, name: str, staging: Path, max_shard_bytes: int, rows: RowLayout, expected: dict[str, int]
    ) -> None:
        self.name, self.staging, self.max_shard_bytes, self.rows = name, staging, max_shard_bytes, rows
        self.features = IMAGE_FEATURES if rows == "image" else FEATURES
        self.expected = expected
        self.facts = SplitFacts()
        self.no_image: list[tuple[str, str]] = []
        self._groups: OrderedDict[str, list[tuple[Sample, Any]]] = OrderedDict()
        self._parts: list[Path] = []
        self._batch: list[dict[str, Any]] = []
        self._writer: ParquetWriter | None = None
        self._size = 0
        self._image_of = lru_cache(maxsize=IMAGE_CACHE)(_read_image)

    def add(self, sample: Sample) -> None:
        """Write one sample of the split (or hold it until its image's samples have all come)."""
        try:
            image: Any = self._image_of(sample.image.model_dump_json(exclude={"regions"}))
        except ImageUnavailable as exc:
            image = exc
        else:
            self.facts.add(sample)
        if self.rows != "image":
            self._emit([(sample, image)])
            return
        self._groups.setdefault(sample.image.image_id, []).append((sample, image))
        while self._groups:
            head, group = next(iter(self._groups.items()))
            if len(group) < self.expected.get(head, 0):
                break
            del self._groups[head]
            self._emit(group)

    def _emit(self, group: list[tuple[Sample, Any]]) -> None:
        rows = []
        for sample, image in group:
            if isinstance(image, ImageUnavailable):
                self.no_image.append((sample.sample_id, f"{NO_IMAGE}: {image}"))
            else:
                rows.append(sample_row(sample, image))
        if self.rows == "image" and rows:
            rows = [image_row(rows)]
        for row in rows:
            self._put(row)

    def _put(self, row: dict[str, Any]) -> None:
        self._batch.append(row)
        self._size += _payload_bytes(row)
        if self._size >= self.max_shard_bytes:
            self._write_batch()
            self._writer.finalize()  # type: ignore[union-attr]
            self._writer, self._size = None, 0
        elif len(self._batch) >= BATCH_ROWS:
            self._write_batch()

    def _write_batch(self) -> None:
        if self._writer is None:
            path = self.staging / f"{self.name}-part{len(self._parts):05d}.parquet"
            self._parts.append(path)
            self._writer = ParquetWriter(path=str(path), features=self.features)
        self._writer.write_batch(_columns(self._batch, self.features))
        self._batch.clear()

    def finish(self) -> list[str]:
        """Write what is left (an image still short of samples too) and name the shards."""
        for group in list(self._groups.values()):
            self._emit(group)
        self._groups.clear()
        if self._batch or not self._parts:
            self._write_batch()
        if self._writer is not None:
            self._writer.finalize()
        names = []
        for index, part in enumerate(self._parts):
            final = f"{self.name}-{index:05d}-of-{len(self._parts):05d}.parquet"
            part.rename(self.staging / final)
            names.append(f"{DATA_DIR}/{final}")
        return names


def export_run(
    run: Path,
    out: Path,
    *,
    spec: SplitSpec | None = None,
    seed: int = 0,
    keep_unfinished: bool = False,
    one_split: str | None = None,
    max_shard_bytes: int = MAX_SHARD_BYTES,
    license: str = "other",
    rows: RowLayout = "sample",
) -> ExportSummary:
    """Export a run folder as a Hugging Face dataset folder (the export dataset contract).

    Args:
        run: the run folder, read through :func:`prist_builder.samples.iter_samples`.
        out: the export folder (created; an earlier export there is replaced).
        spec: split sizes (default: the paper's proportions).
        seed: seed of the split by image.
        keep_unfinished: also export samples without a final mask (no target) or without an image.
        one_split: put every sample into this split instead of splitting.
        max_shard_bytes: about the most bytes of images and text per parquet file.
        license: the card's license field (an SPDX-like id, e.g. ``cc-by-4.0``).
        rows: ``sample`` (one row per sample, the default) or ``image`` (one row per image,
            its samples nested: each image stored once; recorded in ``export.json``).

    Raises:
        FileNotFoundError: ``run`` is not a run folder.
        ExportError: ``out`` holds foreign files.
        ValueError: bad split sizes or an unknown ``rows`` layout.
    """
    if rows not in ROW_LAYOUTS:
        raise ValueError(f"unknown --rows {rows!r}; choose one of {', '.join(ROW_LAYOUTS)}")
    if one_split is not None and one_split not in SPLITS:
        raise ValueError(f"--one-split must be one of {', '.join(SPLITS)}, got {one_split!r}")
    run, out = Path(run), Path(out)
    check_target(out)
    # two passes over the run's samples, none held: the first chooses and counts per image
    # (the split is by image and needs the counts), the second writes (see select())
    need = {"need_mask": not keep_unfinished, "need_image": not keep_unfinished, "check_masks": True}
    selection, kept, seen = Selection(), Counter[str](), 0
    for sample in iter_samples(run):
        seen += 1
        reason = leave_out_reason(sample, **need)
        if reason is not None:
            selection.leave_out(sample.sample_id, reason)
        else:
            kept[sample.dialogue.image_id] += 1
    where = {} if one_split is not None else assign_splits(list(kept.items()), spec or SplitSpec(), seed)
    staging = out / STAGING_DIR
    shutil.rmtree(staging, ignore_errors=True)
    (staging / DATA_DIR).mkdir(parents=True)
    writers = {name: SplitWriter(name, staging / DATA_DIR, max_shard_bytes, rows, kept) for name in SPLITS}
    for index, sample in enumerate(iter_samples(run)):
        if index == seen:  # lines a build appended since the first pass wait for the next export
            break
        if leave_out_reason(sample, **need) is None:
            writers[one_split or where[sample.dialogue.image_id]].add(sample)
    shards = {name: writers[name].finish() for name in SPLITS}
    for name in SPLITS:
        for sample_id, reason in writers[name].no_image:
            selection.leave_out(sample_id, reason)
    facts = CardFacts({name: writers[name].facts for name in SPLITS})
    summary = ExportSummary(out, {name: facts.splits[name].samples for name in SPLITS}, shards, selection.left_out)
    write_card(staging, run, facts, summary, seed=seed, license=license, rows=rows)
    for entry in (DATA_DIR, ASSETS_DIR, CARD_FILE, EXPORT_MANIFEST):
        target = out / entry
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    for entry in (DATA_DIR, ASSETS_DIR, CARD_FILE):
        if (staging / entry).exists():
            (staging / entry).rename(out / entry)
    manifest = export_manifest(run, seed, spec or SplitSpec(), one_split, summary)
    if rows != "sample":  # the default layout's export.json stays as it always was
        manifest["rows"] = rows
        manifest["images"] = {name: len(facts.splits[name].images) for name in SPLITS}
    write_json_atomic(out / EXPORT_MANIFEST, manifest)
    shutil.rmtree(staging, ignore_errors=True)
    return summary


def export_manifest(run: Path, seed: int, spec: SplitSpec, one_split: str | None, summary: ExportSummary) -> dict:
    """The content of ``export.json``: source run, seed, split settings and sizes, shards, samples left out."""
    return {
        "source_run": str(Path(run).resolve()),
        "seed": seed,
        "split_spec": {"validation": spec.validation, "test": spec.test, "one_split": one_split},
        "splits": summary.sizes,
        "shards": summary.shards,
        "left_out": {reason: {"count": len(ids), "sample_ids": ids} for reason, ids in summary.left_out.items()},
    }


def format_summary(summary: ExportSummary) -> str:
    """One line per split and per reason a sample was left out, then one line per sample a
    format refused (``<sample_id>: refused by --format F: why``), for the CLI."""
    lines = [f"{name}: {count} samples" for name, count in summary.sizes.items()]
    lines += [f"left out ({reason}): {len(ids)}" for reason, ids in summary.left_out.items()]
    lines += [
        f"{sid}: {reason}" for reason, ids in summary.left_out.items() if reason.startswith(REFUSED) for sid in ids
    ]
    return "\n".join(lines)


def dump(summary: ExportSummary) -> str:
    """The summary as JSON (sizes and counts left out)."""
    return json.dumps(
        {
            "out": str(summary.out),
            "splits": summary.sizes,
            "left_out": {k: len(v) for k, v in summary.left_out.items()},
        },
        indent=2,
    )
