"""Multi-target and empty-target paths of the ``openai`` provider (issue 22).

When the build hands step 2 a list of :class:`~prist_builder.providers.base.TargetSlot`
(``StepContext.slots``), each slot becomes one path of the tree, named by a *path id*:

- ``single``: the element's id (``e3``), as without slots;
- ``multi``: its elements' ids joined by ``+`` (``e1+e4``); the leaf's answer is the set;
- ``empty``: ``none``, ``none-1``, ... in slot order; the model first names, in the
  question's ``absent_thing``, something plausible for the scene that the image does not
  hold, and the path ends in an answer saying there is none.

An ``absent_thing`` is checked with :func:`prist_builder.providers.absent.absent_conflict`.
A conflict (the thing is a region label or an element) is sent back once with its reason;
if the next answer conflicts again (or no re-ask is left), that empty path is dropped from
the tree and the image keeps its other paths, unless fewer than the build's minimum of
paths would remain: then the reason is sent back again and, with no valid answer left, the
input is rejected as any other.

This module writes the prompt text for these paths and turns answers into records; with
``slots=None`` nothing here runs and every request is the single-target one.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from prist_builder.llm.client import AnswerRuleError, explain
from prist_builder.providers.absent import absent_conflict
from prist_builder.providers.assemble import sample_id
from prist_builder.providers.base import StepContext, TargetSlot
from prist_builder.providers.final_turn import clean_focus, empty_final_turn, join_list, multi_final_turn
from prist_builder.records import DialogueRecord, Element, ElementsRecord, TreePath, TreeRecord, Turn
from prist_builder.records.limits import EMPTY_ID_PREFIX, MULTI_ID_SEPARATOR, OBJ_TOKEN, SEG_TOKEN

_ARTICLE = re.compile(r"^(a|an|the|some|any)\s+", re.IGNORECASE)


def path_ids(slots: Sequence[TargetSlot]) -> list[str]:
    """The path id of each slot, in order (see the module docstring)."""
    ids, empties = [], 0
    for slot in slots:
        if slot.kind == "empty":
            ids.append(EMPTY_ID_PREFIX if empties == 0 else f"{EMPTY_ID_PREFIX}-{empties}")
            empties += 1
        else:
            ids.append(MULTI_ID_SEPARATOR.join(e.element_id for e in slot.elements))
    return ids


def slot_elements(slots: Sequence[TargetSlot]) -> list[Element]:
    """Every element some slot targets, each once, in slot order."""
    seen: dict[str, Element] = {}
    for slot in slots:
        for element in slot.elements:
            seen.setdefault(element.element_id, element)
    return list(seen.values())


def targets_line(slots: Sequence[TargetSlot]) -> str:
    """``"e1 (red mug), e2+e5 (the set of e2 and e5), none (a thing the image does not hold)"``."""
    parts = []
    for pid, slot in zip(path_ids(slots), slots, strict=True):
        if slot.kind == "single":
            parts.append(f"{pid} ({slot.elements[0].name})")
        elif slot.kind == "multi":
            parts.append(f"{pid} (the set of {join_list([e.element_id for e in slot.elements])})")
        else:
            parts.append(f"{pid} (a thing the image does not hold)")
    return ", ".join(parts)


def tree_kinds(slots: Sequence[TargetSlot]) -> str:
    """Step 2's rules for the set and none paths, or ``""`` when every slot is single."""
    lines = []
    for pid, slot in zip(path_ids(slots), slots, strict=True):
        if slot.kind == "multi":
            members = join_list([f"{e.element_id} ({e.name})" for e in slot.elements])
            lines.append(
                f"- Set path {pid}: its answer is all of {members} together, and nothing else in view."
                ' Its reasoning question asks for everything that meets one need or purpose ("Which'
                ' seats could a tired visitor use?"), so that one member alone would be an incomplete'
                f' answer; its chain narrows to the set, and its leaf (`element_id` "{pid}") answers with'
                " the set, naming each member by what tells it apart in a few words (this one answer may run past"
                " 15 words when the set is large)."
            )
        elif slot.kind == "empty":
            lines.append(
                f"- None path {pid}: first name, in its question's `absent_thing`, one thing a person in this"
                " scene could plausibly need or look for that the image does NOT show: not any element"
                " listed above, not a kind of anything marked or in view, not another word for one, not"
                " named in any description above; a noun"
                ' phrase without article ("bicycle pump", "umbrella"). Its reasoning question asks for'
                " it through that need, without saying it is missing; its first answer names the kind of"
                " thing that would meet the need, no answer says the image shows one, and its leaf"
                f' (`element_id` "{pid}") answers that the image holds no such thing.'
            )
    if not lines:
        return ""
    absent = any(s.kind == "empty" for s in slots)
    tail = "\n`absent_thing` is null on every other path." if absent else ""
    kinds = {s.kind for s in slots}
    what = {"multi": "the whole set", "empty": "the thing the image lacks"}
    held = " or ".join(what[k] for k in ("multi", "empty") if k in kinds)
    these = "Some paths are" if len(lines) > 1 else "One path is"
    head = f"\n\n{these} not about one object; there, what the rules below say of the target holds for {held}:\n"
    return head + "\n".join(lines) + tail


