"""The text blocks that fill the prompt templates, built from records.

Every block is plain text with counts and plurals worked out here, so a rendered prompt
never holds a template fragment (``tests/test_openai_prompts.py`` renders them all).
Boxes are in pixels of the image as sent (source pixels times its ``scale``).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from prist_builder.providers.openai.slots import path_line
from prist_builder.providers.regions import RegionRelation, position_words, share_words
from prist_builder.records import Element, ElementsRecord, SourceRegion, TreeRecord
from prist_builder.records.limits import MAX_CHILDREN

MAX_CONTEXT_ELEMENTS = 5
"""Unmarked context elements step 1 may add to the marked ones."""
BARE_ELEMENTS = (3, 12)
"""Elements asked of an image without marked regions (Figure 7a: at least 3)."""


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``"1 region"``, ``"3 regions"``."""
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"


def box_words(box: Sequence[float], scale: float = 1.0) -> str:
    """``"x 12-340, y 40-400"``: a ``[x, y, w, h]`` box's pixel ranges in the image as sent."""
    x, y, w, h = (v * scale for v in box)
    return f"x {round(x)}-{round(x + w)}, y {round(y)}-{round(y + h)}"


def image_line(width: int, height: int, marked: bool, clean_too: bool) -> str:
    """What the images attached are."""
    first = f"The image is {width} x {height} pixels (x runs left to right, y top to bottom)."
    if not marked:
        return first
    marks = " Each marked region is outlined on it in its own colour, with its id in a tag of that colour."
    clean = " The second image is the same photo without the marks." if clean_too else ""
    return first + marks + clean


def regions_block(
    regions: list[SourceRegion], width: int, height: int, scale: float = 1.0, ignored: Sequence[str] = ()
) -> str:
    """One line per marked region (id, label, box, position, share of the image), a line on
    the ids of ignored regions (not drawn, so the shown ids skip them), a note on labels
    that occur more than once, then a blank line. Empty for a bare image."""
    if not regions:
        return ""
    lines = [f"Marked regions ({len(regions)}); each label is the annotator's hint, not a name to copy:"]
    for region in regions:
        box = [v * scale for v in region.bbox]
        lines.append(
            f"- {region.region_id}: labelled {region.label!r}; box {box_words(box)};"
            f" {position_words(box, width, height)}; {share_words(region.area, *_source_size(region))} of the image"
        )
    if ignored:
        these = "that region is" if len(ignored) == 1 else "those regions are"
        lines.append(
            f"Ids {', '.join(ignored)} are missing on purpose: {these} set aside in the annotation file"
            " (ignored), neither drawn nor asked about."
        )
    repeated = {label: n for label, n in Counter(r.label for r in regions).items() if n > 1}
    for label in repeated:
        ids = ", ".join(r.region_id for r in regions if r.label == label)
        lines.append(
            f"The label {label!r} marks {plural(repeated[label], 'region')} ({ids}): give each its own name and"
            " description from what the image shows of it (clothing, pose, what it holds or does, text,"
            " parts), not from where it sits."
        )
    return "\n".join(lines) + "\n\n"


def _source_size(region: SourceRegion) -> tuple[int, int]:
    height, width = region.mask.size
    return width, height


def elements_task(regions: list[SourceRegion]) -> str:
    """What step 1 asks for: how many elements and what ``region_id`` each one takes."""
    if not regions:
        low, high = BARE_ELEMENTS
        return (
            f"No regions are marked on this image. List {low} to {high} elements worth a conversation,"
            " preferring objects and parts small enough that outlining them takes care (a label, a"
            " button, a sign, a logo) over whole-scene stuff (sky, floor). `region_id` is always null."
        )
    n = len(regions)
    each = "the marked region" if n == 1 else f"each of the {n} marked regions"
    ids = ", ".join(r.region_id for r in regions)
    return (
        f"First write one element for {each}, with its `region_id` ({ids}), in the order listed:"
        f" {plural(n, 'marked element')} in all, each region exactly once. An element is the whole"
        " marked region, as outlined.\n"
        f"Then you may add up to {MAX_CONTEXT_ELEMENTS} unmarked context elements, with `region_id` null:"
        " parts or things that a conversation about the marked ones would mention (a number plate, a"
        " logo, a sign, a handle, what someone holds). They give context only and are never outlined or"
        " segmented. Add none if nothing is worth it."
    )


def region_of_element(element: Element, marked: bool) -> str:
    """``"marked r3"``, ``"unmarked context"`` (an image with marked regions) or ``"not
    marked"`` (a bare image)."""
    if element.region_id:
        return f"marked {element.region_id}"
    return "unmarked context" if marked else "not marked"


