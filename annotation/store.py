"""Annotators' masks in the run folder: import from Labelme, pair up, resolve the final mask.

All writes are appends to ``RUN/annotations.jsonl`` and ``RUN/final_masks.jsonl``
(:mod:`prist_builder.appendlog`: one locked, fsynced write per record; a torn line is
ignored and cut away). Nothing is rewritten: a re-imported edited file adds a line and the
latest line per (sample, annotator, role) wins; an unchanged file (same path and sha256)
is skipped, so re-running an import redoes nothing.

Final-mask rules (``prist annotate resolve``), per sample, first that applies:

1. ``adjudicated``: an adjudicator's mask exists.
2. ``single``: only one annotator's mask exists.
3. two masks whose agreement is below a threshold (IoU or kappa) and no adjudication: left
   unresolved (reported), unless ``accept_disagreements``.
4. ``annotator-a`` (default rule): annotator A's mask (A as assigned; else the first imported).
   ``iou-winner``: the mask with the higher IoU against the outline both started from (the
   grounded region or the SAM pre-label); without one, or on a tie, annotator A's.

Multi-target samples: each annotation holds one mask per target (``masks``, answer order) and
their union (``mask``); a pair is scored on the union and per target, and needs adjudication
when any of them is under a threshold; the chosen annotation's per-target masks become the
final ``masks``. Empty-target samples: the final mask is the chosen one only when it has no
pixels; when the annotators (or the adjudicator) found the asked-for thing, no final mask is
written and the sample is reported as ``contradicted`` (reject it in review).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from prist_builder import appendlog
from prist_builder.annotation.agreement import IOU_THRESHOLD, KAPPA_THRESHOLD, PairScore, score_pair, score_rles
from prist_builder.annotation.assignment import Assignment, now
from prist_builder.annotation.masks import area, decode, encode
from prist_builder.annotation.regions import AnnotationError
from prist_builder.annotation.target import TargetSpec, read_target
from prist_builder.records.curation import FINAL_MASKS_FILE, MASKS_FILE, FinalMask, MaskAnnotation

Role = str  # "annotator" | "adjudicator"


@dataclass
class ImportSummary:
    """Result of importing one folder.

    Attributes:
        imported: files stored (new or changed).
        unchanged: files skipped because the same file was imported before.
        errors: one line per file that failed (the rest of the folder was still imported).
        skipped_shapes: shapes left out on purpose, ``"<file>: <reason>"``.
    """

    imported: int = 0
    unchanged: int = 0
    errors: list[str] = field(default_factory=list)
    skipped_shapes: list[str] = field(default_factory=list)


def read_annotations(run: Path) -> dict[tuple[str, str, str], MaskAnnotation]:
    """Latest :class:`MaskAnnotation` per ``(sample_id, annotator, role)``, in order of first import."""
    records = appendlog.read(Path(run) / MASKS_FILE, MaskAnnotation)
    latest = appendlog.latest(records, lambda r: "\0".join(_key(r)))
    return {_key(r): r for r in latest.values()}


def _key(record: MaskAnnotation) -> tuple[str, str, str]:
    return (record.sample_id, record.annotator, record.role)


def import_folder(
    run: Path,
    folder: Path,
    annotator: str,
    sizes: dict[str, tuple[int, int]],
    role: Role = "annotator",
    specs: dict[str, TargetSpec] | None = None,
) -> ImportSummary:
    """Import every ``*.json`` of ``folder`` as ``annotator``'s masks into ``RUN/annotations.jsonl``.

    Args:
        run: the run folder.
        folder: the annotator's Labelme files (one per sample, see :mod:`prist_builder.annotation.target`).
        annotator: the annotator's name.
        sizes: sample id -> ``(height, width)`` in pixels of its image, for every sample of the run.
        role: ``annotator`` or ``adjudicator`` (an adjudicator's file must hold a target shape).
        specs: sample id -> its :class:`TargetSpec` (multi- and empty-target samples; a
            sample not in it is single-target).

    Returns:
        counts and one-line errors; a broken file never stops the others.

    Raises:
        NotADirectoryError: ``folder`` is not a folder.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder}: not a folder")
    known = read_annotations(run)
    summary = ImportSummary()

    def size_of(sample_id: str) -> tuple[int, int]:
        if sample_id not in sizes:
            raise AnnotationError(f"field 'prist.sample_id': the run has no sample {sample_id!r}")
        return sizes[sample_id]

    for path in sorted(folder.glob("*.json")):
        try:
            target = read_target(path, size_of, role == "adjudicator", lambda s: (specs or {}).get(s, TargetSpec()))
        except AnnotationError as exc:
            message = str(exc)
            summary.errors.append(message if message.startswith(str(path)) else f"{path}: {message}")
            continue
        summary.skipped_shapes += [f"{path.name}: {line}" for line in target.skipped]
        source = str(path.resolve())
        previous = known.get((target.sample_id, annotator, role))
        if previous is not None and previous.sha256 == target.sha256 and previous.source_file == source:
            summary.unchanged += 1
            continue
        record = MaskAnnotation(
            sample_id=target.sample_id,
            annotator=annotator,
            mask=encode(target.mask),
            source_file=source,
            sha256=target.sha256,
            time=now(),
            role=role,
            masks=[encode(m) for m in target.masks] if target.masks is not None else None,
        )  # type: ignore[arg-type]
        appendlog.append(Path(run) / MASKS_FILE, [record])
        known[_key(record)] = record
        summary.imported += 1
    return summary


