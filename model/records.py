"""Training and inference records, read from an export folder, a run folder or a LLaVA file.

Source formats (``data.sources[].format``):

- ``export``: a ``prist export`` folder (``data/{split}-*.parquet``, the export contract);
  read with ``datasets``. Uses ``image``, ``turns``, ``targets[].mask`` and ``targets[].focus``
  (0..n targets in answer order; the ``target_kind`` column is not needed).
- ``run``: a build run folder, read with :func:`prist_builder.samples.iter_samples`;
  finished samples only (has a mask, not rejected), one target per mask of ``Sample.masks``.
  A run has no splits: all are used.

A record with targets ends in an answer holding one ``[SEG]`` per target, in order (a
multi-target sample several, an empty-target one none); a row whose final answer's ``[SEG]``
count differs from its number of targets, or with ``[SEG]`` in any other message, is left out
(``Records.skipped``) with a reason naming the sample.
- ``llava``: a LLaVA-Instruct style JSON file: a list of ``{"id", "image", "conversations":
  [{"from": "human"|"gpt", "value"}]}``, images relative to ``image_root``; text only (VQA,
  captions), no mask.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from prist_builder.annotation.masks import decode
from prist_builder.records.limits import SEG_TOKEN

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


def _turns(raw: list[tuple[str, str]], where: str) -> list[tuple[str, str]]:
    """Normalised ``(role, content)`` messages; raises :class:`DataError` naming ``where`` if malformed."""
    turns = []
    for index, (role, content) in enumerate(raw):
        if role not in ROLES:
            raise DataError(f"{where}: message {index}: unknown role {role!r}")
        expected = "user" if index % 2 == 0 else "assistant"
        if ROLES[role] != expected:
            raise DataError(f"{where}: message {index}: role {role!r}, expected {expected}")
        turns.append((ROLES[role], content))
    if not turns:
        raise DataError(f"{where}: no messages")
    return turns


def check_seg_count(turns: list[tuple[str, str]], targets: int, where: str) -> None:
    """Check that the final answer holds exactly one ``[SEG]`` per target and no other message holds one.

    Args:
        turns: normalised ``(role, content)`` messages (the last is the final answer).
        targets: number of targets of the sample (0 for an empty-target one).
        where: names the file and sample in the message.

    Raises:
        DataError: naming the sample, the counts and the message at fault.
    """
    *earlier, (_, final) = turns
    for index, (_, content) in enumerate(earlier):
        if SEG_TOKEN in content:
            raise DataError(f"{where}: message {index} holds {SEG_TOKEN}; only the final answer may")
    found = final.count(SEG_TOKEN)
    if turns[-1][0] != "assistant" and targets:
        raise DataError(f"{where}: {targets} targets but the dialogue ends with a user message")
    if found != targets:
        raise DataError(f"{where}: the final answer holds {found} {SEG_TOKEN} for {targets} targets")


class Records(Sequence[Record]):
    """A source's records, decoded (image, masks) only when indexed.

    Attributes:
        skipped: ``(sample id, reason)`` of the rows left out at load time (bad roles, missing fields).
    """

    skipped: list[tuple[str, str]]

    def texts(self) -> Iterator[str]:
        """Every message text (for training a tokenizer), without decoding images."""
        raise NotImplementedError

    def target_counts(self) -> list[int | None]:
        """The number of targets of each record, in order (``None`` for a text-only record), without
        decoding images."""
        raise NotImplementedError


class ExportRecords(Records):
    """One split of a ``prist export`` folder (parquet, either row layout, read with
    :func:`prist_builder.exported.read_split`).

    Raises:
        DataError: no parquet file for ``split``.
    """

    def __init__(self, path: Path, split: str) -> None:
        from prist_builder.exported import read_split, split_files

        self.path = Path(path)
        if not split_files(self.path, split):
            raise DataError(f"{path}: no data/{split}-*.parquet (splits: {_splits(self.path)})")
        self.table = read_split(self.path, split)  # one row per sample, either row layout
        self.skipped = []
        self.rows: list[int] = []
        self._turns: list[list[tuple[str, str]]] = []
        self._counts: list[int] = []
        for index, row in enumerate(self.table.select_columns(["sample_id", "turns", "targets"])):
            where = f"{path}: sample {row.get('sample_id')}"
            try:
                turns = _turns([(t["role"], t["content"]) for t in row["turns"]], where)
                targets = row["targets"] or []
                for target in targets:
                    if not target.get("mask") or not target.get("focus"):
                        raise DataError(f"{where}: a target lacks its mask or focus")
                check_seg_count(turns, len(targets), where)
            except (DataError, KeyError, TypeError) as exc:
                self.skipped.append((str(row.get("sample_id")), str(exc)))
                continue
            self.rows.append(index)
            self._turns.append(turns)
            self._counts.append(len(targets))

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, k: int) -> Record:  # type: ignore[override]
        row = self.table[self.rows[k]]
        image = row["image"]
        if not isinstance(image, Image.Image):
            image = Image.open(io.BytesIO(image["bytes"]))
        targets = [Target(t["focus"], decode(t["mask"]).astype(bool)) for t in row["targets"] or []]
        return Record(row["sample_id"], image.convert("RGB"), self._turns[k], targets)

    def texts(self) -> Iterator[str]:
        return (content for turns in self._turns for _, content in turns)

    def target_counts(self) -> list[int | None]:
        return list(self._counts)


def _splits(path: Path) -> list[str]:
    return sorted({p.name.split("-")[0] for p in (path / "data").glob("*.parquet")})


class RunRecords(Records):
    """The finished samples of a run folder (mask present, not rejected), via ``iter_samples``:
    one target per entry of ``Sample.masks`` (none for an empty-target sample)."""

    def __init__(self, path: Path) -> None:
        from prist_builder.samples import iter_samples

        self.skipped = []
        self.samples = []
        for sample in iter_samples(Path(path)):
            if not sample.finished:
                reason = "rejected by review" if sample.mask is not None else "no mask"
                self.skipped.append((sample.sample_id, reason))
                continue
            where = f"{path}: sample {sample.sample_id}"
            try:
                if len(sample.masks) != len(sample.dialogue.target_list()):
                    raise DataError(
                        f"{where}: {len(sample.masks)} final masks for {len(sample.dialogue.target_list())} targets"
                    )
                check_seg_count([(t.role, t.content) for t in sample.dialogue.turns], len(sample.masks), where)
            except DataError as exc:
                self.skipped.append((sample.sample_id, str(exc)))
                continue
            self.samples.append(sample)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, k: int) -> Record:  # type: ignore[override]
        from prist_builder.sources import read_image

        sample = self.samples[k]
        _, image = read_image(sample.image)
        turns = [(t.role, t.content) for t in sample.dialogue.turns]
        targets = [
            Target(target.focus, decode(mask).astype(bool))
            for target, mask in zip(sample.dialogue.target_list(), sample.masks, strict=True)
        ]
        return Record(sample.sample_id, image, turns, targets)

    def texts(self) -> Iterator[str]:
        return (t.content for s in self.samples for t in s.dialogue.turns)

    def target_counts(self) -> list[int | None]:
        return [len(s.masks) for s in self.samples]


class LlavaRecords(Records):
    """A LLaVA-format JSON list (text only, no targets).

    Raises:
        DataError: the file is unreadable or not a JSON list.
    """

    def __init__(self, path: Path, image_root: Path | None) -> None:
        self.root = Path(image_root) if image_root else Path(path).parent
        try:
            items = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise DataError(f"{path}: cannot read: {exc}") from exc
        if not isinstance(items, list):
            raise DataError(f"{path}: expected a JSON list of conversations")
        self.skipped = []
        self.items: list[tuple[str, str, list[tuple[str, str]]]] = []
        for index, item in enumerate(items):
            where = f"{path}: item {index}"
            try:
                raw = [(c["from"], c["value"].replace(IMAGE_PLACEHOLDER, "").strip()) for c in item["conversations"]]
                self.items.append((str(item.get("id", index)), str(item["image"]), _turns(raw, where)))
            except (DataError, KeyError, TypeError, AttributeError) as exc:
                self.skipped.append((str(index), f"{where}: {exc}" if not isinstance(exc, DataError) else str(exc)))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, k: int) -> Record:  # type: ignore[override]
        sample_id, image, turns = self.items[k]
        try:
            pixels = Image.open(self.root / image).convert("RGB")
        except OSError as exc:
            raise DataError(f"{self.root / image}: cannot read image of item {sample_id}: {exc}") from exc
        return Record(sample_id, pixels, turns, [])

    def texts(self) -> Iterator[str]:
        return (content for _, _, turns in self.items for _, content in turns)

    def target_counts(self) -> list[int | None]:
        return [None] * len(self.items)


class ConcatRecords(Records):
    """Several sources read as one, in order (a ``data.sources[].path`` list)."""

    def __init__(self, parts: list[Records]) -> None:
        self.parts = parts
        self.skipped = [entry for part in parts for entry in part.skipped]
        self.starts = np.cumsum([0] + [len(part) for part in parts]).tolist()

    def __len__(self) -> int:
        return self.starts[-1]

    def __getitem__(self, k: int) -> Record:  # type: ignore[override]
        if not 0 <= k < len(self):
            raise IndexError(k)
        part = int(np.searchsorted(self.starts, k, side="right")) - 1
        return self.parts[part][k - self.starts[part]]

    def texts(self) -> Iterator[str]:
        return (text for part in self.parts for text in part.texts())

    def target_counts(self) -> list[int | None]:
        return [count for part in self.parts for count in part.target_counts()]


def read_source(
    path: Path | str | list[str], fmt: str = "auto", split: str = "train", image_root: str | None = None
) -> Records:
    """Records of one source in any supported format (see the module docstring), decoded lazily;
    a list of paths is read as one source (:class:`ConcatRecords`).

    Raises:
        DataError: the path is missing or matches no format.
    """
    if isinstance(path, list):
        return ConcatRecords([read_source(p, fmt, split, image_root) for p in path])
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: data source not found")
    fmt = detect_format(path) if fmt == "auto" else fmt
    if fmt == "export":
        return ExportRecords(path, split)
    if fmt == "run":
        return RunRecords(path)
    return LlavaRecords(path, Path(image_root) if image_root else None)
