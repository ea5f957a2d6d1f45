"""COCO run-length encoding (RLE) of binary masks, as a pydantic model."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator


class RLE(BaseModel):
    """A binary mask in COCO compressed RLE form.

    Attributes:
        size: ``[height, width]`` of the mask in pixels.
        counts: the compressed run lengths as an ASCII string (pycocotools' format),
            column-major as COCO defines it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    size: list[int] = Field(min_length=2, max_length=2, description="[height, width] in pixels")
    counts: str = Field(description="COCO compressed RLE counts (ASCII)")

    @field_validator("size")
    @classmethod
    def _positive(cls, value: list[int]) -> list[int]:
        if any(v <= 0 for v in value):
            raise ValueError(f"mask size must be positive, got {value}")
        return value
