"""Build validated records from provider content: shared by every provider."""

from __future__ import annotations

from collections.abc import Sequence

from prist_builder.providers.base import StepContext
from prist_builder.records import DialogueRecord, ElementsRecord, Target, TreePath, Turn


def sample_id(image_id: str, element_id: str) -> str:
    """The id of the dialogue about ``element_id`` in ``image_id``: ``"<image_id>-<element_id>"``."""
    return f"{image_id}-{element_id}"


def _validated(
    elements: ElementsRecord,
    path: TreePath,
    turns: Sequence[Turn | dict[str, str]],
    provider: str,
    ctx: StepContext,
    **fields: object,
) -> DialogueRecord:
    """The dialogue record of ``path`` with the fields every kind shares, plus ``fields``, validated."""
    return DialogueRecord.model_validate(
        {
            "sample_id": sample_id(elements.image_id, path.target_element_id),
            "image_id": elements.image_id,
            "provider": provider,
            "turns": [t if isinstance(t, dict) else t.model_dump() for t in turns],
            "target_element_id": path.target_element_id,
            "reasoning_question": path.reasoning_question,
            "path_node_ids": path.node_ids,
            **fields,
        },
        context=ctx.validation(),
    )


def make_dialogue(
    elements: ElementsRecord,
    path: TreePath,
    turns: Sequence[Turn | dict[str, str]],
    focus: str,
    provider: str,
    ctx: StepContext,
) -> DialogueRecord:
    """A validated dialogue record for one tree path, its target mask taken from the source region.

    The mask is the target element's region (COCO RLE), or ``None`` when the element is
    not grounded in a region yet (bare images: the mask is annotated later).

    Raises:
        pydantic.ValidationError: the dialogue breaks a rule (turn bounds, final turn).
    """
    element = elements.element(path.target_element_id)
    region_ids = [element.region_id] if element.region_id else []
    mask = elements.image.region(element.region_id).mask if element.region_id else None
    return _validated(
        elements,
        path,
        turns,
        provider,
        ctx,
        focus=focus,
        target_region_ids=region_ids,
        mask=mask.model_dump() if mask else None,
    )


def make_multi_dialogue(
    elements: ElementsRecord,
    path: TreePath,
    turns: Sequence[Turn | dict[str, str]],
    focus: str,
    foci: Sequence[str],
    provider: str,
    ctx: StepContext,
) -> DialogueRecord:
    """A validated multi-target dialogue record (issue 22) for a ``multi`` tree path.

    ``foci`` are the targets' focus phrases in the path's ``target_element_ids`` order (the
    order the final answer names them); ``focus`` describes the set. Each target's mask is
    its element's region; the record's mask is their union when every target is grounded,
    else ``None`` (bare images: annotated later).

    Raises:
        pydantic.ValidationError: the final answer does not name the targets in order, or
            another dialogue rule breaks.
    """
    targets = []
    for element_id, target_focus in zip(path.target_element_ids, foci, strict=True):
        element = elements.element(element_id)
        mask = elements.image.region(element.region_id).mask if element.region_id else None
        targets.append(
            Target(
                element_id=element_id,
                focus=target_focus,
                region_ids=[element.region_id] if element.region_id else [],
                mask=mask,
            )
        )
    masks = [t.mask for t in targets if t.mask is not None]
    from prist_builder.annotation.masks import union_rle  # pycocotools: when a multi-target sample is written

    union = union_rle(masks) if masks and len(masks) == len(targets) else None
    return _validated(
        elements,
        path,
        turns,
        provider,
        ctx,
        focus=focus,
        target_region_ids=[r for t in targets for r in t.region_ids] if union is not None else [],
        mask=union.model_dump() if union else None,
        kind="multi",
        targets=[t.model_dump() for t in targets],
    )


def make_empty_dialogue(
    elements: ElementsRecord,
    path: TreePath,
    turns: Sequence[Turn | dict[str, str]],
    provider: str,
    ctx: StepContext,
) -> DialogueRecord:
    """A validated empty-target dialogue record (issue 22) for an ``empty`` tree path: its
    ``focus`` is the absent thing (``path.absent``), no mask, no region.

    Raises:
        pydantic.ValidationError: the final answer holds ``[OBJ]``/``[SEG]``, or another rule breaks.
    """
    return _validated(elements, path, turns, provider, ctx, focus=path.absent, kind="empty")