def dialogue_kinds(tree: TreeRecord) -> str:
    """Step 3's rules for the set and none paths (appended to the rules list), or ``""``."""
    lines = []
    for path in tree.paths:
        if path.kind == "multi":
            order = ", then ".join(path.target_element_ids)
            lines.append(
                f"\n- Path {path.target_element_id} is a set: its conversation narrows to all of its members"
                ' together; its `focus` names the set as a whole ("both cups that still hold coffee"), and'
                f" `member_foci` gives {order}, each with its `element_id` and its own short focus (2 to 8"
                " words) telling it from the others."
            )
        elif path.kind == "empty":
            lines.append(
                f"\n- Path {path.target_element_id} asks for something the image lacks: its conversation"
                " follows the need to its end, where the assistant says plainly that the image holds no"
                f' {path.absent}; its `focus` is "{path.absent}". The final turn, added for you, says there'
                " is nothing to outline."
            )
    if any(p.kind == "multi" for p in tree.paths):
        lines.append("\n- `member_foci` is an empty list on every path that is not a set.")
    return "".join(lines)


def path_line(path: TreePath, record: ElementsRecord) -> str:
    """What ``Path for ...`` names in step 3: the target, the set, or the absent thing."""
    if path.kind == "multi":
        members = [record.element(e) for e in path.target_element_ids]
        return f"the set of {join_list([f'{e.element_id} {e.name}' for e in members])}"
    if path.kind == "empty":
        return f"no {path.absent} in the image"
    return record.element(path.target_element_id).name


def clean_thing(thing: str) -> str:
    """The absent thing as recorded: whitespace collapsed, quotes, final stop and a leading
    article removed."""
    return _ARTICLE.sub("", clean_focus(thing))


class AbsentCheck:
    """Checks the ``absent_thing`` of each empty path across the asks of one step 2 request.

    Args:
        record: the image's elements (labels and names to check against).
        empty_ids: the empty paths' ids.
        asks: how many answers the client may read (re-asks plus one): the last one gets
            no re-ask for a conflict.
    """

    def __init__(self, record: ElementsRecord, empty_ids: list[str], asks: int) -> None:
        self.record, self.empty_ids, self.asks = record, empty_ids, asks
        self.seen = 0
        self.warned = False

    def check(self, answer: Any, wanted: list[str], min_paths: int) -> tuple[list[str], dict[str, dict[str, Any]]]:
        """The paths to keep and the extra fields of the empty ones (``kind``, ``absent``).

        Raises:
            AnswerRuleError: a missing thing, or a thing that is in the image (see the
                module docstring for when that drops the path instead).
        """
        self.seen += 1
        things = {q.target_element_id: q.absent_thing for q in answer.questions}
        missing, conflicts, named = [], {}, {}
        for pid in self.empty_ids:
            thing = clean_thing(things.get(pid) or "")
            if not thing:
                missing.append(f"the none path {pid} needs its absent_thing (something the image does not hold)")
            elif thing.lower() in named:
                missing.append(f"{named[thing.lower()]} and {pid} both ask for {thing!r}; give each its own thing")
            elif (reason := absent_conflict(thing, self.record)) is not None:
                conflicts[pid] = f"absent_thing of {pid}: {reason}; name something the image does not hold"
            named.setdefault(thing.lower(), pid)
        if missing:
            raise AnswerRuleError("; ".join(missing))
        keep = [p for p in wanted if p not in conflicts]
        if conflicts and (not self.warned and self.seen < self.asks or len(keep) < min_paths):
            self.warned = True
            raise AnswerRuleError("; ".join(conflicts.values()))
        extra = {p: {"kind": "empty", "absent": clean_thing(things[p] or "")} for p in self.empty_ids if p in keep}
        return keep, extra


