"""``--dry-run``: tokens and cost of a build, estimated before any request is sent.

Images are sized as they would be sent (after downscaling) and priced with GPT-4o's tile
rule; prompt text is the template plus a typical share per region, element and target
(steps 2 and 3 depend on answers not given yet). Completion tokens use typical answer
sizes per step, with no re-asks. Inputs the run already finished are not counted; the
response cache is not consulted, so the figure is an upper bound for a re-build.
Figures in tokens and USD.
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

from prist_builder.llm.images import image_tokens
from prist_builder.llm.pricing import BATCH_DISCOUNT, cost_usd
from prist_builder.records.steps import PROMPT_OF_STEP
from prist_builder.sources import SourceItem

TYPICAL_COMPLETION = {"elements": 700, "tree": 1200, "dialogues": 1800}
"""Typical answer size in tokens per step (one image)."""
TEMPLATE_TOKENS = {"elements": 300, "tree": 450, "dialogues": 450}
"""Prompt text of each template before its blocks are filled in, in tokens."""
TOKENS_PER_ELEMENT = 45
"""Prompt tokens an element adds to the step 2 and 3 prompts."""
TOKENS_PER_TARGET = 120
"""Prompt tokens a target's path adds to the step 3 prompt."""
TOKENS_PER_REGION = 20
"""Prompt tokens a marked region adds to the step 1 prompt."""
TYPICAL_ELEMENTS = 6
"""Elements assumed for a bare image (the model decides how many)."""
TYPICAL_TARGETS = 3
"""Targets K per image assumed (2 <= K <= 4)."""


@dataclass
class StepEstimate:
    """Estimated cost of one step over the pending images."""

    step: str
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    usd: float | None = 0.0
    usd_batch: float | None = 0.0


def _image_size(item: SourceItem) -> tuple[int, int] | None:
    path = item.image_path
    if path is None and item.labelme_path is not None:
        import json

        image_path = json.loads(item.labelme_path.read_text(encoding="utf-8")).get("imagePath") or ""
        path = item.labelme_path.parent / image_path
    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, TypeError, ValueError):
        return None


def estimate(
    items: list[SourceItem],
    model: str,
    detail: str,
    max_side: int | None,
    prices: dict,
    regions_per_item: dict[str, int] | None = None,
) -> list[StepEstimate]:
    """Per-step estimates for building ``items`` (all three steps, one request each, no re-asks)."""
    steps = {name: StepEstimate(name) for name in PROMPT_OF_STEP.values()}
    for item in items:
        size = _image_size(item)
        if size is None:
            continue
        width, height = size
        if max_side is not None and max(width, height) > max_side:
            scale = max_side / max(width, height)
            width, height = round(width * scale), round(height * scale)
        picture = image_tokens(width, height, detail)
        regions = (regions_per_item or {}).get(item.image_id, 0)
        elements = regions or TYPICAL_ELEMENTS
        prompts = {
            "elements": TEMPLATE_TOKENS["elements"] + TOKENS_PER_REGION * regions,
            "tree": TEMPLATE_TOKENS["tree"] + TOKENS_PER_ELEMENT * elements,
            "dialogues": TEMPLATE_TOKENS["dialogues"]
            + TOKENS_PER_ELEMENT * elements
            + TOKENS_PER_TARGET * TYPICAL_TARGETS,
        }
        for name, text in prompts.items():
            entry = steps[name]
            entry.requests += 1
            entry.prompt_tokens += text + picture
            entry.completion_tokens += TYPICAL_COMPLETION[name]
    for entry in steps.values():
        entry.usd = cost_usd(model, entry.prompt_tokens, entry.completion_tokens, prices)
        entry.usd_batch = None if entry.usd is None else entry.usd * BATCH_DISCOUNT
    return list(steps.values())
