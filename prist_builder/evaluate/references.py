"""Reference samples to score against: a ``prist export`` folder or a run folder.

A reference is what the scorer needs of one sample: its messages, its target kind (``single``,
``multi`` or ``empty``), its target masks (0..n, and their union) and the image size (for
granularity). Export folders are read with ``datasets`` (only the text and
mask columns, so no image is decoded); run folders (an imported official split is one too)
through :func:`prist_builder.samples.iter_samples`, the one join of a run.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from prist_builder.annotation.masks import area, union_rle
from prist_builder.exported import ExportReadError, read_split
from prist_builder.records.limits import TARGET_KINDS
from prist_builder.records.rle import RLE
from prist_builder.stats import granularity

EXPORT_COLUMNS = ("sample_id", "image_id", "width", "height", "turns", "focus", "targets")
"""Columns of the export contract the scorer reads."""
KIND_COLUMN = "target_kind"
"""Export column naming each row's target kind; older exports lack it (kind then follows
``len(targets)``: ``multi`` when more than one, else ``single``)."""
SPLITS = ("train", "validation", "test")
"""Split names of the export contract (a converted public dataset may add its own, e.g. ``testA``)."""
ROLE_ALIASES = {"human": "user", "gpt": "assistant", "user": "user", "assistant": "assistant"}
"""Message roles as the scorer names them, from either convention (LLaVA's or the run's)."""


class ReferenceError(ValueError):
    """The reference folder cannot be read; the message names the folder or file and the field."""


@dataclass(frozen=True)
class Reference:
    """One reference sample.

    Attributes:
        sample_id: the sample's id (predictions name it).
        image_id: its image.
        height, width: image size in pixels.
        turns: ``(role, content)`` messages, roles ``user``/``assistant``, alternating, the
            last assistant message answering the segmentation request.
        focus: the target's description (for a multi-target sample the set's, for an empty
            one the absent thing's).
        mask: the target ``(H, W)`` bool mask as COCO RLE, ``None`` when the sample has none
            (an imported official split carries no masks): the union of ``masks`` for a
            multi-target sample, a mask without pixels for an empty-target one.
        kind: ``single``, ``multi`` or ``empty``
            (:data:`~prist_builder.records.limits.TARGET_KINDS`; GRES's kinds).
        masks: each target's ``(H, W)`` bool mask as COCO RLE, in answer order; ``()`` for an
            empty target, and for a single target built without it (see :attr:`target_masks`).
    """

    sample_id: str
    image_id: str
    height: int
    width: int
    turns: tuple[tuple[str, str], ...]
    focus: str
    mask: RLE | None
    kind: str = "single"
    masks: tuple[RLE, ...] = ()

    @property
    def target_masks(self) -> tuple[RLE, ...]:
        """Each target's mask: :attr:`masks`, else ``(mask,)`` for a single target with a mask, else ``()``."""
        if self.masks or self.kind == "empty" or self.mask is None:
            return self.masks
        return (self.mask,)

    @property
    def responses(self) -> list[str]:
        """The assistant messages, in order."""
        return [content for role, content in self.turns if role == "assistant"]

    @property
    def granularity(self) -> str | None:
        """``coarse``/``medium``/``fine`` of the target (the union's area for a multi-target sample)
        as ``prist stats`` defines it; ``None`` without a mask and for an empty target."""
        if self.mask is None or self.kind == "empty":
            return None
        return granularity(area(self.mask), self.height, self.width)


def _turns(messages: list[dict], where: str) -> tuple[tuple[str, str], ...]:
    out = []
    for index, message in enumerate(messages):
        role = ROLE_ALIASES.get(str(message.get("role") or message.get("from")))
        if role is None:
            raise ReferenceError(f"{where}: turns[{index}].role is {message.get('role')!r}, not user/assistant")
        out.append((role, str(message.get("content") if "content" in message else message.get("value") or "")))
    return tuple(out)


def _export_files(folder: Path, split: str) -> list[str]:
    files = sorted((folder / "data").glob(f"{split}-*.parquet"))
    if not files:
        found = sorted(p.name for p in (folder / "data").glob("*.parquet"))
        raise ReferenceError(f"{folder}: no '{split}' split in data/ (found: {', '.join(found) or 'no parquet files'})")
    return [str(p) for p in files]


def read_export(folder: Path, split: str = "test") -> Iterator[Reference]:
    """References of one split of a ``prist export`` folder (``DIR/data/<split>-*.parquet``),
    in either row layout (per sample, or per image with ``--rows image``).

    Raises:
        ReferenceError: the split is absent, a contract column is missing, or a row is malformed.
    """
    import datasets
    import pyarrow.parquet as pq

    files = _export_files(folder, split)
    if sum(pq.ParquetFile(f).metadata.num_rows for f in files) == 0:
        return  # an empty split: datasets refuses to load a split without rows
    quiet = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()  # no bars in the scorer's output
    try:
        data = read_split(folder, split)  # one row per sample, either row layout
    except ExportReadError as exc:
        raise ReferenceError(str(exc)) from None
    finally:
        if quiet:
            datasets.enable_progress_bars()
    missing = [c for c in EXPORT_COLUMNS if c not in data.column_names]
    if missing:
        raise ReferenceError(f"{folder}: export split '{split}' lacks column(s) {', '.join(missing)}")
    columns = list(EXPORT_COLUMNS) + ([KIND_COLUMN] if KIND_COLUMN in data.column_names else [])
    for index, row in enumerate(data.select_columns(columns)):
        where = f"{folder} [{split} row {index}]"
        targets = row["targets"] or []
        kind = export_kind(row.get(KIND_COLUMN), len(targets), where)
        height, width = int(row["height"]), int(row["width"])
        masks = []
        for number, target in enumerate(targets):
            raw = target.get("mask")
            if not raw:
                masks = []  # a target without mask: the sample has none (an imported split)
                break
            try:
                masks.append(RLE(size=[int(v) for v in raw["size"]], counts=raw["counts"]))
            except (KeyError, TypeError, ValueError) as exc:
                raise ReferenceError(f"{where}: targets[{number}].mask is not COCO RLE ({exc})") from None
        if kind == "empty":
            mask = union_rle([], height, width) if height and width else None
        else:
            mask = union_rle(masks, height, width) if masks else None
        yield Reference(
            sample_id=row["sample_id"],
            image_id=row["image_id"],
            height=height,
            width=width,
            turns=_turns(row["turns"], where),
            focus=row["focus"] or "",
            mask=mask,
            kind=kind,
            masks=tuple(masks),
        )


def export_kind(value: str | None, targets: int, where: str) -> str:
    """An export row's target kind: its ``target_kind`` value, or (older exports, ``None``)
    ``multi`` when it has more than one target, else ``single``.

    Raises:
        ReferenceError: ``value`` is not a target kind, or disagrees with the number of targets
            (``empty`` with targets, ``multi`` with fewer than two, ``single`` with more than one).
    """
    if value is None:
        return "multi" if targets > 1 else "single"
    if value not in TARGET_KINDS:
        raise ReferenceError(f"{where}: {KIND_COLUMN} is {value!r}, not one of {', '.join(TARGET_KINDS)}")
    wrong = (value == "empty" and targets) or (value == "multi" and targets < 2) or (value == "single" and targets > 1)
    if wrong:
        raise ReferenceError(f"{where}: {KIND_COLUMN} is {value!r} but the row has {targets} target(s)")
    return value


def read_run(folder: Path) -> Iterator[Reference]:
    """References of a run folder: every dialogue not rejected by a reviewer (edits applied).

    Raises:
        FileNotFoundError: ``folder`` has no ``dialogues.jsonl``.
    """
    from prist_builder.samples import iter_samples

    for sample in iter_samples(folder):
        if sample.review.status == "rejected":
            continue
        yield Reference(
            sample_id=sample.sample_id,
            image_id=sample.dialogue.image_id,
            height=sample.image.height,
            width=sample.image.width,
            turns=tuple((t.role, t.content) for t in sample.dialogue.turns),
            focus=sample.dialogue.focus,
            mask=sample.mask,
            kind=sample.kind,
            masks=tuple(sample.masks),
        )


def load_references(path: Path, split: str = "test") -> list[Reference]:
    """References from an export folder (``split`` of it) or a run folder (all its samples).

    Raises:
        ReferenceError: ``path`` is neither, or its content breaks the contract.
        FileNotFoundError: ``path`` does not exist.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such reference folder")
    if (path / "dialogues.jsonl").exists():
        return list(read_run(path))
    if (path / "data").is_dir():  # any split with shards: also RefCOCO's testA/testB from prist convert
        return list(read_export(path, split))
    raise ReferenceError(f"{path}: neither a run folder (dialogues.jsonl) nor an export folder (data/*.parquet)")
