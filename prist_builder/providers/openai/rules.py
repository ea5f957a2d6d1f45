"""The task rules of the ``openai`` provider: what an answer must satisfy to become
records (anything else is asked again with the reasons), how many turns to aim for, and
each step's completion cap.

Turn guidance follows the released test split (answers of 10 to 15 words, 3 to 5 turns
including the final one, :data:`STYLE_TURNS`), within the build's ``--min-turns`` and
``--max-turns``, which stay the hard bounds.
"""

from __future__ import annotations

import random
from typing import Any

from pydantic import ValidationError

from prist_builder.llm.client import MAX_LISTED_ERRORS, AnswerRuleError, PartialAnswer, explain
from prist_builder.providers.assemble import make_dialogue
from prist_builder.providers.base import StepContext
from prist_builder.providers.final_turn import clean_focus, final_turn
from prist_builder.providers.openai.messages import BARE_ELEMENTS, MAX_CONTEXT_ELEMENTS
from prist_builder.providers.openai.slots import kind_dialogue
from prist_builder.records import (
    DialogueRecord,
    Element,
    ElementAttributes,
    ElementsRecord,
    ImageRecord,
    SourceRegion,
    TreeRecord,
    Turn,
)
from prist_builder.records.limits import OBJ_TOKEN, SEG_TOKEN

STYLE_TURNS = (3, 5)
"""Turns per dialogue the prompts aim for, the final one included (the released test split
has 3 to 5; Table 2: 4 on average)."""

ROOT_ID = "root"
"""Id of the scene root in the trees this provider writes."""

VISIBLE_TEXT_SEPARATOR = " | "
"""Joins the pieces of text step 1 lists for an element into the record's ``visible_text``."""

CAP_BASE = {"elements": 600, "tree": 600, "dialogues": 400}
"""Completion tokens of each step's answer beyond its per-item share."""
CAP_PER_ITEM = {"elements": 200, "tree": 550, "dialogues": 650}
"""Completion tokens per element (step 1) or per target (steps 2 and 3). A step-1 element
is about 90 tokens of JSON, a target's chain of nodes about 250, a conversation about 300:
the caps are about twice that, so that a long answer is not cut off."""


def marked_regions(record: ImageRecord) -> list[SourceRegion]:
    """The regions marked on the image sent (every region not ``__ignore__``)."""
    return [r for r in record.regions if not r.ignore]


def step_cap(step: str, items: int) -> int:
    """The completion ceiling of one request, in tokens: ``items`` is the number of marked
    regions (step 1; 0 for a bare image) or of targets (steps 2 and 3)."""
    if step == "elements":
        items = items + MAX_CONTEXT_ELEMENTS if items else BARE_ELEMENTS[1]
    return CAP_BASE[step] + CAP_PER_ITEM[step] * items


def style_turns(ctx: StepContext) -> tuple[int, int]:
    """Turns to aim for, the final one included: :data:`STYLE_TURNS` within the build's
    bounds (the build's bounds alone when the two do not meet)."""
    low, high = max(ctx.min_turns, STYLE_TURNS[0]), min(ctx.max_turns, STYLE_TURNS[1])
    return (low, high) if low <= high else (ctx.min_turns, ctx.max_turns)


