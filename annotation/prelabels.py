"""SAM pre-labels stored in the run: ``RUN/prelabels.jsonl`` (append-only, latest per sample wins).

A pre-label is the outline an annotator starts from when the build has no grounded
region: ``prist annotate export`` pre-fills it as editable polygons. It never becomes a
final mask by itself. A multi-target sample gets one pre-label per target (``target``, the
1-based number in answer order; not written for a single-target sample's line).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from prist_builder import appendlog
from prist_builder.records.rle import RLE

PRELABELS_FILE = "prelabels.jsonl"
"""``RUN/prelabels.jsonl``: one :class:`Prelabel` per prompted sample and run of ``prist annotate prelabel``."""


class Prelabel(BaseModel):
    """SAM's best mask for one sample's target.

    Attributes:
        sample_id: the dialogue's ``sample_id``.
        mask: ``(H, W)`` bool mask as COCO RLE, in the image's EXIF-corrected frame.
        polygons: the mask as Labelme polygons (``[[x, y], ...]`` pixels) after simplification.
        polygon_iou: IoU of the polygons re-rasterised against ``mask``.
        box: the prompt box ``[x, y, w, h]`` in pixels.
        score: SAM's predicted IoU of the chosen mask.
        model: the model folder it came from.
        time: ISO 8601 UTC time.
        target: multi-target sample: the target's 1-based number in answer order; ``None``
            (not written) for a single-target sample.
    """

    model_config = ConfigDict(extra="forbid")

    sample_id: str
    mask: RLE
    polygons: list[list[list[float]]]
    polygon_iou: float = Field(ge=0.0, le=1.0)
    box: list[float] = Field(min_length=4, max_length=4)
    score: float
    model: str
    time: str
    target: int | None = Field(default=None, ge=1)

    @model_serializer(mode="wrap")
    def _omit_target(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = handler(self)
        if data.get("target", 0) is None:
            del data["target"]
        return data


def _latest(run: Path) -> dict[tuple[str, int | None], Prelabel]:
    records = appendlog.read(Path(run) / PRELABELS_FILE, Prelabel)
    latest = appendlog.latest(records, lambda p: f"{p.sample_id}\0{p.target or ''}")
    return {(p.sample_id, p.target): p for p in latest.values()}


def read_prelabels(run: Path) -> dict[str, Prelabel]:
    """The latest pre-label of each single-target sample (``{}`` when none was made)."""
    return {sample_id: p for (sample_id, target), p in _latest(run).items() if target is None}


def read_target_prelabels(run: Path) -> dict[tuple[str, int], Prelabel]:
    """The latest pre-label of each target of multi-target samples, keyed ``(sample_id, target number)``."""
    return {(sample_id, target): p for (sample_id, target), p in _latest(run).items() if target is not None}
