"""Training and inference records, read from an export folder, a run folder or a LLaVA file.

Source formats (``data.sources[].format``):

- ``export``: a ``prist export`` folder (``data/{split}-*.parquet``, the export contract);
  read with ``datasets``. Uses ``image``, ``turns``, ``targets[].mask`` and ``targets[].focus``.
- ``run``: a build run folder, read with :func:`prist_builder.samples.iter_samples`;
  finished samples only (has a mask, not rejected). A run has no splits: all are used.
- ``llava``: a LLaVA-Instruct style JSON file: a list of ``{"id", "image", "conversations":
  [{"from": "human"|"gpt", "value"}]}``, images relative to ``image_root``; text only (VQA,
  captions), no mask.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from prist_builder.annotation.masks import decode

ROLES = {"human": "user", "gpt": "assistant", "user": "user", "assistant": "assistant"}
"""Role names of the supported formats, mapped to ``user``/``assistant``."""
IMAGE_PLACEHOLDER = "<image>"
"""LLaVA's image marker at the start of the first human value; dropped (the collator places the image)."""


class DataError(ValueError):
    """A data source is missing or malformed; the message names the file and field."""


@dataclass
class Target:
    """One segmentation target: its description and ``(H, W)`` bool mask (``None`` at inference)."""

    focus: str
    mask: np.ndarray | None = None


@dataclass
class Record:
    """One dialogue about one image.

    Attributes:
        sample_id: id of the sample.
        image: RGB image.
        turns: ``(role, content)`` messages, alternating user/assistant, user first.
        targets: the targets segmented by the final answer, in ``[SEG]`` order (0..n).
    """

    sample_id: str
    image: Image.Image
    turns: list[tuple[str, str]]
    targets: list[Target] = field(default_factory=list)


def detect_format(path: Path) -> str:
    """``export``, ``run`` or ``llava`` for a path (raises :class:`DataError` if none fits)."""
    if path.is_file() and path.suffix == ".json":
        return "llava"
    if (path / "dialogues.jsonl").exists():
        return "run"
    if (path / "data").is_dir() or any(path.glob("*.parquet")):
        return "export"
    raise DataError(
        f"{path}: neither an export folder (data/*.parquet), a run folder (dialogues.jsonl) nor a .json file"
    )


def read_export(path: Path, split: str) -> list[Record]:
    """Records of one split of a ``prist export`` folder.

    Raises:
        DataError: no parquet file for ``split``, or a row lacks a contract column.
    """
    from datasets import load_dataset

    files = sorted(str(p) for p in (Path(path) / "data").glob(f"{split}-*.parquet"))
    if not files:
        raise DataError(f"{path}: no data/{split}-*.parquet (splits: {_splits(Path(path))})")
    table = load_dataset("parquet", data_files={split: files}, split=split)
    records = []
    for row in table:
        try:
            image = row["image"]
            if not isinstance(image, Image.Image):
                image = Image.open(io.BytesIO(image["bytes"]))
            turns = [(ROLES[t["role"]], t["content"]) for t in row["turns"]]
            targets = [Target(t["focus"], decode(t["mask"]).astype(bool)) for t in row["targets"]]
        except (KeyError, TypeError) as exc:
            raise DataError(f"{path}: sample {row.get('sample_id')}: missing field {exc}") from exc
        records.append(Record(row["sample_id"], image.convert("RGB"), turns, targets))
    return records


def _splits(path: Path) -> list[str]:
    return sorted({p.name.split("-")[0] for p in (path / "data").glob("*.parquet")})


def read_run(path: Path) -> list[Record]:
    """Finished samples of a run folder (mask present, not rejected)."""
    from prist_builder.samples import iter_samples
    from prist_builder.sources import read_image

    records = []
    for sample in iter_samples(Path(path)):
        if not sample.finished:
            continue
        _, image = read_image(sample.image)
        turns = [(t.role, t.content) for t in sample.dialogue.turns]
        target = Target(sample.dialogue.focus, decode(sample.mask).astype(bool))
        records.append(Record(sample.sample_id, image, turns, [target]))
    return records


def read_llava(path: Path, image_root: Path | None) -> list[Record]:
    """Records of a LLaVA-format JSON list (no targets).

    Raises:
        DataError: unreadable JSON, or an item without ``image``/``conversations``.
    """
    root = Path(image_root) if image_root else Path(path).parent
    try:
        items = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: cannot read: {exc}") from exc
    records = []
    for index, item in enumerate(items):
        try:
            turns = [
                (ROLES[c["from"]], c["value"].replace(IMAGE_PLACEHOLDER, "").strip()) for c in item["conversations"]
            ]
            image = Image.open(root / item["image"]).convert("RGB")
        except (KeyError, TypeError) as exc:
            raise DataError(f"{path}: item {index}: missing field {exc}") from exc
        records.append(Record(str(item.get("id", index)), image, turns, []))
    return records


def read_source(
    path: Path | str, fmt: str = "auto", split: str = "train", image_root: str | None = None
) -> list[Record]:
    """Records of one source in any supported format (see the module docstring).

    Raises:
        DataError: the path is missing or matches no format.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: data source not found")
    fmt = detect_format(path) if fmt == "auto" else fmt
    if fmt == "export":
        return read_export(path, split)
    if fmt == "run":
        return read_run(path)
    return read_llava(path, Path(image_root) if image_root else None)
