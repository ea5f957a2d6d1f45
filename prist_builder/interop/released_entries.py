"""Entries of the released PRIST JSON format, one at a time: is an entry well formed, what its
final answer segments (one target, several, none) and its :class:`DialogueRecord` (read by
:mod:`prist_builder.interop.prist_json`)."""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from prist_builder.annotation.masks import union_rle
from prist_builder.exported import TARGET_KIND_COLUMN
from prist_builder.records import DialogueRecord, SourceRegion, Turn
from prist_builder.records.limits import EMPTY_ID_PREFIX, MAX_TURNS, MIN_TURNS, MULTI_ID_SEPARATOR, OBJ_TOKEN, SEG_TOKEN

PROVIDER = "prist-json"
"""Provider and source name of imported records."""

FROM_TO_ROLE = {"human": "user", "gpt": "assistant"}
"""Speaker names of the released format and our turn roles."""

_TARGET = re.compile(re.escape(OBJ_TOKEN) + r"(.*?)" + re.escape(SEG_TOKEN), re.DOTALL)
"""One ``[OBJ]{focus}[SEG]`` of a final answer."""

KIND_KEY = TARGET_KIND_COLUMN
"""Key ``prist export --format prist-json`` adds to a multi- or empty-target entry (the released
format has no field for either; single-target entries stay as the authors wrote theirs)."""


def entry_problem(entry: Any) -> str | None:
    """Why one entry of the file cannot be imported (``"dialogue[2] is not {from, value}"``), or
    ``None`` when it is well formed."""
    if not isinstance(entry, dict):
        return "not an object"
    if not isinstance(entry.get("img_id"), str) or not entry["img_id"]:
        return "img_id is missing or not a string"
    if not isinstance(entry.get("focus"), str) or not entry["focus"]:
        return "focus is missing or empty"
    messages = entry.get("dialogue")
    if not isinstance(messages, list) or not messages:
        return "dialogue is missing or empty"
    if entry.get(KIND_KEY, "single") not in ("single", "multi", "empty"):
        return f"{KIND_KEY} is {entry[KIND_KEY]!r}; expected single, multi or empty"
    for index, message in enumerate(messages):
        if (
            not isinstance(message, dict)
            or message.get("from") not in FROM_TO_ROLE
            or not isinstance(message.get("value"), str)
        ):
            return f"dialogue[{index}] is not {{from: human|gpt, value: str}}"
    declared = entry.get(KIND_KEY)
    if declared is not None and answer_kind(entry)[0] != declared:
        return f"{KIND_KEY} is {declared!r} but the final answer reads as {answer_kind(entry)[0]!r}"
    return None


def turn_bounds(entries: list[dict]) -> dict[str, int]:
    """The validation context's turn bounds: the defaults (3..7) widened to the entries' own."""
    turns = [len(e["dialogue"]) // 2 for e in entries] or [MIN_TURNS]
    return {"min_turns": min(MIN_TURNS, *turns), "max_turns": max(MAX_TURNS, *turns)}


def answer_kind(entry: dict) -> tuple[str, list[str]]:
    """What an entry's final answer segments: ``("multi", [focus per target])`` when it holds two
    or more ``[OBJ]{focus}[SEG]``; ``("empty", [])`` when the entry says ``"target_kind":
    "empty"`` (the released format has no such entry: an answer without ``[SEG]`` there is a
    broken entry, rejected); else ``("single", [entry focus])`` (the released ``Certainly,
    [SEG].`` included). The validators of :class:`DialogueRecord` check the answer against it."""
    if entry.get(KIND_KEY) == "empty":
        return "empty", []
    final = entry["dialogue"][-1]["value"] if entry["dialogue"] else ""
    seg, obj = final.count(SEG_TOKEN), final.count(OBJ_TOKEN)
    if seg >= 2 and obj == seg:
        return "multi", [text.strip() for text in _TARGET.findall(final)]
    return "single", [entry["focus"]]


def entry_dialogue(
    entry: dict,
    sample_id: str,
    image_id: str,
    element_ids: list[str],
    regions: list[SourceRegion] | None,
    bounds: dict[str, int],
) -> DialogueRecord:
    """The record of one entry; ``element_ids`` and ``regions`` (or ``None``) per target."""
    kind, foci = answer_kind(entry)
    turns = [Turn(role=FROM_TO_ROLE[m["from"]], content=m["value"]) for m in entry["dialogue"]]
    base: dict[str, Any] = {
        "sample_id": sample_id,
        "image_id": image_id,
        "provider": PROVIDER,
        "turns": turns,
        "focus": entry["focus"],
        "target_element_id": MULTI_ID_SEPARATOR.join(element_ids) if element_ids else EMPTY_ID_PREFIX,
    }
    if kind == "empty":
        return DialogueRecord.model_validate({**base, "kind": "empty"}, context=bounds)
    if kind == "multi":
        targets = [
            {"element_id": e, "focus": f, **({"region_ids": [r.region_id], "mask": r.mask} if r else {})}
            for e, f, r in zip(element_ids, foci, regions or [None] * len(foci), strict=True)
        ]
        base |= {"kind": "multi", "targets": targets}
        if regions:
            base |= {"target_region_ids": [r.region_id for r in regions], "mask": union_rle([r.mask for r in regions])}
        return DialogueRecord.model_validate(base, context=bounds)
    if regions:
        base |= {"target_region_ids": [regions[0].region_id], "mask": regions[0].mask}
    try:
        return DialogueRecord.model_validate(base, context=bounds)
    except ValidationError:
        return DialogueRecord.model_validate({**base, "form": "released"}, context=bounds)