def accept_elements(answer: Any, region_ids: tuple[str, ...]) -> list[Element]:
    """Step 1's elements from an answer: every marked region exactly once, at most
    :data:`~.messages.MAX_CONTEXT_ELEMENTS` unmarked ones, distinct names; a bare image
    needs :data:`~.messages.BARE_ELEMENTS` ``[0]`` elements or more.

    Raises:
        AnswerRuleError: every broken rule, so that one re-ask fixes them all.
    """
    problems = []
    items = list(answer.elements)
    marked = [item.region_id for item in items if item.region_id is not None]
    for region in sorted({r for r in marked if marked.count(r) > 1}):
        problems.append(f"region {region} has {marked.count(region)} elements; give it exactly one")
    missing = [r for r in region_ids if r not in marked]
    if missing:
        problems.append(f"no element for the marked region(s) {', '.join(missing)}; give each exactly one")
    context = len(items) - len(marked)
    if region_ids and context > MAX_CONTEXT_ELEMENTS:
        problems.append(f"{context} unmarked elements; at most {MAX_CONTEXT_ELEMENTS}")
    if not region_ids and len(items) < BARE_ELEMENTS[0]:
        problems.append(f"{len(items)} elements; at least {BARE_ELEMENTS[0]} are needed")
    names = [" ".join(item.name.lower().split()) for item in items]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"{names.count(name)} elements are named {name!r}; give each its own name from what it shows")
    if problems:
        raise AnswerRuleError("; ".join(problems))
    order = {r: i for i, r in enumerate(region_ids)}
    items.sort(key=lambda item: (item.region_id is None, order.get(item.region_id or "", 0)))
    return [
        Element(
            element_id=f"e{i}",
            name=item.name,
            description=item.description,
            region_id=item.region_id,
            attributes=ElementAttributes(
                colour=item.colour,
                position=item.position,
                count=item.count if item.count and item.count > 0 else None,
                visible_text=VISIBLE_TEXT_SEPARATOR.join(t.strip() for t in item.visible_text if t.strip()) or None,
            ),
        )
        for i, item in enumerate(items)
    ]


def own_nodes(chain: list[str], others: list[list[str]]) -> list[str]:
    """The nodes of a path (below the root) that no other path passes through: the turns
    of its dialogue. Shared nodes (a theme above two targets) are background."""
    shared = {n for other in others for n in other}
    return [n for n in chain if n not in shared]


def accept_tree(
    answer: Any,
    elements: ElementsRecord,
    wanted: list[str],
    provider: str,
    ctx: StepContext,
    kinds: dict[str, dict[str, Any]] | None = None,
) -> TreeRecord:
    """The tree record of a step 2 answer: one reasoning question per target, a path per
    target from the scene root to the one node naming it, at most three children per node
    (section 3.2.2), and per path a number of nodes of its own (see :func:`own_nodes`)
    within the build's turn bounds: ``n`` own nodes become a dialogue of ``n + 1`` turns,
    the final one included.

    ``wanted`` are path ids; ``kinds`` adds fields to the paths of multi-target and
    empty-target paths (``kind``, ``target_element_ids``, ``absent``; see :mod:`.slots`).

    Raises:
        AnswerRuleError: the first broken rules, listed.
    """
    problems: list[str] = []
    questions: dict[str, str] = {}
    for item in answer.questions:
        if item.target_element_id in questions:
            problems.append(f"two reasoning questions for {item.target_element_id}; give one per target")
        questions[item.target_element_id] = item.reasoning_question
    for target in wanted:
        if target not in questions:
            problems.append(f"no reasoning question for {target}")
    parent = {}
    for node in answer.nodes:
        if node.id == ROOT_ID or node.id in parent:
            problems.append(f"node id {node.id!r} is used twice (the root's id is {ROOT_ID!r})")
        parent[node.id] = node.parent
    leaves: dict[str, list[str]] = {}
    for node in answer.nodes:
        if node.parent != ROOT_ID and node.parent not in parent:
            problems.append(f"node {node.id!r} has parent {node.parent!r}, which is neither 'root' nor a node")
        if node.element_id is not None:
            leaves.setdefault(node.element_id, []).append(node.id)
    if problems:
        raise AnswerRuleError("; ".join(problems[:MAX_LISTED_ERRORS]))
    chains: dict[str, list[str]] = {}
    for target in wanted:
        found = leaves.get(target, [])
        if len(found) != 1:
            problems.append(f"{len(found)} nodes have element_id {target}; exactly one (its leaf) must")
            continue
        chain, seen = [found[0]], {found[0]}
        while parent[chain[-1]] != ROOT_ID:
            chain.append(parent[chain[-1]])
            if chain[-1] in seen:
                problems.append(f"the nodes above {found[0]!r} form a loop")
                break
            seen.add(chain[-1])
        else:
            chains[target] = chain[::-1]
    for target, chain in chains.items():
        own = own_nodes(chain, [c for t, c in chains.items() if t != target])
        if not ctx.min_turns <= len(own) + 1 <= ctx.max_turns:
            problems.append(
                f"the path to {target} has {len(own)} nodes of its own (shared ones are background); it needs"
                f" {ctx.min_turns - 1} to {ctx.max_turns - 1}"
            )
    if problems:
        raise AnswerRuleError("; ".join(problems[:MAX_LISTED_ERRORS]))
    paths = [
        {
            "target_element_id": t,
            "reasoning_question": questions[t],
            "node_ids": [ROOT_ID, *chains[t]],
            **(kinds or {}).get(t, {}),
        }
        for t in wanted
    ]
    used = {n for p in paths for n in p["node_ids"]}
    nodes = [{"id": ROOT_ID, "question": answer.root.question, "answer": answer.root.answer, "element_id": None}]
    nodes += [
        {"id": n.id, "question": n.question, "answer": n.answer, "element_id": n.element_id}
        for n in answer.nodes
        if n.id in used
    ]
    edges = [(parent[n["id"]], n["id"]) for n in nodes[1:]]
    try:
        return TreeRecord.model_validate(
            {
                "image_id": elements.image_id,
                "provider": provider,
                "root": ROOT_ID,
                "nodes": nodes,
                "edges": edges,
                "paths": paths,
            },
            context=ctx.validation(),
        )
    except ValidationError as exc:
        raise AnswerRuleError(explain(exc).lstrip("- ")) from None


