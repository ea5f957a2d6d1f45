"""The embedded ``offline`` provider: no model, no network, grounded in source regions.

Step 1 measures each region's attributes from its pixels; step 2 builds a spatial
relation graph and a reasoning tree (:mod:`.tree_builder`); step 3 walks each path turn
by turn and ends with a segmentation request answered by ``[OBJ]{focus}[SEG]``.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from prist_builder.providers.assemble import make_dialogue, make_empty_dialogue, make_multi_dialogue
from prist_builder.providers.base import Provider, StepContext, UnsupportedSettingError
from prist_builder.providers.final_turn import empty_final_turn, multi_final_turn
from prist_builder.providers.offline import kinds
from prist_builder.providers.offline.acts import CONNECTORS, OPENERS, SEG_LEADS, SEG_REQUESTS, SEG_WHAT, SEG_WHAT_PART
from prist_builder.providers.offline.attributes import dominant_colour
from prist_builder.providers.offline.geometry import Geometry, mask_geometry, sampling_stride
from prist_builder.providers.offline.grammar import realise
from prist_builder.providers.offline.knowledge import lookup
from prist_builder.providers.offline.phrasing import count_word
from prist_builder.providers.offline.scene import coloured, scene_of, spoken_colour
from prist_builder.providers.offline.tree_builder import LONGEST_PATH, OfflineTreeBuilder
from prist_builder.records import DialogueRecord, Element, ElementAttributes, ElementsRecord, TreeRecord, Turn
from prist_builder.records.limits import MIN_TURNS, OBJ_TOKEN, SEG_TOKEN
from prist_builder.sources import InputRejected, LoadedImage

OFFLINE_MAX_MIN_TURNS = LONGEST_PATH + 1
"""Highest --min-turns every offline dialogue can reach (an opening, four inference acts, the final turn)."""
OFFLINE_MIN_MAX_TURNS = MIN_TURNS
"""Lowest --max-turns every offline dialogue fits (an opening, one inference act, the final turn)."""


def element_name(label: str) -> str:
    """A readable name from an annotation label: ``"coffee_cup"`` -> ``"coffee cup"`` (the label
    itself when nothing readable is left, e.g. ``"-"``)."""
    return " ".join(label.replace("_", " ").replace("-", " ").split()) or label.strip()


def describe(name: str, colour: str, geometry: Geometry, count: int) -> str:
    """One sentence describing an element the way a person would: its name with a colour
    only where one would say it (:func:`.scene.spoken_colour`), where it is, and how many
    of its kind the picture holds. Measured figures stay in the attributes."""
    category = lookup(name)
    subject = coloured(name, spoken_colour(colour, category, name))
    size = "" if category.animate else {"tiny": "small ", "small": "small "}.get(geometry.size, "")
    where = "in the centre" if geometry.position in ("center", "centre") else f"at the {geometry.position}"
    text = f"{capital_first(category.a(size + subject))} {where} of the picture"
    if count > 1:
        text += f", one of {count_word(count)} {category.plural_of(name)} in view"
    return text + "."


def capital_first(text: str) -> str:
    """``text`` with its first letter upper-cased."""
    return text[:1].upper() + text[1:]


class OfflineProvider(Provider):
    """Rule-based provider for demos, tests and CI: deterministic for a given seed."""

    name = "offline"
    needs_regions = True
    cpu_bound = True

    def check_settings(self, min_turns: int, max_turns: int) -> None:
        """Paths hold an opening and one to four inference acts, so any dialogue fits 3..6 turns."""
        if min_turns > OFFLINE_MAX_MIN_TURNS or max_turns < OFFLINE_MIN_MAX_TURNS:
            raise UnsupportedSettingError(
                f"the offline provider needs --min-turns <= {OFFLINE_MAX_MIN_TURNS} and --max-turns >="
                f" {OFFLINE_MIN_MAX_TURNS} (got {min_turns}..{max_turns})"
            )

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
            geometry = mask_geometry(mask, record.width, record.height, (x0, y0))
            colour = dominant_colour(pixels[y0 : y0 + h, x0 : x0 + w], mask, sampling_stride(geometry.area))
            attributes = ElementAttributes(
                colour=colour,
                position=geometry.position,
                relative_size=geometry.size,
                area_fraction=round(geometry.fraction, 6),
                count=counts[name],
            )
            elements.append(
                Element(
                    element_id=f"e{len(elements)}",
                    name=name,
                    description=describe(name, colour, geometry, counts[name]),
                    attributes=attributes,
                    region_id=region.region_id,
                )
            )
        return elements

    async def tree(self, elements: ElementsRecord, targets: list[Element], ctx: StepContext) -> TreeRecord:
        builder = OfflineTreeBuilder(elements, ctx.rng, min_turns=ctx.min_turns, max_turns=ctx.max_turns)
        if ctx.slots is not None:  # multi-target and empty-target paths asked for (issue 22)
            return builder.build_slots(ctx.slots, targets, self.name, ctx.validation())
        return builder.build(targets, self.name, ctx.validation())

    async def dialogues(self, elements: ElementsRecord, tree: TreeRecord, ctx: StepContext) -> list[DialogueRecord]:
        """One dialogue per path: the nodes below the root in order, then the segmentation turn
        (one ``[OBJ]{focus}[SEG]`` per target of a multi path, none for an empty one)."""
        scene = scene_of(elements)
        out = []
        for path in tree.paths:
            turns: list[Turn] = []
            for index, node_id in enumerate(path.node_ids[1:]):
                node = tree.node(node_id)
                lead = self._pick(ctx, OPENERS if index == 0 else CONNECTORS)
                turns += [Turn(role="user", content=lead + node.question), Turn(role="assistant", content=node.answer)]
            if path.kind == "multi":
                foci = kinds.member_foci(scene, path.target_element_ids)
                answer = multi_final_turn(foci, ctx.rng)[1]
                turns += [kinds.request_turn(kinds.multi_request(ctx.rng)), answer]
                focus = kinds.set_focus(scene, path.target_element_ids)
                out.append(make_multi_dialogue(elements, path, turns, focus, foci, self.name, ctx))
                continue
            if path.kind == "empty":
                answer = empty_final_turn(path.absent, ctx.rng)[1]
                turns += [kinds.request_turn(kinds.empty_request(path.absent, ctx.rng)), answer]
                out.append(make_empty_dialogue(elements, path, turns, self.name, ctx))
                continue
            subject = scene[path.target_element_id]
            focus = scene.focus(path.target_element_id).text
            what = SEG_WHAT_PART if subject.whole else SEG_WHAT
            request = realise(SEG_REQUESTS, ctx.rng, {"what": self._pick(ctx, what)})
            lead = realise(SEG_LEADS, ctx.rng, {})
            answer = " ".join(part for part in (lead, f"{OBJ_TOKEN}{focus}{SEG_TOKEN}.") if part)
            turns += [Turn(role="user", content=request), Turn(role="assistant", content=answer)]
            out.append(make_dialogue(elements, path, turns, focus, self.name, ctx))
        return out

    @staticmethod
    def _pick(ctx: StepContext, options: tuple[str, ...]) -> str:
        return options[ctx.rng.randrange(len(options))]
