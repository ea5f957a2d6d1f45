"""Read an export folder back: every split, the empty ones included, in either row layout.

``datasets.load_dataset(DIR)`` loads the splits that have rows (the card's config lists
only those: ``datasets`` refuses a split without rows, huggingface/datasets PR #8401), in
the layout they were written (one row per sample, or per image with ``--rows image``).
:func:`load_export` returns all three splits with one row per sample whatever the layout
(through :func:`prist_builder.exported.read_split`, the reader MIRAS and ``prist evaluate``
use too), an empty split as an empty dataset of the declared features, like
``load_from_disk`` would.
"""

from __future__ import annotations

from pathlib import Path

from datasets import Dataset, DatasetDict

from prist_builder.export.features import FEATURES
from prist_builder.export.splits import SPLITS
from prist_builder.exported import read_export_manifest, read_split


def load_export(folder: Path) -> DatasetDict:
    """The ``train``/``validation``/``test`` splits of an export folder, one row per sample
    (columns of :data:`~prist_builder.export.features.FEATURES`; images decode to PIL).

    Raises:
        FileNotFoundError: ``folder`` has no ``export.json`` (not an export).
        prist_builder.exported.ExportReadError: a split with samples has no shard.
    """
    folder = Path(folder)
    manifest = read_export_manifest(folder)
    out = {}
    for name in SPLITS:
        if manifest["splits"].get(name):
            out[name] = read_split(folder, name, FEATURES)
        else:
            out[name] = Dataset.from_dict({column: [] for column in FEATURES}, features=FEATURES)
    return DatasetDict(out)
