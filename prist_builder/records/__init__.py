"""Pydantic v2 records of every pipeline step, and the JSON Schema of each."""

from __future__ import annotations

from pydantic import BaseModel

from prist_builder.records.dialogue import DialogueRecord, Target, TargetKind, Turn
from prist_builder.records.elements import Element, ElementAttributes, ElementsRecord
from prist_builder.records.image import ImageRecord, SourceRegion
from prist_builder.records.reject import Reject
from prist_builder.records.rle import RLE
from prist_builder.records.tree import Relation, TreeNode, TreePath, TreeRecord

SCHEMAS: dict[str, type[BaseModel]] = {
    "image": ImageRecord,
    "elements": ElementsRecord,
    "trees": TreeRecord,
    "dialogues": DialogueRecord,
    "rejects": Reject,
}
"""Record model of each step output, by the name ``prist schema`` takes."""

__all__ = [
    "RLE",
    "SCHEMAS",
    "DialogueRecord",
    "Element",
    "ElementAttributes",
    "ElementsRecord",
    "ImageRecord",
    "Reject",
    "Relation",
    "SourceRegion",
    "Target",
    "TargetKind",
    "TreeNode",
    "TreePath",
    "TreeRecord",
    "Turn",
]
