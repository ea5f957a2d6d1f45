"""``--dry-run``: tokens and cost of a build, estimated before any request is sent.

Per image and step: the image as sent (after downscaling; the Set-of-Mark image, plus the
clean one with ``--send-clean-image``) billed with the model's published image rule
(:func:`prist_builder.llm.images.image_rule`), the prompt template's own text plus a
typical share per region, element and target, and the strict JSON Schema the request
carries (:func:`prist_builder.llm.strict_schema.schema_tokens`). Completion tokens use
typical answer sizes per element and target, with no re-asks. Regions are counted from the
Labelme or COCO annotations (one per label and ``group_id``, ``__ignore__`` left out);
targets are ``min(--targets, candidates)``. With ``--multi-share`` / ``--empty-share``
(issue 22) each path is a set or a none path at those chances: their step 2 and 3 rules (as
:mod:`~prist_builder.providers.openai.slots` renders them), the ``absent_thing`` and
``member_foci`` schema fields and their answers are added in expectation (a set needs two
instances of one kind, so the multi figure is an upper bound). Inputs the run already finished are not
counted; the response cache is not consulted, so the figure is an upper bound for a
re-build. Figures in tokens and USD.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from types import SimpleNamespace

from PIL import Image

from prist_builder import prompts
from prist_builder.llm.images import image_rule, image_tokens
from prist_builder.llm.pricing import BATCH_DISCOUNT, cost_usd
from prist_builder.llm.strict_schema import schema_tokens
from prist_builder.providers.openai import answers
from prist_builder.records.steps import PROMPT_OF_STEP
from prist_builder.sources import SourceItem

CHARS_PER_TOKEN = 4
TOKENS_PER_REGION = 35
"""Prompt tokens a marked region adds to the step 1 prompt (its line of id, label, box, position, share)."""
TOKENS_PER_ELEMENT = 60
"""Prompt tokens an element adds to the step 2 and 3 prompts (name, description, facts)."""
TOKENS_PER_TARGET = 110
"""Prompt tokens a target's path adds to the step 3 prompt."""
COMPLETION_PER_ELEMENT = 90
"""Completion tokens of one step 1 element (JSON)."""
COMPLETION_PER_TARGET = {"tree": 260, "dialogues": 300}
"""Completion tokens per target of the tree (question and chain) and of a conversation."""
COMPLETION_BASE = {"elements": 20, "tree": 60, "dialogues": 20}
TYPICAL_ELEMENTS = 6
"""Elements assumed for a bare image (the model decides how many, 3 to 12)."""
# Step 1 answers run about 90 tokens an element, step 2 about 260 a target and step 3
# about 300 a conversation (the scripted stand-in's answers are shorter; these follow the
# 10-15-word answers and 3-5 turns the prompts ask for).
TYPICAL_CONTEXT = 2
"""Unmarked context elements assumed besides the marked ones."""
SET_MEMBERS = 3
"""Members assumed per multi-target set (2 to 4 are drawn)."""
COMPLETION_ABSENT_FIELD = 8
"""Completion tokens of one question's ``absent_thing`` (a short noun phrase, or null)."""
COMPLETION_PER_MEMBER = 16
"""Completion tokens of one ``member_foci`` entry (element id and a 2-8 word focus)."""
COMPLETION_EMPTY_MEMBERS = 6
"""Completion tokens of ``"member_foci": []`` on a path that is not a set."""