@dataclass
class Pair:
    """The two independent masks of one sample, and their agreement.

    Attributes:
        sample_id: the sample.
        group: its group (``all`` when it was never assigned).
        a, b: annotator A's and B's records (``b`` is ``None`` with a single annotation).
        score: agreement of the two masks (the unions for a multi-target sample; ``None``
            when ``b`` is ``None``).
        targets: multi-target sample: agreement per target in answer order; ``None`` otherwise
            (or when the two records do not both hold the same number of per-target masks).
    """

    sample_id: str
    group: str
    a: MaskAnnotation
    b: MaskAnnotation | None
    score: PairScore | None
    targets: list[PairScore] | None = None

    def below(self, iou_min: float = IOU_THRESHOLD, kappa_min: float = KAPPA_THRESHOLD) -> bool:
        """The pair needs adjudication: the (union) score or any target's is under a threshold."""
        scores = ([self.score] if self.score else []) + (self.targets or [])
        return any(below(s, iou_min, kappa_min) for s in scores)


def pairs(run: Path, assignments: dict[str, Assignment]) -> list[Pair]:
    """Pair each sample's independent masks: the assigned A and B when both were imported,
    else the first two annotators in import order; samples are in order of first import."""
    by_sample: dict[str, list[MaskAnnotation]] = {}
    for record in read_annotations(run).values():
        if record.role == "annotator":
            by_sample.setdefault(record.sample_id, []).append(record)
    out: list[Pair] = []
    for sample_id, records in by_sample.items():
        assignment = assignments.get(sample_id)
        named = {r.annotator: r for r in records}
        if assignment is not None and all(a in named for a in assignment.annotators):
            chosen = [named[a] for a in assignment.annotators]
        else:
            chosen = records[:2]
        group = assignment.group if assignment is not None else "all"
        if len(chosen) < 2:
            out.append(Pair(sample_id, group, chosen[0], None, None))
            continue
        score = score_rles(chosen[0].mask, chosen[1].mask)
        out.append(Pair(sample_id, group, chosen[0], chosen[1], score, _target_scores(chosen[0], chosen[1])))
    return out


def _target_scores(a: MaskAnnotation, b: MaskAnnotation) -> list[PairScore] | None:
    """Per-target agreement of two multi-target records (``None`` when they lack matching ``masks``)."""
    if a.masks is None or b.masks is None or len(a.masks) != len(b.masks):
        return None
    return [score_rles(x, y) for x, y in zip(a.masks, b.masks, strict=True)]


def below(score: PairScore, iou_min: float = IOU_THRESHOLD, kappa_min: float = KAPPA_THRESHOLD) -> bool:
    """A pair needs adjudication: IoU or kappa under its threshold."""
    return score.iou < iou_min or score.kappa < kappa_min


@dataclass
class ResolveSummary:
    """Result of :func:`resolve`: sample ids by outcome (``rules`` counts written finals by rule)."""

    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    awaiting: list[str] = field(default_factory=list)
    rules: dict[str, int] = field(default_factory=dict)
    contradicted: list[str] = field(default_factory=list)
    """Empty-target samples whose chosen mask has pixels (the asked-for thing was found)."""
    invalid: list[str] = field(default_factory=list)
    """Multi-target samples whose chosen record lacks one mask per target (one line each)."""


