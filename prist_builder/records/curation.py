"""Records of the curation steps that follow a build: masks drawn by annotators, the final
mask of each sample, and reviewers' decisions on the dialogues (paper section 3.3, B.1).

Each lives in its own append-only JSONL file of the run folder (see
:mod:`prist_builder.appendlog`); for a given sample the latest line wins and earlier lines
stay as history. Nothing here rewrites the build's own files.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from prist_builder.records.rle import RLE

MASKS_FILE = "annotations.jsonl"
"""``RUN/annotations.jsonl``: one :class:`MaskAnnotation` per imported (sample, annotator) file."""
FINAL_MASKS_FILE = "final_masks.jsonl"
"""``RUN/final_masks.jsonl``: one :class:`FinalMask` per decision; the latest per sample wins."""
REVIEWS_FILE = "reviews.jsonl"
"""``RUN/reviews.jsonl``: one :class:`ReviewDecision` per action; the latest per sample wins."""

MaskRule = Literal["adjudicated", "iou-winner", "annotator-a", "single", "grounded", "empty"]
"""How a final mask was chosen: a third annotator's mask (``adjudicated``); the better of
two masks by agreement (``iou-winner``); the first annotator's (``annotator-a``); the only
annotation there is (``single``); the source region of a grounded build (``grounded``); no
pixels at all, for an empty-target sample nobody annotated yet (``empty``)."""


def _without_none_masks(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` without a ``masks: None`` entry (single-target lines stay as they were)."""
    if data.get("masks", ()) is None:
        del data["masks"]
    return data


ReviewAction = Literal["accept", "reject", "edit", "reset"]


class MaskAnnotation(BaseModel):
    """One annotator's mask for one sample, as imported from their Labelme file.

    Attributes:
        sample_id: the dialogue's ``sample_id`` (never matched by focus text).
        annotator: the annotator's name.
        mask: the ``(H, W)`` bool target mask in COCO RLE, in the image's EXIF-corrected frame.
        source_file: the Labelme file it was read from.
        sha256: hex digest of that file's bytes.
        time: ISO 8601 UTC time of the import.
        role: ``annotator`` for the two independent masks, ``adjudicator`` for a third
            annotator's resolution.
        masks: for a multi-target sample, one mask per target in the dialogue's target order
            (``mask`` is then their union); ``None`` (not written) otherwise.
    """

    model_config = ConfigDict(extra="forbid")

    sample_id: str
    annotator: str = Field(min_length=1)
    mask: RLE
    source_file: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    time: str
    role: Literal["annotator", "adjudicator"] = "annotator"
    masks: list[RLE] | None = None

    @model_serializer(mode="wrap")
    def _omit_masks(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return _without_none_masks(handler(self))


class FinalMask(BaseModel):
    """The mask later steps (export, training, evaluation) use for a sample.

    Attributes:
        sample_id: the dialogue's ``sample_id``.
        mask: the final ``(H, W)`` bool mask in COCO RLE.
        rule: how it was chosen (:data:`MaskRule`).
        annotators: whose masks took part, in order (the first is annotator A).
        iou: IoU between the two independent masks, if there were two.
        kappa: Cohen's kappa between them over all pixels, if there were two.
        time: ISO 8601 UTC time of the decision.
        masks: for a multi-target sample, the final mask of each target in the dialogue's
            target order (``mask`` is their union); ``None`` (not written) otherwise. An
            empty-target sample's final ``mask`` has no pixels.
    """

    model_config = ConfigDict(extra="forbid")

    sample_id: str
    mask: RLE
    rule: MaskRule
    annotators: list[str] = Field(default_factory=list)
    iou: float | None = None
    kappa: float | None = None
    time: str
    masks: list[RLE] | None = None

    @model_serializer(mode="wrap")
    def _omit_masks(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return _without_none_masks(handler(self))


class ReviewDecision(BaseModel):
    """One reviewer action on a sample's dialogue (``prist review``).

    ``accept`` and ``reject`` set the sample's status; ``edit`` replaces one message's text
    (``turn_index`` indexes ``DialogueRecord.turns``) and leaves the status ``edited`` until
    an accept; ``reset`` drops every earlier decision on the sample.

    Attributes:
        sample_id: the dialogue's ``sample_id``.
        reviewer: who decided.
        time: ISO 8601 UTC time.
        action: see above.
        reason: why (required in spirit for ``reject``).
        turn_index: the edited message, for ``edit``.
        before, after: the message's text before and after an ``edit``.
    """

    model_config = ConfigDict(extra="forbid")

    sample_id: str
    reviewer: str = Field(min_length=1)
    time: str
    action: ReviewAction
    reason: str = ""
    turn_index: int | None = Field(default=None, ge=0)
    before: str | None = None
    after: str | None = None
