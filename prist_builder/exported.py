"""An export folder read back as one row per sample, whichever row layout it was written in.

``prist export`` writes one of two row layouts (``export.json`` ``rows``; absent means
``sample``, the layout of every export before there was a choice):

- ``sample``: one parquet row per sample, each with its own copy of the image (the columns
  of :data:`SAMPLE_COLUMNS`);
- ``image``: one row per image (:data:`IMAGE_COLUMNS`), its samples nested in the ``samples``
  list (each with the fields of :data:`NESTED_FIELDS`): every image stored once.

:func:`read_split` is the one reader of export splits (``load_export``, MIRAS data,
``prist evaluate``): it returns per-sample rows with the same columns, in the same order,
for either layout. It sits below the after-build packages so that all of them can use it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import datasets
    import pyarrow as pa

RowLayout = Literal["sample", "image"]
ROW_LAYOUTS: tuple[str, ...] = ("sample", "image")
"""Row layouts an export may be written in (``prist export --rows``)."""

EXPORT_MANIFEST = "export.json"
"""The export folder's manifest (source run, splits, shards, row layout)."""

SAMPLE_COLUMNS: tuple[str, ...] = (
    "sample_id",
    "image_id",
    "image",
    "width",
    "height",
    "turns",
    "conversations",
    "focus",
    "targets",
    "target_kind",
    "elements",
    "tree",
    "source",
    "provenance",
)
"""Columns of a per-sample row, in order (``prist_builder.export.features.FEATURES``)."""

NESTED_FIELDS: tuple[str, ...] = (
    "sample_id",
    "turns",
    "conversations",
    "focus",
    "targets",
    "target_kind",
    "tree",
    "provenance",
)
"""Fields of one entry of an image row's ``samples`` list (everything that differs between samples)."""

IMAGE_COLUMNS: tuple[str, ...] = tuple(c for c in SAMPLE_COLUMNS if c not in NESTED_FIELDS) + ("samples",)
"""Columns of a per-image row, in order."""

TARGET_KIND_COLUMN = "target_kind"
"""The column naming what a sample's final answer segments: ``single``, ``multi`` or ``empty``
(one, two or more, or no target; the paper's Limitations section, GRES). Exports written before
it existed lack it: :func:`read_split` derives it (:func:`derived_target_kind`)."""

TARGET_KINDS: tuple[str, ...] = ("single", "multi", "empty")
"""Values of :data:`TARGET_KIND_COLUMN`, in the order tables list them."""


def derived_target_kind(count: int) -> str:
    """The target kind of a row of an export without :data:`TARGET_KIND_COLUMN`, from its
    number of targets: ``multi`` for two or more, else ``single`` (such exports held no empty
    sample: a row without a target there is an unfinished single-target sample)."""
    return "multi" if count > 1 else "single"


class ExportReadError(Exception):
    """An export folder or split cannot be read (one-line message naming the file)."""


def read_export_manifest(folder: Path) -> dict:
    """``folder/export.json`` as a dict.

    Raises:
        FileNotFoundError: ``folder`` has no ``export.json`` (not an export).
    """
    path = Path(folder) / EXPORT_MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file; not an export folder")
    return json.loads(path.read_text(encoding="utf-8"))


def row_layout(folder: Path) -> RowLayout:
    """The row layout of an export folder (``sample`` when ``export.json`` is absent or silent).

    Raises:
        ExportReadError: ``export.json`` names an unknown layout.
    """
    path = Path(folder) / EXPORT_MANIFEST
    if not path.is_file():
        return "sample"
    rows = json.loads(path.read_text(encoding="utf-8")).get("rows", "sample")
    if rows not in ROW_LAYOUTS:
        raise ExportReadError(f"{path}: field rows: {rows!r} is not one of {', '.join(ROW_LAYOUTS)}")
    return rows


def split_files(folder: Path, split: str) -> list[str]:
    """The parquet shards of ``split`` (``DIR/data/<split>-*.parquet``), sorted; ``[]`` if none."""
    return sorted(str(p) for p in (Path(folder) / "data").glob(f"{split}-*.parquet"))


