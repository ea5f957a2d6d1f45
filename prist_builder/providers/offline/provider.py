"""The embedded ``offline`` provider: no model, no network, grounded in source regions.

Step 1 measures each region's attributes from its pixels; step 2 builds a spatial
relation graph and a reasoning tree (:mod:`.tree_builder`); step 3 walks each path turn
by turn and ends with a segmentation request answered by ``[OBJ]{focus}[SEG]``.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from prist_builder.providers.assemble import make_dialogue
from prist_builder.providers.base import Provider, StepContext, UnsupportedSettingError
from prist_builder.providers.offline import phrasing as say
from prist_builder.providers.offline.attributes import (
    centroid,
    dominant_colour,
    grid_position,
    relative_size,
    sampling_stride,
)
from prist_builder.providers.offline.tree_builder import OfflineTreeBuilder, element_facts, focus_phrase
from prist_builder.records import DialogueRecord, Element, ElementAttributes, ElementsRecord, TreeRecord, Turn
from prist_builder.records.limits import OBJ_TOKEN, SEG_TOKEN
from prist_builder.sources import InputRejected, LoadedImage


OFFLINE_MAX_MIN_TURNS = 6
"""Highest --min-turns every offline dialogue can reach (3 base nodes + 2 detail nodes + the final turn)."""
OFFLINE_MIN_MAX_TURNS = 6
"""Lowest --max-turns every offline dialogue fits (root + 3 split levels + leaf + the final turn)."""


def element_name(label: str) -> str:
    """A readable name from an annotation label: ``"coffee_cup"`` -> ``"coffee cup"`` (the label
    itself when nothing readable is left, e.g. ``"-"``)."""
    return " ".join(label.replace("_", " ").replace("-", " ").split()) or label.strip()


def describe(name: str, attributes: ElementAttributes) -> str:
    """One sentence describing an element from its measured attributes."""
    percent = 100 * (attributes.area_fraction or 0.0)
    share = f"about {percent:.0f}% of the frame" if percent >= 1 else "under 1% of the frame"
    subject = say.coloured(name, attributes.colour)
    text = f"{say.article(subject).capitalize()} {subject} in the {attributes.position} of the picture, {attributes.relative_size} ({share})"
    if attributes.count and attributes.count > 1:
        text += f"; one of {say.count_word(attributes.count)} {say.plural(name)}"
    return text + "."


class OfflineProvider(Provider):
    """Rule-based provider for demos, tests and CI: deterministic for a given seed."""

    name = "offline"
    needs_regions = True
    cpu_bound = True

    def check_settings(self, min_turns: int, max_turns: int) -> None:
        """Paths hold 3 to 5 nodes before extras (root, 1-3 split levels, leaf) and can always
        take 2 detail nodes, so any dialogue fits 4..6 turns but not every one fits fewer."""
        if min_turns > OFFLINE_MAX_MIN_TURNS or max_turns < OFFLINE_MIN_MAX_TURNS:
            raise UnsupportedSettingError(
                f"the offline provider needs --min-turns <= {OFFLINE_MAX_MIN_TURNS} and --max-turns >="
                f" {OFFLINE_MIN_MAX_TURNS} (got {min_turns}..{max_turns})")

    async def elements(self, image: LoadedImage, ctx: StepContext) -> list[Element]:
        return self.elements_sync(image, ctx)

    def elements_sync(self, image: LoadedImage, ctx: StepContext) -> list[Element]:
        record = image.record
        usable = [r for r in record.regions if not r.ignore]
        if not usable:
            raise InputRejected(f"{record.annotation_path or record.path}: no usable regions", record.annotation_path)
        pixels = np.asarray(image.pixels)
        counts = Counter(element_name(r.label) for r in usable)
        elements = []
        for region in usable:
            x0, y0, w, h = region.bbox
            mask = image.masks[region.region_id][y0 : y0 + h, x0 : x0 + w]
            name = element_name(region.label)
            stride = sampling_stride(region.area)
            cx, cy = centroid(mask, stride)
            x, y = cx + x0, cy + y0
            fraction = region.area / float(record.width * record.height)
            attributes = ElementAttributes(
                colour=dominant_colour(pixels[y0 : y0 + h, x0 : x0 + w], mask, stride),
                position=grid_position(x, y, record.width, record.height),
                relative_size=relative_size(fraction),
                area_fraction=round(fraction, 6),
                count=counts[name],
            )
            elements.append(
                Element(
                    element_id=f"e{len(elements)}",
                    name=name,
                    description=describe(name, attributes),
                    attributes=attributes,
                    region_id=region.region_id,
                )
            )
        return elements

    async def tree(self, elements: ElementsRecord, targets: list[Element], ctx: StepContext) -> TreeRecord:
        builder = OfflineTreeBuilder(elements, ctx.rng, min_nodes=ctx.min_turns - 1, max_nodes=ctx.max_turns - 1)
        return builder.build(targets, self.name, ctx.validation())

    async def dialogues(self, elements: ElementsRecord, tree: TreeRecord, ctx: StepContext) -> list[DialogueRecord]:
        facts = element_facts(elements)
        out = []
        for path in tree.paths:
            turns: list[Turn] = []
            for index, node_id in enumerate(path.node_ids):
                node = tree.node(node_id)
                lead = say.pick(ctx.rng, say.OPENERS if index == 0 else say.CONNECTORS)
                question = lead + node.question
                turns += [Turn(role="user", content=question), Turn(role="assistant", content=node.answer)]
            focus = focus_phrase(facts[path.target_element_id], facts)
            answer = f"{say.pick(ctx.rng, say.SEG_LEADS)}{OBJ_TOKEN}{focus}{SEG_TOKEN}."
            turns += [Turn(role="user", content=say.pick(ctx.rng, say.SEG_REQUESTS)), Turn(role="assistant", content=answer)]
            out.append(make_dialogue(elements, path, turns, focus, self.name, ctx))
        return out
