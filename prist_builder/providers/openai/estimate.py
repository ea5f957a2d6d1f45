"""``--dry-run``: tokens and cost of a build, estimated before any request is sent.

Per image and step: the image as sent (after downscaling; the Set-of-Mark image, plus the
clean one with ``--send-clean-image``) billed with the model's published image rule
(:func:`prist_builder.llm.images.image_rule`), the prompt template's own text plus a
typical share per region, element and target, and the strict JSON Schema the request
carries (:func:`prist_builder.llm.strict_schema.schema_tokens`). Completion tokens use
typical answer sizes per element and target, with no re-asks. Regions are counted from the
Labelme or COCO annotations (one per label and ``group_id``, ``__ignore__`` left out);
targets are ``min(--targets, candidates)``. Inputs the run already finished are not
counted; the response cache is not consulted, so the figure is an upper bound for a
re-build. Figures in tokens and USD.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

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
) -> list[StepEstimate]:
    """Per-step estimates for building ``items`` (all three steps, one request each, no re-asks)."""
    steps = {name: StepEstimate(name) for name in PROMPT_OF_STEP.values()}
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
        for name, entry in steps.items():
            template = templates[name]
            own = (len(template.system) + len(template.user)) // CHARS_PER_TOKEN
            entry.requests += 1
            entry.image_tokens += picture
            entry.prompt_tokens += own + text[name] + schemas[name] + picture
            entry.completion_tokens += completion[name]
    for entry in steps.values():
        entry.usd = cost_usd(model, entry.prompt_tokens, entry.completion_tokens, prices)
        entry.usd_batch = None if entry.usd is None else entry.usd * BATCH_DISCOUNT
    return list(steps.values())


def rule_line(model: str, detail: str) -> str:
    """The image rule the estimate used for ``model``, in words (for the dry-run table)."""
    rule = image_rule(model)
    low = " (detail low does not change it)" if rule.kind == "patch" and detail == "low" else ""
    return f"image rule {rule.name}: {rule.describe()}{low}"