def flatten_image_rows(table: pa.Table) -> pa.Table:
    """Per-image rows (:data:`IMAGE_COLUMNS`) as per-sample rows (:data:`SAMPLE_COLUMNS`), in order.

    Each image's columns are repeated for each of its samples (an image with no sample gives
    no row). A table that is already per-sample is returned as it is. A nested field the
    table lacks (``target_kind`` in an older export) is left out; see :func:`with_target_kind`.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if "samples" not in table.column_names:
        return table
    nested = table.column("samples").combine_chunks()
    parents = pc.list_parent_indices(nested)
    entries = pc.list_flatten(nested)
    columns, fields = [], []
    for name in SAMPLE_COLUMNS:
        if name in NESTED_FIELDS and entries.type.get_field_index(name) < 0:
            continue  # an export written before the column existed (target_kind)
        if name in NESTED_FIELDS:
            column = entries.field(name)
            field = entries.type.field(name)
        else:
            column = table.column(name).take(parents)
            field = table.schema.field(name)
        columns.append(column)
        fields.append(pa.field(name, field.type))
    return pa.Table.from_arrays(columns, schema=pa.schema(fields))


def with_target_kind(table: pa.Table) -> pa.Table:
    """``table`` (per-sample rows) with :data:`TARGET_KIND_COLUMN` after ``targets``, derived
    from each row's number of targets (:func:`derived_target_kind`) when the table lacks it."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if TARGET_KIND_COLUMN in table.column_names:
        return table
    counts = pc.fill_null(pc.list_value_length(table.column("targets")), 0).to_pylist()
    kinds = pa.array([derived_target_kind(n) for n in counts], type=pa.string())
    return table.add_column(table.column_names.index("targets") + 1, TARGET_KIND_COLUMN, kinds)


def read_split(folder: Path, split: str, features: datasets.Features | None = None) -> datasets.Dataset:
    """One split of an export folder as a ``datasets.Dataset`` of per-sample rows (either layout).

    Args:
        folder: the export folder.
        split: ``train``, ``validation`` or ``test``.
        features: the per-sample features to declare (default: those stored in the shards'
            schema, flattened for the image layout). Images decode to PIL.

    Returns:
        Rows with the columns of :data:`SAMPLE_COLUMNS`; an empty split gives no rows. A
        per-sample split is memory-mapped (``datasets``' cache, as before); a per-image split is
        unnested in memory with pyarrow (each image's bytes once per sample of it). A split
        written before :data:`TARGET_KIND_COLUMN` existed gets it derived from the number of
        targets (:func:`derived_target_kind`), read in memory too.

    Raises:
        ExportReadError: the split has no shard, or ``export.json`` names an unknown layout.
    """
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = Path(folder)
    files = split_files(folder, split)
    if not files:
        raise ExportReadError(f"{folder}: no data/{split}-*.parquet")
    stored = datasets.Features.from_arrow_schema(pq.read_schema(files[0]))
    image_rows = row_layout(folder) == "image" or "samples" in stored
    per_sample = _sample_features(stored) if image_rows else stored
    has_kind = TARGET_KIND_COLUMN in per_sample
    declared = features or _with_kind_feature(per_sample)
    if sum(pq.ParquetFile(f).metadata.num_rows for f in files) == 0:
        return datasets.Dataset.from_dict({name: [] for name in declared}, features=declared)
    if not image_rows and has_kind:
        # memory-mapped through datasets' cache, as a per-sample export always was read
        return datasets.Dataset.from_parquet(files, features=declared)
    table = flatten_image_rows(pa.concat_tables([pq.read_table(f) for f in files], promote_options="default"))
    table = with_target_kind(table).select(list(declared)).cast(declared.arrow_schema)
    return datasets.Dataset(table, info=datasets.DatasetInfo(features=declared))


def _with_kind_feature(features: datasets.Features) -> datasets.Features:
    """``features`` with a string :data:`TARGET_KIND_COLUMN` after ``targets`` if it lacks one."""
    import datasets

    if TARGET_KIND_COLUMN in features or "targets" not in features:
        return features
    out = {}
    for name, feature in features.items():
        out[name] = feature
        if name == "targets":
            out[TARGET_KIND_COLUMN] = datasets.Value("string")
    return datasets.Features(out)


def _sample_features(image_features: datasets.Features) -> datasets.Features:
    """Per-sample features from the features of the image layout (``samples`` unnested; a
    nested field an older export lacks is left out)."""
    import datasets

    nested = image_features["samples"]
    inner = nested.feature if hasattr(nested, "feature") else nested[0]
    out = {}
    for name in SAMPLE_COLUMNS:
        if name in NESTED_FIELDS and name not in inner:
            continue
        out[name] = inner[name] if name in NESTED_FIELDS else image_features[name]
    return datasets.Features(out)
