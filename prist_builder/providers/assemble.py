"""Build validated records from provider content: shared by every provider."""

from __future__ import annotations

from collections.abc import Sequence

from prist_builder.providers.base import StepContext
from prist_builder.records import DialogueRecord, ElementsRecord, TreePath, Turn


def sample_id(image_id: str, element_id: str) -> str:
    """The id of the dialogue about ``element_id`` in ``image_id``: ``"<image_id>-<element_id>"``."""
    return f"{image_id}-{element_id}"


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
    return DialogueRecord.model_validate(
        {
            "sample_id": sample_id(elements.image_id, element.element_id),
            "image_id": elements.image_id,
            "provider": provider,
            "turns": [t if isinstance(t, dict) else t.model_dump() for t in turns],
            "focus": focus,
            "target_element_id": element.element_id,
            "target_region_ids": region_ids,
            "mask": mask.model_dump() if mask else None,
            "reasoning_question": path.reasoning_question,
            "path_node_ids": path.node_ids,
        },
        context=ctx.validation(),
    )
