"""What an export wrote (:class:`ExportSummary`), shared by the writers and the dataset card.

It lives apart from :mod:`prist_builder.export.writer` so that the card (which the writer
calls) needs nothing from the writer: imports run one way, writer -> card -> summary.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class ExportSummary:
    """What an export wrote.

    Attributes:
        out: the export folder.
        sizes: samples per split.
        shards: parquet files per split (relative to ``out``).
        left_out: reason -> sample ids left out.
    """

    out: Path
    sizes: dict[str, int]
    shards: dict[str, list[str]] = field(default_factory=dict)
    left_out: dict[str, list[str]] = field(default_factory=dict)