def elements_block(record: ElementsRecord, scale: float = 1.0) -> str:
    """What step 1 found, one block per element: id, region, name, description, then the
    facts (box of its region, colour, count, visible text).

    Position words stay out (issue 19, the hand-answered run: they leaked into the talk):
    no position fact, and position phrases are cut from descriptions
    (:func:`without_position_words`); the box, in numbers, still finds the element."""
    image = record.image
    marked = any(not r.ignore for r in image.regions)
    lines = []
    for e in record.elements:
        a = e.attributes
        facts = []
        if e.region_id:
            box = [v * scale for v in image.region(e.region_id).bbox]
            facts.append(f"box {box_words(box)} (to find it)")
        if a.colour:
            facts.append(f"colour {a.colour}")
        if a.count and a.count > 1:
            facts.append(f"{a.count} of its kind in view")
        if a.visible_text:
            facts.append(f"text on it: {a.visible_text}")
        description = without_position_words(e.description)
        lines.append(f"- {e.element_id} ({region_of_element(e, marked)}): {e.name}. {description}")
        if facts:
            lines.append(f"  Facts: {'; '.join(facts)}.")
    if any(e.region_id for e in record.elements):
        lines.append("Boxes are there to find each element in the image, not words for the talk.")
    return "\n".join(lines)


_POS = r"(?:top|bottom|upper|lower|left|right|middle|centre|center)"
_PLACE = r"(?:end|side|edge|corner|half|part|area|section|foreground|background)"
_PART = _PLACE[:-1] + r"|row|shelf|window|windscreen|windshield|arm|hand|leg|door|wheel|seat|panel|lights?|headlight)"
_FOLLOW = (
    r"(?=\s*$|\s*[,.;:)]|\s+(?:of|with|and|or|between|behind|beside|next|near|in|on|at|to|from|by|while|where|"
    r"which|that|who|holding|facing|under|over|above|below|against)\b)"
)
_SIDES = r"(?:" + _POS[3:-1] + r"|back|front)"
_POS_LIST = (
    _POS
    + r"(?:\s*,\s*"
    + _SIDES
    + r"(?=\s*,|\s+(?:and|or)\s))*(?:\s*,?\s+(?:and|or)\s+"
    + _SIDES
    + r")?(?!\s*,\s*"
    + _SIDES
    + r"(?=\s*,|\s+(?:and|or)\s)|\s*,?\s+(?:and|or)\s+"
    + _SIDES
    + r"\b)"
)
"""One position or a whole list of them (never a list's head alone): "left", "left, back and
right", "top or bottom"."""
_FRAME = r"(?P<frame>image|frame|photo|picture|scene|shot)"
_POSITION_PHRASE = re.compile(
    r"(?:,\s*)?\s*\b(?P<prep>on|at|in|along|towards|toward)\s+the\s+(?:far\s+|very\s+)?"
    + _POS_LIST
    + r"(?:[\s-]+"
    + _POS
    + r"|[\s-]+hand)?(?:[\s-]+(?P<place>"
    + _PLACE[3:-1]
    + r"))?"
    + _FOLLOW
    + r"(?P<of>\s+of\s+the\s+"
    + _FRAME
    + r"\b|\s+of\b)?",
    re.IGNORECASE,
)
"""A place in the frame: "on the far left (of the image)", "in the top-right corner", "on the
left, back and right"; "at the left end of" something keeps the relation ("at one end of the
group")."""
_FRAME_PART = re.compile(
    r"\bthe\s+(?:far\s+)?" + _POS_LIST + r"(?:[\s-]+" + _PLACE + r")?\s+of\s+the\s+" + _FRAME + r"\b",
    re.IGNORECASE,
)
"""Part of the frame named by position, with no preposition: "filling the bottom and right of
the frame" -> "filling part of the frame"."""
_POSITION_ADJECTIVE = re.compile(
    r"[\s-]" + _POS_LIST + r"(?:[\s-]+" + _POS + r")?(?=\s+" + _PART + r"\b)", re.IGNORECASE
)
"""A position word before a part or place: "its left arm", "the lower right foreground"."""
_SIDE_OF = re.compile(
    r"\b(?:(?:just|directly|immediately|slightly)\s+)?(?:to\s+the\s+)?(?:left|right)\s+of(?=\s+(?:the|a|an|his|her|its|their)\b)",
    re.IGNORECASE,
)
"""A side relative to something else: "just left of the counter", "to the right of the bus" -> "beside"."""
_AMONG = re.compile(
    r"^\s+the\s+(?:two|three|four|five|six|several|other|others|group|people|row|crowd)\b", re.IGNORECASE
)
"""What follows "in the middle of" when the middle is among several ("... of the three women")."""
_EXTREME = re.compile(r"\b(?:leftmost|rightmost|topmost|bottommost|left-hand|right-hand)\s+", re.IGNORECASE)


_ONE_OF = ("end", "side", "edge", "corner")
"""Places that come in several, so "at the left end of the sofa" -> "at one end of the sofa"."""


def _place(match: re.Match[str]) -> str:
    if match.group("of") and not match.group("frame"):  # "on the right of the group": keep a relation
        prep, place = match.group("prep").lower(), (match.group("place") or "").lower()
        if place in _ONE_OF:
            return f" {prep} one {place} of"
        if prep == "in" and _AMONG.match(match.string[match.end() :]):
            return " among"  # "in the middle of the three women" -> "among the three women"
        return " by" if prep in ("on", "at") else " in"
    return ""