def accept_dialogues(
    answer: Any, elements: ElementsRecord, tree: TreeRecord, provider: str, ctx: StepContext, seed: int
) -> list[DialogueRecord]:
    """The dialogue records of a step 3 answer: one conversation per path, its reasoning
    turns within the turn bounds (the final turn is added here, see
    :mod:`prist_builder.providers.final_turn`), no segmentation tokens in them. Multi-target
    and empty-target paths become records of their kind (:func:`.slots.kind_dialogue`).

    Raises:
        PartialAnswer: some conversations are broken (listed) and others kept the rules; its
            ``part`` is ``(records of the good ones, [(target_element_id, problem, the broken
            conversation as JSON), ...])``, kept if no re-ask mends the answer.
        AnswerRuleError: every conversation is broken, or the answer's paths are wrong.
    """
    paths = {p.target_element_id: p for p in tree.paths}
    got = [d.target_element_id for d in answer.dialogues]
    if sorted(got) != sorted(paths):
        raise AnswerRuleError(f"write exactly one conversation per path target {sorted(paths)}, got {got}")

    def one(index: int, item: Any) -> DialogueRecord | str:
        """The record of one conversation, or what is wrong with it."""
        focus = clean_focus(item.focus)
        where = f"dialogues[{index}] ({item.target_element_id})"
        if not focus or OBJ_TOKEN in focus or SEG_TOKEN in focus:
            return f"{where}: focus must be a short noun phrase, got {item.focus!r}"
        if not ctx.min_turns - 1 <= len(item.turns) <= ctx.max_turns - 1:
            return (
                f"{where}: {len(item.turns)} turns; write {ctx.min_turns - 1} to {ctx.max_turns - 1}"
                " (the final segmentation turn is added for you)"
            )
        try:
            turns: list[Turn] = []
            for turn in item.turns:
                turns += [Turn(role="user", content=turn.question), Turn(role="assistant", content=turn.answer)]
            path, rng = paths[item.target_element_id], random.Random(f"{seed}/{item.target_element_id}")
            if path.kind != "single":
                return kind_dialogue(elements, path, item, turns, provider, ctx, rng)
            turns += final_turn(focus, rng)
            return make_dialogue(elements, path, turns, focus, provider, ctx)
        except AnswerRuleError as exc:
            return f"{where}: {exc}"
        except ValidationError as exc:
            return f"{where}: {explain(exc).lstrip('- ')}"

    out, problems, broken = [], [], []
    for index, item in enumerate(answer.dialogues):
        result = one(index, item)
        if isinstance(result, str):
            problems.append(result)
            broken.append((item.target_element_id, result, item.model_dump(mode="json")))
        else:
            out.append(result)
    if problems and out:
        raise PartialAnswer("\n- ".join(problems[:MAX_LISTED_ERRORS]), (out, broken))
    if problems:
        raise AnswerRuleError("\n- ".join(problems[:MAX_LISTED_ERRORS]))
    return out
