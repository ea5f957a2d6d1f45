"""The final segmentation turn, written in code from a small seeded pool.

The released PRIST split ends every dialogue with one of about a dozen fixed requests
("... use the conversation above to ... a segmentation that supports the answers") answered
by a short lead-in and the mask token (section 3.2.3: the final query is a segmentation
instruction). The model-based provider does the same: the model only writes the focus,
and :func:`final_turn` draws the request and the answer ``... [OBJ]{focus}[SEG].`` from
pools in that style (our own wording), seeded per dialogue, so no answer can break the
final-turn rule and nothing is asked again for it.
"""

from __future__ import annotations

import random

from prist_builder.records import Turn
from prist_builder.records.limits import OBJ_TOKEN, SEG_TOKEN

FINAL_REQUESTS = (
    "Going by what we discussed above, please produce the matching segmentation.",
    "Please mark out, as a segmentation, the object our conversation described.",
    "Please outline, as a segmentation, what the conversation above points to.",
    "Segment the object the answers above describe.",
    "Please segment what the conversation above settled on.",
    "Use the conversation above to give a segmentation that matches the answers.",
    "From the answers above, please produce the matching segmentation.",
    "Please provide a segmentation that agrees with the conversation above.",
    "Turn the conversation above into a segmentation of the object it describes.",
    "Now segment the object that the answers above single out.",
    "Give me a segmentation that fits the answers in this conversation.",
)
"""Final user requests (eleven, as many as the released test split uses)."""

FINAL_ANSWERS = (
    "Sure, {mask}.",
    "Certainly, {mask}.",
    "Here it is: {mask}.",
    "The segmentation is {mask}.",
    "It is {mask}.",
    "Segmented as {mask}.",
    "The result is {mask}.",
    "{mask}.",
    "The mask is {mask}.",
    "Identified as {mask}.",
    "Of course, {mask}.",
    "Sure, the segmentation is {mask}.",
)
"""Final assistant answers; ``{mask}`` becomes ``[OBJ]{focus}[SEG]`` (section 4.1)."""


def clean_focus(focus: str) -> str:
    """The focus as the final answer writes it: whitespace collapsed, wrapping quotes and a
    final full stop removed."""
    text = " ".join(focus.split()).strip().strip("\"'“”‘’`").strip()
    return text[:-1].rstrip() if text.endswith(".") else text


def final_turn(focus: str, rng: random.Random) -> tuple[Turn, Turn]:
    """The user's segmentation request and the assistant's ``[OBJ]{focus}[SEG]`` answer,
    drawn from :data:`FINAL_REQUESTS` and :data:`FINAL_ANSWERS` with ``rng``."""
    request = FINAL_REQUESTS[rng.randrange(len(FINAL_REQUESTS))]
    answer = FINAL_ANSWERS[rng.randrange(len(FINAL_ANSWERS))].format(mask=f"{OBJ_TOKEN}{focus}{SEG_TOKEN}")
    return Turn(role="user", content=request), Turn(role="assistant", content=answer)


MULTI_REQUESTS = (
    "Going by what we discussed above, please segment each of them.",
    "Please mark out, as segmentations, the objects our conversation described.",
    "Please outline each of the things the conversation above points to.",
    "Segment every object the answers above describe.",
    "Please segment all of what the conversation above settled on.",
    "From the answers above, please give a segmentation of each one.",
    "Now segment the objects that the answers above single out.",
)
"""Final user requests of a multi-target sample: the plural of :data:`FINAL_REQUESTS`."""

MULTI_ANSWERS = (
    "Sure, {masks}.",
    "Certainly, {masks}.",
    "Here they are: {masks}.",
    "The segmentations are {masks}.",
    "They are {masks}.",
    "Segmented as {masks}.",
    "Of course, {masks}.",
)
"""Final answers of a multi-target sample; ``{masks}`` becomes one ``[OBJ]{focus}[SEG]`` per
target, joined as a list ("A, B and C")."""

EMPTY_ANSWERS = (
    "Sorry, there is no {thing} in this image, so there is nothing to segment.",
    "The image does not show any {thing}, so no segmentation can be given.",
    "There is no {thing} here; nothing in the image matches, so there is no mask.",
    "I cannot find any {thing} in this image, so there is nothing to segment.",
    "No {thing} appears in this image, so the segmentation is empty.",
)
"""Final answers of an empty-target sample: no ``[OBJ]``/``[SEG]`` (GRES's no-target case);
``{thing}`` is the asked-for object the image does not hold."""


def join_list(items: list[str]) -> str:
    """``"A"``, ``"A and B"``, ``"A, B and C"``."""
    if len(items) <= 2:
        return " and ".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def multi_final_turn(focuses: list[str], rng: random.Random) -> tuple[Turn, Turn]:
    """The request (from :data:`MULTI_REQUESTS`) and the answer with one ``[OBJ]{focus}[SEG]``
    per target, in ``focuses``' order."""
    request = MULTI_REQUESTS[rng.randrange(len(MULTI_REQUESTS))]
    masks = join_list([f"{OBJ_TOKEN}{focus}{SEG_TOKEN}" for focus in focuses])
    answer = MULTI_ANSWERS[rng.randrange(len(MULTI_ANSWERS))].format(masks=masks)
    return Turn(role="user", content=request), Turn(role="assistant", content=answer)


def empty_final_turn(thing: str, rng: random.Random) -> tuple[Turn, Turn]:
    """The request and an answer saying the image holds no ``thing`` (no ``[SEG]``).

    ``thing`` is written without an article ("bicycle", "pair of scissors")."""
    request = FINAL_REQUESTS[rng.randrange(len(FINAL_REQUESTS))]
    answer = EMPTY_ANSWERS[rng.randrange(len(EMPTY_ANSWERS))].format(thing=clean_focus(thing))
    return Turn(role="user", content=request), Turn(role="assistant", content=answer)
