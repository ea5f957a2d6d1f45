"""One finished sample of a run, as every step after the build sees it.

This is the one place that joins a run folder's files into samples: the dialogue
(``dialogues.jsonl``) with reviewers' edits applied (``reviews.jsonl``), its reasoning tree
(``trees.jsonl``), its image and elements (``elements.jsonl``), and its final mask
(``final_masks.jsonl`` if a mask was annotated and resolved, else the grounded region the
build gave it, else none). Export, review, training and evaluation read runs through
:func:`iter_samples`; none of them re-implements the join.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from prist_builder import appendlog
from prist_builder.pipeline.store import (
    MANIFEST_FILE,
    iter_lines,
    line_image_id,
    read_line_at,
    run_bounds,
)
from prist_builder.records import DialogueRecord, ElementsRecord, ImageRecord, TreeRecord, Turn
from prist_builder.records.curation import (
    FINAL_MASKS_FILE,
    REVIEWS_FILE,
    FinalMask,
    MaskRule,
    ReviewDecision,
)
from prist_builder.records.rle import RLE

log = logging.getLogger(__name__)

ReviewStatus = Literal["unreviewed", "accepted", "rejected", "edited"]


@dataclass
class Review:
    """A sample's review state, folded from its decisions in ``reviews.jsonl``.

    Attributes:
        status: ``unreviewed``, ``accepted``, ``rejected`` or ``edited`` (edited, not yet accepted).
        reviewer: who made the latest decision, if any.
        reason: the reason of the latest reject.
        edits: message index -> replacement text, the latest edit of each message.
        time: time of the latest decision.
        history: every edit since the last reset, in file order, as ``(message index, text)``
            (what :func:`apply_edits` replays, checking each against the build's rules).
    """

    status: ReviewStatus = "unreviewed"
    reviewer: str | None = None
    reason: str = ""
    edits: dict[int, str] = field(default_factory=dict)
    time: str | None = None
    history: list[tuple[int, str]] = field(default_factory=list)


def fold_reviews(decisions: list[ReviewDecision]) -> dict[str, Review]:
    """Each sample's :class:`Review` from its decisions in file order (latest wins)."""
    out: dict[str, Review] = {}
    for d in decisions:
        review = out.setdefault(d.sample_id, Review())
        if d.action == "reset":
            out[d.sample_id] = Review(reviewer=d.reviewer, time=d.time)
            continue
        review.reviewer, review.time = d.reviewer, d.time
        if d.action == "edit" and d.turn_index is not None and d.after is not None:
            review.edits[d.turn_index] = d.after
            review.history.append((d.turn_index, d.after))
            if review.status != "rejected":
                review.status = "edited"
        elif d.action == "accept":
            review.status, review.reason = "accepted", ""
        elif d.action == "reject":
            review.status, review.reason = "rejected", d.reason
    return out


def apply_edits(dialogue: DialogueRecord, review: Review, bounds: dict[str, Any], where: str = "") -> DialogueRecord:
    """``dialogue`` (as the build wrote it) with ``review``'s edits replayed in file order.

    Each edit is checked with the build's rules (:class:`DialogueRecord` under the run's turn
    ``bounds``: alternating roles, ``[OBJ]{focus}[SEG]`` once and only in the final answer, no
    empty message); one that breaks a rule or names a message that does not exist is logged
    as a warning (``where``: the reviews file) and skipped, so it never reaches an export.
    ``review.edits`` (and an ``edited`` status with no edit left) is set to what was applied.

    Returns:
        The edited dialogue (``dialogue`` itself when there is no valid edit).
    """
    applied: dict[int, str] = {}
    current = dialogue
    for index, text in review.history:
        if not 0 <= index < len(current.turns):
            log.warning(
                "%s: edit of %s message %d skipped: the dialogue has %d messages",
                where,
                dialogue.sample_id,
                index,
                len(current.turns),
            )
            continue
        data = current.model_dump()
        data["turns"][index]["content"] = text
        try:
            current = DialogueRecord.model_validate(data, context=bounds)
        except ValidationError as exc:
            first = exc.errors()[0]
            log.warning(
                "%s: edit of %s message %d skipped: %s",
                where,
                dialogue.sample_id,
                index,
                str(first.get("msg", "invalid")),
            )
            continue
        applied[index] = text
    review.edits = applied
    if not applied and review.status == "edited":
        review.status = "unreviewed"
    return current


@dataclass
class Sample:
    """A dialogue with everything known about it.

    Attributes:
        dialogue: the dialogue record, with reviewed edits applied to ``turns`` (the
            build's text is in ``original_turns``).
        original_turns: the turns as the build wrote them.
        image: the image record (path, size in pixels, regions).
        elements: step 1 record of the image.
        tree: step 2 record of the image (``None`` if absent).
        mask: the final ``(H, W)`` bool target mask as COCO RLE, or ``None`` when the
            sample has no mask yet: for a multi-target sample the union of ``masks``; for an
            empty-target one a mask without pixels (rule ``empty`` until annotators confirm it).
        masks: the final mask of each target in the dialogue's target order (one for a
            single-target sample, ``[]`` for an empty one, and ``[]`` while there is no mask).
        mask_rule: how ``mask`` was chosen (:data:`~prist_builder.records.curation.MaskRule`).
        mask_provenance: the :class:`FinalMask` record when annotators drew it.
        review: the review state.
        manifest: the run's ``manifest.json`` (config, versions), ``{}`` if absent.
    """

    dialogue: DialogueRecord
    original_turns: list[Turn]
    image: ImageRecord
    elements: ElementsRecord
    tree: TreeRecord | None
    mask: RLE | None
    mask_rule: MaskRule | None
    mask_provenance: FinalMask | None
    review: Review
    manifest: dict[str, Any]
    masks: list[RLE] = field(default_factory=list)

    @property
    def sample_id(self) -> str:
        """The run-unique sample id."""
        return self.dialogue.sample_id

    @property
    def kind(self) -> str:
        """``single``, ``multi`` or ``empty`` (:data:`~prist_builder.records.dialogue.TargetKind`)."""
        return self.dialogue.kind

    @property
    def finished(self) -> bool:
        """Has a final mask and was not rejected by a reviewer."""
        return self.mask is not None and self.review.status != "rejected"


def read_manifest(run: Path) -> dict[str, Any]:
    """``RUN/manifest.json`` as a dict, ``{}`` when the run has none."""
    path = Path(run) / MANIFEST_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


class RecordsByImage:
    """The records of a run's step file by image id, read from the file when asked for:
    only ``image_id -> byte offset`` is held, plus the last :data:`KEPT` records read (an
    image's dialogues are adjacent), so memory does not grow with the run's records. An
    image with several records gives its last one (as a dict built from the file would).

    Args:
        path: ``elements.jsonl`` or ``trees.jsonl`` (a missing file reads as empty).
        model: the record model, validated on read.
    """

    KEPT = 4

    def __init__(self, path: Path, model: type[ElementsRecord] | type[TreeRecord]) -> None:
        self.path, self.model = Path(path), model
        self.offsets: dict[str, int] = {}
        for offset, line in iter_lines(self.path):
            image_id = line_image_id(line)
            self.offsets[image_id if image_id is not None else json.loads(line)["image_id"]] = offset
        self._kept: OrderedDict[str, Any] = OrderedDict()

    def get(self, image_id: str) -> Any:
        """The image's record, or ``None`` when the file has none.

        Raises:
            pydantic.ValidationError: the record is invalid.
        """
        if image_id in self._kept:
            self._kept.move_to_end(image_id)
            return self._kept[image_id]
        offset = self.offsets.get(image_id)
        if offset is None:
            return None
        record = self.model.model_validate_json(read_line_at(self.path, offset))
        self._kept[image_id] = record
        if len(self._kept) > self.KEPT:
            self._kept.popitem(last=False)
        return record


def iter_samples(run: Path) -> Iterator[Sample]:
    """Every dialogue of a run folder as a :class:`Sample`, in ``dialogues.jsonl`` order.
    Streams: the elements and tree of a dialogue are read when it comes (see
    :class:`RecordsByImage`), so a pass holds a few records, not the run's.

    Reviewers' edits are checked again with the build's rules (:func:`apply_edits`): a
    hand-written line that breaks one is logged as a warning and skipped.

    Raises:
        FileNotFoundError: ``run`` has no ``dialogues.jsonl``.
        prist_builder.appendlog.LogLineError: a curation log has a broken complete line.
        pydantic.ValidationError: a build record is invalid.
    """
    run = Path(run)
    if not (run / "dialogues.jsonl").exists():
        raise FileNotFoundError(f"{run}: not a run folder (no dialogues.jsonl)")
    bounds = run_bounds(run)
    manifest = read_manifest(run)
    elements = RecordsByImage(run / "elements.jsonl", ElementsRecord)
    trees = RecordsByImage(run / "trees.jsonl", TreeRecord)
    finals = appendlog.latest(appendlog.read(run / FINAL_MASKS_FILE, FinalMask), lambda r: r.sample_id)
    reviews = fold_reviews(list(appendlog.read(run / REVIEWS_FILE, ReviewDecision)))
    where = str(run / REVIEWS_FILE)
    for _, line in iter_lines(run / "dialogues.jsonl"):
        dialogue = DialogueRecord.model_validate_json(line, context=bounds)
        element_record = elements.get(dialogue.image_id)
        if element_record is None:
            continue
        review = reviews.get(dialogue.sample_id, Review())
        tree, final = trees.get(dialogue.image_id), finals.get(dialogue.sample_id)
        yield join_sample(dialogue, element_record, tree, final, review, manifest, bounds, where)


def join_sample(
    dialogue: DialogueRecord,
    elements: ElementsRecord,
    tree: TreeRecord | None,
    final: FinalMask | None,
    review: Review,
    manifest: dict[str, Any],
    bounds: dict[str, Any],
    where: str = "",
) -> Sample:
    """One :class:`Sample` from its parts (what :func:`iter_samples` does for each dialogue).

    The review's edits are replayed with :func:`apply_edits` (``where`` names the reviews
    file in its warnings); the mask is the final mask, else the grounded one, else none
    (:func:`sample_masks`).
    """
    original = list(dialogue.turns)
    if review.history:
        dialogue = apply_edits(dialogue, review, bounds, where)
    mask, masks, rule = sample_masks(dialogue, final, elements.image.height, elements.image.width)
    return Sample(
        dialogue=dialogue,
        original_turns=original,
        image=elements.image,
        elements=elements,
        tree=tree,
        mask=mask,
        mask_rule=rule,
        mask_provenance=final,
        review=review,
        manifest=manifest,
        masks=masks,
    )


def sample_masks(
    dialogue: DialogueRecord, final: FinalMask | None, height: int, width: int
) -> tuple[RLE | None, list[RLE], MaskRule | None]:
    """A sample's mask (the union), its per-target masks and the rule that chose them.

    The final mask wins (its ``masks`` per target for a multi-target sample); else the grounded
    masks of the build; else, for an empty-target sample, a mask of ``height`` x ``width``
    pixels with none set (rule ``empty``); else nothing. A multi-target sample whose targets
    are not all grounded has no mask until annotated.
    """
    if final is not None:
        if dialogue.kind == "multi":
            return final.mask, list(final.masks or []), final.rule
        if dialogue.kind == "empty":
            return final.mask, [], final.rule
        return final.mask, [final.mask], final.rule
    if dialogue.kind == "empty":
        if not (height and width):
            return None, [], None
        return empty_rle(height, width), [], "empty"
    if dialogue.kind == "multi":
        per_target = [t.mask for t in dialogue.targets]
        if dialogue.mask is None or any(m is None for m in per_target):
            return None, [], None
        return dialogue.mask, [m for m in per_target if m is not None], "grounded"
    if dialogue.mask is not None:
        return dialogue.mask, [dialogue.mask], "grounded"
    return None, [], None


def empty_rle(height: int, width: int) -> RLE:
    """COCO compressed RLE of a ``height`` x ``width`` mask with no pixel set."""
    from prist_builder.annotation.masks import union_rle

    return union_rle([], height, width)