def without_position_words(text: str) -> str:
    """``text`` without words that place something in the frame ("on the far left of the
    image", "in the top-right corner", "its left arm", "leftmost"), so that what is left
    still reads as a sentence ("perched at the left end of the sofa" -> "perched at one end of
    the sofa", "lined on the left, back and right with panels" -> "lined with panels")."""
    cut = _POSITION_PHRASE.sub(_place, text)
    cut = _FRAME_PART.sub(lambda m: f"part of the {m.group('frame')}", cut)
    cut = _SIDE_OF.sub("beside", cut)
    cut = _POSITION_ADJECTIVE.sub("", cut)
    cut = _EXTREME.sub("", cut)
    cut = re.sub(r"\s+([,.;:])", r"\1", cut)
    cut = re.sub(r",(?=[,.;:])", "", cut)
    return " ".join(cut.split()) or text


def relations_block(relations: list[RegionRelation], record: ElementsRecord, among: list[Element]) -> str:
    """The part-of and overlap relations between the given elements (by element id), or a
    line saying there are none (or that none are known: a bare image)."""
    if not any(not r.ignore for r in record.image.regions):
        return "- not known: no regions are marked on this image."
    of_region = {e.region_id: e for e in among if e.region_id}
    lines = []
    for relation in relations:
        a, b = of_region.get(relation.subject), of_region.get(relation.other)
        if a is None or b is None:
            continue
        if relation.kind == "part of":
            lines.append(
                f"- {a.element_id} ({a.name}) lies inside {b.element_id} ({b.name}): it is part of it or"
                f" sits on it, and {b.element_id}'s outline includes it."
            )
        elif relation.kind == "touches":
            lines.append(
                f"- {a.element_id} ({a.name}) and {b.element_id} ({b.name}) touch: they are next to each other."
            )
        else:
            lines.append(f"- {a.element_id} ({a.name}) and {b.element_id} ({b.name}) overlap in the image.")
    return "\n".join(lines) if lines else "- none: no target overlaps or touches another."


def sharing_rule(targets: int) -> str:
    """How the tree's chains hang under the root: apart (up to three targets, the root's
    most children, section 3.2.2), or two of four under a shared theme node."""
    if targets <= MAX_CHILDREN:
        return "They hang directly under the root and share no node."
    pairs = targets - MAX_CHILDREN + 1
    return (
        f"The root has at most {MAX_CHILDREN} children, so {pairs} targets that belong together hang under one"
        " shared theme node (its question and answer say what they have in common) and their own chains start"
        " below it; a shared node is background, not a turn."
    )


def chain_length(low: int, high: int, aim: int = 3) -> str:
    """How many nodes a target's chain takes: ``aim`` (3 reasoning turns before the final
    one, as most released dialogues have) within ``low..high``, e.g. ``"3 nodes (2 or 4 only
    where the question needs it)"``."""
    aim = min(max(aim, low), high)
    if low == high:
        return plural(low, "node")
    others = [n for n in range(low, high + 1) if n != aim]
    spread = " or ".join(str(n) for n in others) if len(others) <= 2 else f"{low} to {high}"
    return f"{plural(aim, 'node')} ({spread} only where the question needs it)"


def targets_line(targets: list[Element]) -> str:
    """``"e1 (red mug), e4 (price tag)"``."""
    return ", ".join(f"{t.element_id} ({t.name})" for t in targets)


def paths_block(tree: TreeRecord, record: ElementsRecord, only: list[str] | None = None) -> str:
    """Each path with its target (a set or the absent thing on multi/empty paths, see
    :func:`.slots.path_line`), reasoning question, the shared nodes above it (background)
    and its own nodes (one turn each), numbered. ``only``: list just these paths (their
    target ids), each exactly as in the whole block (what is shared stays background)."""
    chains = {p.target_element_id: p.node_ids[1:] for p in tree.paths}
    blocks = []
    for path in tree.paths:
        if only is not None and path.target_element_id not in only:
            continue
        chain = chains[path.target_element_id]
        shared = {n for t, c in chains.items() if t != path.target_element_id for n in c}
        own = [n for n in chain if n not in shared]
        lines = [
            f"Path for {path.target_element_id} ({path_line(path, record)}), {plural(len(own), 'node')};"
            f" reasoning question: {path.reasoning_question}"
        ]
        for node_id in chain:
            if node_id in shared:
                node = tree.node(node_id)
                lines.append(f"  Shared background (not a turn): Q: {node.question} A: {node.answer}")
        for depth, node_id in enumerate(own):
            node = tree.node(node_id)
            lines.append(f"  {depth + 1}. Q: {node.question} A: {node.answer}")
        blocks.append("\n".join(lines))
    return "\n".join(blocks)


def scene_line(tree: TreeRecord) -> str:
    """The root's question and answer (shared context, not a turn of any dialogue)."""
    root = tree.node(tree.root)
    return f"Q: {root.question} A: {root.answer}"