def resolve(
    run: Path,
    assignments: dict[str, Assignment],
    rule: str = "annotator-a",
    reference: Callable[[str], np.ndarray | None] = lambda _: None,
    iou_min: float = IOU_THRESHOLD,
    kappa_min: float = KAPPA_THRESHOLD,
    accept_disagreements: bool = False,
    specs: dict[str, TargetSpec] | None = None,
) -> ResolveSummary:
    """Append a :class:`FinalMask` for every sample whose final mask is new or changed.

    Args:
        run: the run folder.
        assignments: sample id -> assignment (who is A and B).
        rule: ``annotator-a`` or ``iou-winner`` (see the module docstring).
        reference: sample id -> the ``(H, W) bool`` outline the annotators started from, or None.
        iou_min, kappa_min: thresholds under which a pair waits for adjudication.
        accept_disagreements: resolve such pairs by ``rule`` instead of waiting.
        specs: sample id -> :class:`TargetSpec` of multi- and empty-target samples (others
            are single-target): a multi sample's final gets ``masks`` per target, an empty
            one's must have no pixels (module docstring).

    Raises:
        ValueError: unknown ``rule``.
    """
    if rule not in ("annotator-a", "iou-winner"):
        raise ValueError(f"--rule must be annotator-a or iou-winner, got {rule!r}")
    adjudicated = {r.sample_id: r for r in read_annotations(run).values() if r.role == "adjudicator"}
    finals = appendlog.latest(appendlog.read(Path(run) / FINAL_MASKS_FILE, FinalMask), lambda r: r.sample_id)
    summary = ResolveSummary()
    records: list[FinalMask] = []
    stamp = now()
    for pair in pairs(run, assignments):
        names = [pair.a.annotator] + ([pair.b.annotator] if pair.b else [])
        scores = {"iou": pair.score.iou, "kappa": pair.score.kappa} if pair.score else {}
        judge = adjudicated.get(pair.sample_id)
        if judge is not None:
            chosen, how, names = judge, "adjudicated", [*names, judge.annotator]
        elif pair.b is None:
            chosen, how, scores = pair.a, "single", {}
        elif pair.below(iou_min, kappa_min) and not accept_disagreements:
            summary.awaiting.append(pair.sample_id)
            continue
        else:
            chosen, how = _winner(pair, rule, reference(pair.sample_id)), rule
        final = FinalMask(
            sample_id=pair.sample_id,
            mask=chosen.mask,
            rule=how,  # type: ignore[arg-type]
            annotators=names,
            time=stamp,
            **scores,
        )
        if not _fits(final, chosen, (specs or {}).get(pair.sample_id, TargetSpec()), summary):
            continue
        previous = finals.get(pair.sample_id)
        if previous is not None and previous.model_dump(exclude={"time"}) == final.model_dump(exclude={"time"}):
            summary.unchanged.append(pair.sample_id)
            continue
        records.append(final)
        summary.written.append(pair.sample_id)
        summary.rules[final.rule] = summary.rules.get(final.rule, 0) + 1
    appendlog.append(Path(run) / FINAL_MASKS_FILE, records)
    return summary


def _fits(final: FinalMask, chosen: MaskAnnotation, spec: TargetSpec, summary: ResolveSummary) -> bool:
    """Give a multi-target ``final`` its per-target masks; check an empty-target one has no
    pixels. Returns False (and notes why in ``summary``) when ``final`` must not be written."""
    if spec.kind == "multi":
        if chosen.masks is None or len(chosen.masks) != len(spec.foci):
            have = "no per-target masks" if chosen.masks is None else f"{len(chosen.masks)} masks"
            summary.invalid.append(
                f"{final.sample_id}: {chosen.annotator}'s record ({chosen.source_file}) has {have}"
                f" for {len(spec.foci)} targets; re-import it"
            )
            return False
        final.masks = list(chosen.masks)
    elif spec.kind == "empty" and area(final.mask) > 0:
        summary.contradicted.append(final.sample_id)
        return False
    return True


def _winner(pair: Pair, rule: str, reference: np.ndarray | None) -> MaskAnnotation:
    assert pair.b is not None
    if rule == "annotator-a" or reference is None:
        return pair.a
    iou_a = score_pair(decode(pair.a.mask), reference).iou
    iou_b = score_pair(decode(pair.b.mask), reference).iou
    return pair.b if iou_b > iou_a else pair.a


def sample_sizes(samples: Iterable[tuple[str, int, int]]) -> dict[str, tuple[int, int]]:
    """``{sample_id: (height, width)}`` from ``(sample_id, height, width)`` triples."""
    return {s: (h, w) for s, h, w in samples}
