"""Step 3 output: one multi-turn dialogue ending in a segmentation turn (section 3.2.3)."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationInfo,
    model_serializer,
    model_validator,
)

from prist_builder.records.limits import (
    EMPTY_ID_PREFIX,
    MAX_TURNS,
    MIN_TURNS,
    MULTI_ID_SEPARATOR,
    OBJ_TOKEN,
    SEG_TOKEN,
)
from prist_builder.records.rle import RLE

_SEG_ANSWER = re.compile(re.escape(OBJ_TOKEN) + r"(.*?)" + re.escape(SEG_TOKEN), re.DOTALL)

DialogueForm = Literal["prist", "released"]
"""How the final answer is written: ``prist`` reads ``[OBJ]{focus}[SEG]`` (section 4.1);
``released`` is the form of the authors' released split, one ``[SEG]`` and no ``[OBJ]``
(``"Certainly, [SEG]."``), accepted on import and never rewritten."""


TargetKind = Literal["single", "multi", "empty"]
"""What the final answer segments (:data:`~prist_builder.records.limits.TARGET_KINDS`)."""


class Target(BaseModel):
    """One target of a multi-target sample (a single-target sample keeps its one target in
    the record's own ``focus``/``target_element_id``/``target_region_ids``/``mask`` fields).

    Attributes:
        element_id: the step-1 element it is.
        focus: its description, as its ``[OBJ]{focus}[SEG]`` in the final answer reads.
        region_ids: source regions whose union is its mask (empty when still to annotate).
        mask: its ``(H, W)`` bool mask as COCO RLE, or ``None`` when not annotated yet.
    """

    model_config = ConfigDict(extra="forbid")

    element_id: str = Field(min_length=1)
    focus: str = Field(min_length=1)
    region_ids: list[str] = Field(default_factory=list)
    mask: RLE | None = None


class Turn(BaseModel):
    """One message of a dialogue."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["user", "assistant"]
    content: str = Field(min_length=1)


class DialogueRecord(BaseModel):
    """One sample ``D_i``: a dialogue about one target: one line of ``dialogues.jsonl``.

    ``turns`` holds messages; a *turn* in the paper's sense (Table 2) is one user message
    and the assistant's answer, so a dialogue of ``n`` turns has ``2n`` messages.

    Validation rules: messages alternate user/assistant starting with the user; the number
    of turns lies in ``[min_turns, max_turns]`` (context, default 3..7, Table 2); only the
    final assistant message holds the segmentation template, exactly once, and it reads
    ``[OBJ]{focus}[SEG]`` (section 4.1). A record of ``form="released"`` (imported from the
    authors' released split) instead holds ``[SEG]`` exactly once and no ``[OBJ]`` in its
    final answer, which therefore does not repeat the focus.

    Attributes:
        sample_id: id unique within the run, ``"<image_id>-<element_id>"``.
        image_id: the image the dialogue is about.
        provider: the provider that wrote it.
        turns: the messages.
        focus: the description of the target that the final answer segments.
        target_element_id: the element of step 1 that is the target.
        target_region_ids: source regions whose union is the target mask; empty when the
            mask still has to be annotated.
        mask: the target's ``(H, W)`` bool mask as COCO RLE, or ``None`` when not annotated yet.
        reasoning_question: the complex question ``Q_i`` the dialogue unfolds.
        path_node_ids: the reasoning-tree path the dialogue walks.
        form: how the final answer is written (:data:`DialogueForm`), ``prist`` unless imported.
        kind: ``single`` (the paper's data), ``multi`` or ``empty`` (:data:`TargetKind`; the
            paper's Limitations section, GRES). Written only when not ``single``.
        targets: for ``multi`` only, the targets in the order the final answer names them
            (two or more); ``focus`` then describes the set, ``target_element_id`` is their ids
            joined by ``+``, ``target_region_ids`` the union of theirs and ``mask`` their union
            (or ``None``). An ``empty`` sample has no targets: ``focus`` names the asked-for
            thing the image does not hold, ``target_element_id`` starts with ``none`` and there
            is no mask or region; its final answer holds no ``[OBJ]``/``[SEG]``.
            Written only when not empty.

    Raises (on validation): ``ValueError`` naming the first broken rule.
    """

    model_config = ConfigDict(extra="forbid")

    sample_id: str
    image_id: str
    provider: str
    turns: list[Turn] = Field(min_length=2)
    focus: str = Field(min_length=1)
    target_element_id: str
    target_region_ids: list[str] = Field(default_factory=list)
    mask: RLE | None = None
    reasoning_question: str = ""
    path_node_ids: list[str] = Field(default_factory=list)
    form: DialogueForm = "prist"
    kind: TargetKind = "single"
    targets: list[Target] = Field(default_factory=list)

    @model_serializer(mode="wrap")
    def _omit_defaults(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Write ``form``, ``kind`` and ``targets`` only when they differ from the default, so
        that a single-target build's records stay byte-identical to those written before the
        fields existed."""
        data = handler(self)
        if data.get("form") == "prist":
            del data["form"]
        if data.get("kind") == "single":
            del data["kind"]
        if not data.get("targets", True):
            del data["targets"]
        return data

    def target_list(self) -> list[Target]:
        """The sample's targets in answer order: one for ``single``, two or more for ``multi``,
        none for ``empty``."""
        if self.kind == "multi":
            return list(self.targets)
        if self.kind == "empty":
            return []
        return [
            Target(
                element_id=self.target_element_id,
                focus=self.focus,
                region_ids=list(self.target_region_ids),
                mask=self.mask,
            )
        ]

    @property
    def num_turns(self) -> int:
        """Number of question/answer turns (messages // 2)."""
        return len(self.turns) // 2

    @model_validator(mode="after")
    def _check_dialogue(self, info: ValidationInfo) -> DialogueRecord:
        context: dict[str, Any] = info.context or {}
        min_turns = int(context.get("min_turns", MIN_TURNS))
        max_turns = int(context.get("max_turns", MAX_TURNS))
        if len(self.turns) % 2:
            raise ValueError(f"{len(self.turns)} messages: a dialogue ends with the assistant's answer")
        for index, turn in enumerate(self.turns):
            expected = "user" if index % 2 == 0 else "assistant"
            if turn.role != expected:
                raise ValueError(f"turns[{index}].role is {turn.role!r}; expected {expected!r}")
        if not min_turns <= self.num_turns <= max_turns:
            raise ValueError(f"{self.num_turns} turns; expected {min_turns} to {max_turns}")
        for index, turn in enumerate(self.turns[:-1]):
            if SEG_TOKEN in turn.content or OBJ_TOKEN in turn.content:
                raise ValueError(f"turns[{index}] uses {OBJ_TOKEN}/{SEG_TOKEN}; only the final answer may")
        final = self.turns[-1].content
        if self.kind != "single" or self.targets:
            return self._check_kind(final)
        if self.form == "released":
            if final.count(SEG_TOKEN) != 1 or OBJ_TOKEN in final:
                raise ValueError(
                    f"a released-form final answer must hold {SEG_TOKEN} once and no {OBJ_TOKEN}: {final!r}"
                )
            return self._check_mask()
        found = _SEG_ANSWER.findall(final)
        if len(found) != 1 or final.count(SEG_TOKEN) != 1 or final.count(OBJ_TOKEN) != 1:
            raise ValueError(f"the final answer must hold {OBJ_TOKEN}<focus>{SEG_TOKEN} exactly once: {final!r}")
        if found[0].strip() != self.focus.strip():
            raise ValueError(f"the final answer segments {found[0].strip()!r} but focus is {self.focus!r}")
        return self._check_mask()

    def _check_mask(self) -> DialogueRecord:
        if self.mask is not None and not self.target_region_ids:
            raise ValueError("a mask is given but target_region_ids is empty")
        return self

    def _check_kind(self, final: str) -> DialogueRecord:
        """The final answer against the target count of a ``multi`` or ``empty`` sample."""
        if self.kind == "single":
            raise ValueError("targets is set but kind is 'single': a single target lives in focus/mask")
        if self.kind == "empty":
            if self.targets:
                raise ValueError(f"kind 'empty' but {len(self.targets)} targets are listed")
            if SEG_TOKEN in final or OBJ_TOKEN in final:
                raise ValueError(f"an empty-target final answer must hold no {OBJ_TOKEN}/{SEG_TOKEN}: {final!r}")
            if not self.target_element_id.startswith(EMPTY_ID_PREFIX):
                raise ValueError(f"an empty-target sample's target_element_id must start with {EMPTY_ID_PREFIX!r}")
            if self.mask is not None or self.target_region_ids:
                raise ValueError("an empty-target sample has no mask and no target_region_ids")
            return self
        if len(self.targets) < 2:
            raise ValueError(f"kind 'multi' needs two or more targets, got {len(self.targets)}")
        found = [text.strip() for text in _SEG_ANSWER.findall(final)]
        expected = [t.focus.strip() for t in self.targets]
        if final.count(SEG_TOKEN) != len(expected) or final.count(OBJ_TOKEN) != len(expected):
            raise ValueError(
                f"the final answer holds {final.count(SEG_TOKEN)} {SEG_TOKEN} for {len(expected)} targets: {final!r}"
            )
        if found != expected:
            raise ValueError(f"the final answer segments {found} but the targets' foci are {expected}")
        joined = MULTI_ID_SEPARATOR.join(t.element_id for t in self.targets)
        if self.target_element_id != joined:
            raise ValueError(f"target_element_id is {self.target_element_id!r}; a multi-target sample's is {joined!r}")
        return self._check_mask()
