"""Write rows converted from public datasets (``prist convert``) as an export-style folder.

The folder follows the export dataset contract (README "The export folder"): parquet shards
of :data:`~prist_builder.export.features.FEATURES` under ``data/``, ``export.json`` (what
:func:`~prist_builder.export.reader.load_export` reads: ``splits`` sizes and ``shards``) and a
short ``README.md`` card, plus ``rejects.jsonl`` (one line per record left out: ``file``,
``field``, ``reason``). Besides ``train``/``validation``/``test`` (always present, empty or
not) a dataset may add its own split names (RefCOCO's ``testA``, ``testB``).

Rows arrive one at a time and are written in batches of :data:`BATCH_ROWS` per split, shards
rolled over at about ``max_shard_bytes``, so memory holds one batch per split. Everything is
written under ``DIR/.staging`` and moved into place at the end, ``export.json`` last: an
interrupted conversion leaves the previous folder (or none), never a partial one.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datasets.arrow_writer import ParquetWriter

from prist_builder.export.features import FEATURES
from prist_builder.export.splits import SPLITS
from prist_builder.export.writer import (
    BATCH_ROWS,
    CARD_FILE,
    DATA_DIR,
    EXPORT_MANIFEST,
    MAX_SHARD_BYTES,
    STAGING_DIR,
    ExportError,
)
from prist_builder.exported import TARGET_KIND_COLUMN, derived_target_kind
from prist_builder.pipeline.store import write_json_atomic

REJECTS_FILE = "rejects.jsonl"
"""Records a converter left out, one JSON object per line: ``file``, ``field``, ``reason``."""


@dataclass
class _Split:
    parts: list[Path] = field(default_factory=list)
    batch: list[dict[str, Any]] = field(default_factory=list)
    writer: ParquetWriter | None = None
    size: int = 0
    rows: int = 0


@dataclass
class ConvertSummary:
    """What a conversion wrote: rows per split, shard files per split, rejected records."""

    out: Path
    sizes: dict[str, int]
    shards: dict[str, list[str]]
    rejected: int


def _payload(row: dict[str, Any]) -> int:
    text = sum(len(t["content"]) for t in row["turns"]) + sum(len(t["mask"]["counts"]) for t in row["targets"])
    return len(row["image"]["bytes"]) + 2 * text


class ConvertedWriter:
    """Streams converted rows into an export-style folder.

    Args:
        out: the folder (created; an earlier conversion or export there is replaced).
        max_shard_bytes: about the most image and text bytes per parquet file.

    Raises:
        ExportError: ``out`` holds files that are not an earlier export or conversion.
    """

    def __init__(self, out: Path, max_shard_bytes: int = MAX_SHARD_BYTES) -> None:
        self.out = Path(out)
        if self.out.exists() and not self.out.is_dir():
            raise ExportError(f"{self.out}: exists and is not a folder")
        if self.out.exists():
            foreign = [p.name for p in self.out.iterdir() if p.name not in (DATA_DIR, CARD_FILE, EXPORT_MANIFEST)]
            foreign = [n for n in foreign if n not in (STAGING_DIR, REJECTS_FILE, "assets")]
            if foreign and not (self.out / EXPORT_MANIFEST).exists():
                raise ExportError(f"{self.out}: not empty and not an export (holds {foreign[0]!r}); pick another --out")
        self.max_shard_bytes = max_shard_bytes
        self.staging = self.out / STAGING_DIR
        shutil.rmtree(self.staging, ignore_errors=True)
        (self.staging / DATA_DIR).mkdir(parents=True)
        self.splits: dict[str, _Split] = {}
        self.rejected = 0
        self._rejects = open(self.staging / REJECTS_FILE, "w", encoding="utf-8")  # noqa: SIM115

    def add(self, split: str, row: dict[str, Any]) -> None:
        """Queue one row of :data:`FEATURES` for ``split``; a row without ``target_kind`` gets
        it from its number of targets (:func:`~prist_builder.exported.derived_target_kind`)."""
        if TARGET_KIND_COLUMN not in row:
            row = {**row, TARGET_KIND_COLUMN: derived_target_kind(len(row["targets"]))}
        state = self.splits.setdefault(split, _Split())
        state.batch.append(row)
        state.rows += 1
        state.size += _payload(row)
        if state.size >= self.max_shard_bytes:
            self._flush(split, state)
            state.writer.finalize()  # type: ignore[union-attr]
            state.writer, state.size = None, 0
        elif len(state.batch) >= BATCH_ROWS:
            self._flush(split, state)

    def reject(self, entry: dict[str, str]) -> None:
        """Record one left-out record (``file``, ``field``, ``reason``) in ``rejects.jsonl``."""
        self._rejects.write(json.dumps(entry, ensure_ascii=False) + "\n")
        self.rejected += 1

    def _flush(self, split: str, state: _Split) -> None:
        if state.writer is None:
            path = self.staging / DATA_DIR / f"{split}-part{len(state.parts):05d}.parquet"
            state.parts.append(path)
            state.writer = ParquetWriter(path=str(path), features=FEATURES)
        state.writer.write_batch({name: [row[name] for row in state.batch] for name in FEATURES})
        state.batch.clear()

    def close(self, manifest: dict[str, Any]) -> ConvertSummary:
        """Finish the shards, write the card and ``export.json`` (``manifest`` plus splits and
        shards) and move the folder into place."""
        for name in SPLITS:
            self.splits.setdefault(name, _Split())
        shards: dict[str, list[str]] = {}
        for name, state in self.splits.items():
            if state.batch or not state.parts:
                self._flush(name, state)
            if state.writer is not None:
                state.writer.finalize()
            shards[name] = []
            for index, part in enumerate(state.parts):
                final = f"{name}-{index:05d}-of-{len(state.parts):05d}.parquet"
                part.rename(part.with_name(final))
                shards[name].append(f"{DATA_DIR}/{final}")
        self._rejects.close()
        sizes = {name: state.rows for name, state in self.splits.items()}
        (self.staging / CARD_FILE).write_text(_card(manifest, sizes), encoding="utf-8")
        for entry in (DATA_DIR, CARD_FILE, EXPORT_MANIFEST, REJECTS_FILE, "assets"):
            target = self.out / entry
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
        for entry in (DATA_DIR, CARD_FILE, REJECTS_FILE):
            (self.staging / entry).rename(self.out / entry)
        document = {**manifest, "splits": sizes, "shards": shards, "rejected": self.rejected}
        write_json_atomic(self.out / EXPORT_MANIFEST, document)
        shutil.rmtree(self.staging, ignore_errors=True)
        return ConvertSummary(self.out, sizes, shards, self.rejected)

    def abort(self) -> None:
        """Drop the staging folder (the previous folder, if any, stays as it was)."""
        for state in self.splits.values():
            if state.writer is not None:
                state.writer.close()
        self._rejects.close()
        shutil.rmtree(self.staging, ignore_errors=True)


def _card(manifest: dict[str, Any], sizes: dict[str, int]) -> str:
    files = "".join(
        f"  - split: {name}\n    path: {DATA_DIR}/{name}-*.parquet\n" for name, count in sizes.items() if count
    )
    lines = ["---", "configs:", "- config_name: default", "  data_files:", files.rstrip("\n"), "---", ""]
    body = [
        f"# {manifest.get('dataset', 'converted dataset')}",
        "",
        f"Converted by `prist convert {manifest.get('format')}` from `{manifest.get('source')}` into the",
        "prist export contract (training format of MIRAS). The original dataset's license and",
        "terms apply; see its own site. Samples per split:",
        "",
        *[f"- {name}: {count}" for name, count in sizes.items()],
        "",
    ]
    return "\n".join([line for line in lines if line != ""] + [""] + body)