def multi_fields(slots: Sequence[TargetSlot]) -> dict[str, dict[str, Any]]:
    """The extra path fields of the multi paths (``kind``, ``target_element_ids``)."""
    return {
        pid: {"kind": "multi", "target_element_ids": [e.element_id for e in slot.elements]}
        for pid, slot in zip(path_ids(slots), slots, strict=True)
        if slot.kind == "multi"
    }


def kind_dialogue(
    record: ElementsRecord,
    path: TreePath,
    item: Any,
    turns: list[Turn],
    provider: str,
    ctx: StepContext,
    rng: random.Random,
) -> DialogueRecord:
    """The record of a multi or empty path's conversation ``item`` (its reasoning ``turns``
    given); the final turn comes from :func:`multi_final_turn` or :func:`empty_final_turn`.

    Raises:
        AnswerRuleError: the set's member foci do not match its members.
        pydantic.ValidationError: the record breaks a rule (turn bounds, final turn).
    """
    fields: dict[str, Any] = {
        "image_id": record.image_id,
        "provider": provider,
        "reasoning_question": path.reasoning_question,
        "path_node_ids": path.node_ids,
        "target_element_id": path.target_element_id,
        "sample_id": sample_id(record.image_id, path.target_element_id),
        "kind": path.kind,
    }
    if path.kind == "empty":
        final = empty_final_turn(path.absent, rng)
        fields["focus"] = path.absent
    else:
        foci = {m.element_id: clean_focus(m.focus) for m in item.member_foci}
        absent = [e for e in path.target_element_ids if not foci.get(e)]
        extra = sorted(set(foci) - set(path.target_element_ids))
        bad = [f for f in foci.values() if OBJ_TOKEN in f or SEG_TOKEN in f]
        if absent or extra or bad or len(item.member_foci) != len(foci):
            raise AnswerRuleError(
                f"member_foci must give one short focus for each of {', '.join(path.target_element_ids)}"
                " (in that order) and nothing else"
            )
        targets, masks = [], []
        for element_id in path.target_element_ids:
            region = record.element(element_id).region_id
            mask = record.image.region(region).mask if region else None
            masks += [mask] if mask else []
            targets.append(
                {
                    "element_id": element_id,
                    "focus": foci[element_id],
                    "region_ids": [region] if region else [],
                    "mask": mask.model_dump() if mask else None,
                }
            )
        fields["targets"] = targets
        fields["target_region_ids"] = list(dict.fromkeys(r for t in targets for r in t["region_ids"]))
        from prist_builder.annotation.masks import union_rle

        fields["mask"] = union_rle(masks).model_dump() if len(masks) == len(targets) else None
        fields["focus"] = clean_focus(item.focus)
        final = multi_final_turn([t["focus"] for t in targets], rng)
    fields["turns"] = [t.model_dump() for t in [*turns, *final]]
    try:
        return DialogueRecord.model_validate(fields, context=ctx.validation())
    except ValidationError as exc:
        raise AnswerRuleError(explain(exc).lstrip("- ")) from None
