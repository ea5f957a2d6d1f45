"""``prist export --format prist-json``: the authors' released layout, one JSON file per split.

``OUT/{train,validation,test}.json``: a list of ``{"img_id": file name, "dialogue":
[{"from": "human"|"gpt", "value": str}], "focus": str}``, written as the authors wrote
theirs (4-space indent, UTF-8 unescaped, no final newline), so that importing their
``test.json`` and exporting it back gives the same bytes. Turn texts go out exactly as the
run holds them (review edits applied); no image is written.

Target kinds: the format carries no mask and has no field for the kind, so a multi- or
empty-target entry gets one more key, ``"target_kind"`` (single-target entries stay exactly as
the authors' are). A multi-target sample's final answer holds one ``[OBJ]{focus}[SEG]`` per
target and ``focus`` describes the set; an empty-target sample's final answer holds no
``[SEG]`` and ``focus`` names the asked-for thing the image does not hold. ``prist import
prist-json`` reads both back as those kinds
(:func:`prist_builder.interop.prist_json.answer_kind`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prist_builder.export.features import ROLE_TO_LLAVA
from prist_builder.export.selection import Selection
from prist_builder.export.splits import SPLITS
from prist_builder.exported import TARGET_KIND_COLUMN
from prist_builder.samples import Sample

KIND_KEY = TARGET_KIND_COLUMN
"""The key added to a multi- or empty-target entry (``prist import prist-json`` reads it): the
export's column name."""

JSON_INDENT = 4
"""Indent of the authors' files."""


def entry(sample: Sample) -> dict[str, Any]:
    """One released-format entry; ``img_id`` is the image's file name; ``target_kind`` only
    for a multi- or empty-target sample."""
    out = {
        "img_id": Path(sample.image.path).name,
        "dialogue": [{"from": ROLE_TO_LLAVA[t.role], "value": t.content} for t in sample.dialogue.turns],
        "focus": sample.dialogue.focus,
    }
    if sample.kind != "single":
        out[KIND_KEY] = sample.kind
    return out


def write_prist_json(selection: Selection, out: Path) -> dict[str, Path]:
    """Write ``out/<split>.json`` for every split (``[]`` when empty); returns the paths by split."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name in SPLITS:
        path = out / f"{name}.json"
        text = json.dumps([entry(s) for s in selection.splits[name]], indent=JSON_INDENT, ensure_ascii=False)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
        paths[name] = path
    return paths
