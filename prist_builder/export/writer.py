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
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from datasets.arrow_writer import ParquetWriter

from prist_builder.export.card import write_card
from prist_builder.export.features import FEATURES, IMAGE_FEATURES, image_row, sample_row
from prist_builder.export.images import ImageUnavailable, export_image
from prist_builder.export.selection import NO_IMAGE, REFUSED, Selection, select
from prist_builder.export.splits import SPLITS, SplitSpec
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


def per_image(rows: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Per-sample rows, an image's samples adjacent, grouped into :data:`IMAGE_FEATURES` rows.

    Streams: only one image's rows are held at a time (see :func:`by_image` for the order).
    """
    group: list[dict[str, Any]] = []
    for row in rows:
        if group and row["image_id"] != group[0]["image_id"]:
            yield image_row(group)
            group = []
        group.append(row)
    if group:
        yield image_row(group)


def by_image(samples: list[Sample]) -> list[Sample]:
    """``samples`` with each image's samples moved together, at the place of its first one
    (their order kept), so that :func:`per_image` sees each image once."""
    groups: dict[str, list[Sample]] = {}
    for sample in samples:
        groups.setdefault(sample.image.image_id, []).append(sample)
    return [sample for group in groups.values() for sample in group]


def iter_rows(samples: list[Sample], selection: Selection) -> Iterator[dict[str, Any]]:
    """Rows of :data:`FEATURES` for ``samples``; a sample whose image cannot be read is left out.

    An unreadable image is recorded in ``selection.left_out`` under :data:`NO_IMAGE` with
    the file's message, unless the image is absent by design (an import without pixels).
    """

    @lru_cache(maxsize=IMAGE_CACHE)
    def image_of(record_json: str) -> dict[str, Any] | None:
        record = ImageRecord.model_validate_json(record_json)
        return export_image(record) if record.sha256 else None

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
    (an image's samples are written together, in their order).
    """
    features = IMAGE_FEATURES if rows == "image" else FEATURES
    if rows == "image":
        source = per_image(iter_rows(by_image(samples), selection))
    else:
        source = iter_rows(samples, selection)
    parts: list[Path] = []
    batch: list[dict[str, Any]] = []
    writer: ParquetWriter | None = None
    size = 0

    def open_part() -> ParquetWriter:
        path = staging / f"{name}-part{len(parts):05d}.parquet"
        parts.append(path)
        return ParquetWriter(path=str(path), features=features)

    def write_batch() -> None:
        nonlocal writer
        if writer is None:
            writer = open_part()
        writer.write_batch(_columns(batch, features))
        batch.clear()

    for row in source:
        batch.append(row)
        size += _payload_bytes(row)
        if size >= max_shard_bytes:
            write_batch()
            writer.finalize()  # type: ignore[union-attr]
            writer, size = None, 0
        elif len(batch) >= BATCH_ROWS:
            write_batch()
    if batch or not parts:
        write_batch()
    if writer is not None:
        writer.finalize()
    names = []
    for index, part in enumerate(parts):
        final = f"{name}-{index:05d}-of-{len(parts):05d}.parquet"
        part.rename(staging / final)
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
    run, out = Path(run), Path(out)
    check_target(out)
    samples = list(iter_samples(run))
    selection = select(
        samples,
        spec or SplitSpec(),
        seed,
        need_mask=not keep_unfinished,
        need_image=not keep_unfinished,
        one_split=one_split,
    )
    staging = out / STAGING_DIR
    shutil.rmtree(staging, ignore_errors=True)
    (staging / DATA_DIR).mkdir(parents=True)
    shards = {
        name: write_split(name, selection.splits[name], selection, staging / DATA_DIR, max_shard_bytes, rows)
        for name in SPLITS
    }
    written = {name: [s for s in selection.splits[name] if not _left(s, selection)] for name in SPLITS}
    summary = ExportSummary(out, {k: len(v) for k, v in written.items()}, shards, selection.left_out)
    write_card(staging, run, written, summary, seed=seed, license=license, rows=rows)
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
        manifest["images"] = {name: len({s.image.image_id for s in written[name]}) for name in SPLITS}
    write_json_atomic(out / EXPORT_MANIFEST, manifest)
    shutil.rmtree(staging, ignore_errors=True)
    return summary


def _left(sample: Sample, selection: Selection) -> bool:
    return any(sample.sample_id in ids for reason, ids in selection.left_out.items() if reason.startswith(NO_IMAGE))


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
