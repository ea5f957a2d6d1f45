"""A model's answers for one sample: one line of a predictions JSONL file.

Written by ``prist predict`` (or any other model's script) and read by ``prist evaluate``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from prist_builder.records.rle import RLE


class Prediction(BaseModel):
    """What a model answered for one reference sample.

    Attributes:
        sample_id: the reference sample's ``sample_id``.
        responses: the generated assistant messages, one per assistant turn of the
            reference dialogue, in order (the last answers the segmentation turn).
        masks: one ``(H, W)`` bool mask as COCO RLE per ``[SEG]`` the final answer produced,
            in order; ``None`` when the writer gave only ``mask`` (older files, other models'
            scripts), ``[]`` when the answer held no ``[SEG]`` (an empty target).
        mask: the predicted ``(H, W)`` bool target mask as COCO RLE, in the reference
            image's frame: the union of ``masks`` when those are given; ``None`` when the
            model gave no mask (no ``[SEG]``, or a general MLLM whose last response holds a
            ``<box>`` or "no detected", which the scorer parses).
    """

    model_config = ConfigDict(extra="ignore")

    sample_id: str = Field(min_length=1)
    responses: list[str] = Field(default_factory=list)
    masks: list[RLE] | None = None
    mask: RLE | None = None

    def target_masks(self) -> list[RLE]:
        """The predicted mask of each target, in order: ``masks`` when given, else ``[mask]``,
        else ``[]`` (a line with only ``mask`` reads as one target, or none when it is null)."""
        if self.masks is not None:
            return list(self.masks)
        return [] if self.mask is None else [self.mask]
