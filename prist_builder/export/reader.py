"""Read an export folder back: every split, the empty ones included.

``datasets.load_dataset(DIR)`` loads the splits that have rows (the card's config lists
only those: ``datasets`` refuses a split without rows, huggingface/datasets PR #8401).
:func:`load_export` returns all three, an empty split as an empty dataset of the
declared features, like ``load_from_disk`` would.
"""

from __future__ import annotations

import json
from pathlib import Path

from datasets import Dataset, DatasetDict

from prist_builder.export.features import FEATURES
from prist_builder.export.splits import SPLITS
from prist_builder.export.writer import EXPORT_MANIFEST


def load_export(folder: Path) -> DatasetDict:
    """The ``train``/``validation``/``test`` splits of an export folder (images decode to PIL).

    Raises:
        FileNotFoundError: ``folder`` has no ``export.json`` (not an export).
    """
    folder = Path(folder)
    path = folder / EXPORT_MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file; not an export folder")
    manifest = json.loads(path.read_text(encoding="utf-8"))
    out = {}
    for name in SPLITS:
        if manifest["splits"].get(name):
            files = [str(folder / shard) for shard in manifest["shards"][name]]
            out[name] = Dataset.from_parquet(files, features=FEATURES)
        else:
            out[name] = Dataset.from_dict({column: [] for column in FEATURES}, features=FEATURES)
    return DatasetDict(out)
