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
        mask: the predicted ``(H, W)`` bool target mask as COCO RLE, in the reference
            image's frame; ``None`` when the model gave no mask (e.g. a general MLLM whose
            last response holds a ``<box>`` or "no detected", which the scorer parses).
    """

    model_config = ConfigDict(extra="ignore")

    sample_id: str = Field(min_length=1)
    responses: list[str] = Field(default_factory=list)
    mask: RLE | None = None