@functools.lru_cache(maxsize=1)
def slot_rule_tokens() -> dict[str, dict[str, int]]:
    """Prompt tokens one set path (of :data:`SET_MEMBERS`) and one none path add to the step 2
    (``tree``) and step 3 (``dialogues``) prompts, rendered by the provider's own functions."""
    from prist_builder.providers.base import TargetSlot
    from prist_builder.providers.openai.slots import dialogue_kinds, tree_kinds
    from prist_builder.records import Element, TreePath

    members = tuple(Element(element_id=f"e{i}", name="small paper cup", description="-") for i in range(SET_MEMBERS))
    ids = [m.element_id for m in members]
    paths = {
        "multi": TreePath(
            target_element_id="+".join(ids), reasoning_question="-", node_ids=["n0", "n1"], kind="multi",
            target_element_ids=ids,
        ),
        "empty": TreePath(
            target_element_id="none", reasoning_question="-", node_ids=["n0", "n1"], kind="empty",
            absent="bicycle pump",
        ),
    }  # fmt: skip
    slots = {"multi": [TargetSlot("multi", members)], "empty": [TargetSlot("empty")]}
    return {
        "tree": {kind: len(tree_kinds(slots[kind])) // CHARS_PER_TOKEN for kind in slots},
        "dialogues": {
            kind: len(dialogue_kinds(SimpleNamespace(paths=[paths[kind]]))) // CHARS_PER_TOKEN  # type: ignore[arg-type]
            for kind in paths
        },
    }


@dataclass
class StepEstimate:
    """Estimated cost of one step over the pending images."""

    step: str
    requests: int = 0
    prompt_tokens: int = 0
    image_tokens: int = 0
    completion_tokens: int = 0
    usd: float | None = 0.0
    usd_batch: float | None = 0.0


def _labelme(item: SourceItem) -> dict | None:
    if item.labelme_path is None:
        return None
    try:
        return json.loads(item.labelme_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _image_size(item: SourceItem, doc: dict | None) -> tuple[int, int] | None:
    path = item.image_path
    if path is None and item.labelme_path is not None:
        path = item.labelme_path.parent / ((doc or {}).get("imagePath") or "")
    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, TypeError, ValueError):
        if doc and doc.get("imageWidth") and doc.get("imageHeight"):
            return int(doc["imageWidth"]), int(doc["imageHeight"])
        return None


def region_count(item: SourceItem, doc: dict | None = None) -> int:
    """Regions an input will have: Labelme shapes grouped by label and ``group_id`` (shapes
    without area and ``__ignore__`` left out), or the COCO entry's annotations."""
    if item.coco is not None:
        return len(item.coco[1].annotations)
    doc = doc if doc is not None else _labelme(item)
    if not doc:
        return 0
    keys = set()
    for index, shape in enumerate(doc.get("shapes") or []):
        label = str(shape.get("label", ""))
        if label == "__ignore__" or shape.get("shape_type") in ("line", "linestrip", "point"):
            continue
        group = shape.get("group_id")
        keys.add((label, group if group is not None else f"lone-{index}"))
    return len(keys)


def estimate(
    items: list[SourceItem],
    model: str,
    detail: str,
    max_side: int | None,
    prices: dict,
    regions_per_item: dict[str, int] | None = None,
    targets: int = 3,
    clean_too: bool = False,
    multi_share: float = 0.0,
    empty_share: float = 0.0,
) -> list[StepEstimate]:
    """Per-step estimates for building ``items`` (all three steps, one request each, no re-asks).

    ``multi_share`` and ``empty_share`` are the build's chances (0..1) that a path is a set or
    a none path; with both 0 the estimate is the single-target one."""
    steps = {name: StepEstimate(name) for name in PROMPT_OF_STEP.values()}
    rules = slot_rule_tokens() if multi_share or empty_share else None
    templates = {name: prompts.load(name) for name in steps}
    for item in items:
        doc = _labelme(item)
        size = _image_size(item, doc)
        if size is None:
            continue
        width, height = size
        if max_side is not None and max(width, height) > max_side:
            scale = max_side / max(width, height)
            width, height = round(width * scale), round(height * scale)
        regions = (regions_per_item or {}).get(item.image_id, region_count(item, doc))
        pictures = 2 if regions and clean_too else 1
        picture = pictures * image_tokens(width, height, detail, model)
        elements = regions + TYPICAL_CONTEXT if regions else TYPICAL_ELEMENTS
        k = min(targets, regions or TYPICAL_ELEMENTS)
        region_ids = tuple(f"r{i}" for i in range(regions))
        target_ids = tuple(f"e{i}" for i in range(k))
        schemas = {
            "elements": schema_tokens(answers.elements_answer(region_ids)),
            "tree": schema_tokens(answers.tree_answer(target_ids)),
            "dialogues": schema_tokens(answers.dialogues_answer(target_ids)),
        }
        text = {
            "elements": TOKENS_PER_REGION * regions,
            "tree": TOKENS_PER_ELEMENT * elements,
            "dialogues": TOKENS_PER_ELEMENT * elements + TOKENS_PER_TARGET * k,
        }
        completion = {
            "elements": COMPLETION_BASE["elements"] + COMPLETION_PER_ELEMENT * elements,
            "tree": COMPLETION_BASE["tree"] + COMPLETION_PER_TARGET["tree"] * k,
            "dialogues": COMPLETION_BASE["dialogues"] + COMPLETION_PER_TARGET["dialogues"] * k,
        }
        if rules is not None:
            _add_slots(schemas, text, completion, rules, target_ids, multi_share, empty_share)
        for name, entry in steps.items():
            template = templates[name]
            own = (len(template.system) + len(template.user)) // CHARS_PER_TOKEN
            entry.requests += 1
            entry.image_tokens += picture
            entry.prompt_tokens += round(own + text[name] + schemas[name] + picture)
            entry.completion_tokens += round(completion[name])
    for entry in steps.values():
        entry.usd = cost_usd(model, entry.prompt_tokens, entry.completion_tokens, prices)
        entry.usd_batch = None if entry.usd is None else entry.usd * BATCH_DISCOUNT
    return list(steps.values())


def _add_slots(
    schemas: dict[str, float],
    text: dict[str, float],
    completion: dict[str, float],
    rules: dict[str, dict[str, int]],
    target_ids: tuple[str, ...],
    multi_share: float,
    empty_share: float,
) -> None:
    """Add, in expectation, what set and none paths cost one image's steps 2 and 3."""
    k = len(target_ids)
    if not k:
        return
    sets, nones = k * multi_share, k * empty_share
    any_set, any_none = 1 - (1 - multi_share) ** k, 1 - (1 - empty_share) ** k
    members = tuple(f"m{i}" for i in range(SET_MEMBERS))
    with_none = schema_tokens(answers.tree_answer((*target_ids[1:], "none"), ("none",)))
    with_set = schema_tokens(answers.dialogues_answer(("+".join(members), *target_ids[1:]), members))
    schemas["tree"] += any_none * (with_none - schemas["tree"])
    schemas["dialogues"] += any_set * (with_set - schemas["dialogues"])
    for step in ("tree", "dialogues"):
        text[step] += sets * rules[step]["multi"] + nones * rules[step]["empty"]
    completion["tree"] += any_none * k * COMPLETION_ABSENT_FIELD
    completion["dialogues"] += sets * SET_MEMBERS * COMPLETION_PER_MEMBER + any_set * (k - 1) * COMPLETION_EMPTY_MEMBERS


def rule_line(model: str, detail: str) -> str:
    """The image rule the estimate used for ``model``, in words (for the dry-run table)."""
    rule = image_rule(model)
    low = " (detail low does not change it)" if rule.kind == "patch" and detail == "low" else ""
    return f"image rule {rule.name}: {rule.describe()}{low}"
