"""SAM pre-labels stored in the run: ``RUN/prelabels.jsonl`` (append-only, latest per sample wins).

A pre-label is the outline an annotator starts from when the build has no grounded
region: ``prist annotate export`` pre-fills it as editable polygons. It never becomes a
final mask by itself.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

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


def read_prelabels(run: Path) -> dict[str, Prelabel]:
    """The latest pre-label of each sample (``{}`` when none was made)."""
    return appendlog.latest(appendlog.read(Path(run) / PRELABELS_FILE, Prelabel), lambda p: p.sample_id)
