"""Rejected inputs: one line of ``rejects.jsonl`` per input a step could not use."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from prist_builder.records.steps import StepName


class Reject(BaseModel):
    """An input that a step set aside, with the reason, so that nothing is lost silently.

    Attributes:
        input_id: the unit of work (an image id, or ``"<image_id>/<part>"`` for a part of it).
        image_id: the image concerned, when known.
        step: the pipeline step that rejected it.
        reason: one line naming the file and the field at fault.
        source_file: the file the bad input came from, when there is one.
        raw: the offending payload (a Labelme shape, a model answer, ...), for inspection.
    """

    model_config = ConfigDict(extra="forbid")

    input_id: str
    image_id: str | None = None
    step: StepName
    reason: str = Field(min_length=1)
    source_file: str | None = None
    raw: Any = None
