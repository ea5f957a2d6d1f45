"""Question and answer wording of converted samples (Stage-1 data, paper appendix C.2).

Class and phrase prompts become one user question and one answer that names each target
as ``[OBJ]{name}[SEG]`` (section 4.1). The wording is picked per sample from small lists by
a seeded hash of the sample id, so a conversion is reproducible.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from prist_builder.model.data.rows import span
from prist_builder.records.limits import SEG_TOKEN

ASK_CLASSES = (
    "Please segment {names} in this image.",
    "Can you segment {names} in this picture?",
    "Where is {names} in the image? Answer with a mask.",
    "Show me {names} in this photo with a segmentation mask.",
    "Segment {names}.",
)
"""User questions for category names (``{names}``: "the sky", "the sky and the tree", ...)."""

ASK_EXPRESSION = (
    "Please segment {text} in this image.",
    "Can you segment {text}?",
    "Which region is {text}? Answer with a mask.",
    "Segment {text} in this picture.",
)
"""User questions for a referring expression or a short ReasonSeg phrase."""

ASK_SENTENCE = (
    "{text} Please answer with a segmentation mask.",
    "{text} Show the answer as a mask.",
    "{text} Segment it in the image.",
)
"""User questions wrapping a ReasonSeg sentence (a full question or instruction)."""

ANSWERS = (
    "Sure, {spans}.",
    "Here it is: {spans}.",
    "It is {spans}.",
    "{spans}.",
)
"""Answers; ``{spans}`` is the ``[OBJ]{name}[SEG]`` list."""


def _pick(options: Sequence[str], key: str, seed: int) -> str:
    return random.Random(f"{seed}:{key}").choice(list(options))


def enumerate_words(words: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    words = list(words)
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def class_turns(names: Sequence[str], key: str, seed: int) -> list[tuple[str, str]]:
    """One question asking for the classes ``names`` and its answer with one span per class, in order."""
    question = _pick(ASK_CLASSES, key + ":q", seed).format(names=enumerate_words([f"the {n}" for n in names]))
    answer = _pick(ANSWERS, key + ":a", seed).format(spans=enumerate_words([span(n) for n in names]))
    return [("user", question), ("assistant", answer)]


def expression_turns(text: str, key: str, seed: int) -> list[tuple[str, str]]:
    """A question about one referring expression and its answer ``... [OBJ]{text}[SEG].``"""
    text = text.strip().rstrip(".")
    question = _pick(ASK_EXPRESSION, key + ":q", seed).format(text=text)
    return [("user", question), ("assistant", _pick(ANSWERS, key + ":a", seed).format(spans=span(text)))]


def sentence_turns(text: str, key: str, seed: int) -> list[tuple[str, str]]:
    """A question wrapping a reasoning sentence; the answer holds one bare ``[SEG]`` (no name is
    given by the dataset, so no ``[OBJ]`` span, as LISA answers ReasonSeg)."""
    question = _pick(ASK_SENTENCE, key + ":q", seed).format(text=text.strip())
    return [("user", question), ("assistant", _pick(ANSWERS, key + ":a", seed).format(spans=SEG_TOKEN))]
