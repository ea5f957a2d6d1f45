"""A small realisation grammar for the offline provider's dialogue acts.

A template holds alternatives in parentheses, separated by ``|`` and nested at will, and
slots in braces: ``"(I'd like to|I need to) {need}. (What here could help?|Any ideas?)"``.
:func:`realise` picks one alternative per group with the input's seeded generator, then
fills the slots, so each act has dozens of surface forms and the same input always reads
the same. Literal parentheses are written ``\\(`` and ``\\)``.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from functools import lru_cache


class GrammarError(ValueError):
    """A template's parentheses do not balance (names the template)."""


def _parse(text: str, start: int, depth: int, template: str) -> tuple[list[list], int]:
    """Parse from ``start`` to the closing parenthesis (or the end at depth 0).

    Returns ``(alternatives, end)``: each alternative a list of strings and nested groups.
    """
    alternatives: list[list] = [[]]
    buffer: list[str] = []
    i = start
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            buffer.append(text[i + 1])
            i += 2
            continue
        if char == "(":
            if buffer:
                alternatives[-1].append("".join(buffer))
                buffer = []
            group, i = _parse(text, i + 1, depth + 1, template)
            alternatives[-1].append(group)
            continue
        if char == "|":
            alternatives[-1].append("".join(buffer))
            buffer = []
            alternatives.append([])
        elif char == ")":
            if depth == 0:
                raise GrammarError(f"unbalanced ')' in template {template!r}")
            alternatives[-1].append("".join(buffer))
            return alternatives, i + 1
        else:
            buffer.append(char)
        i += 1
    if depth:
        raise GrammarError(f"unclosed '(' in template {template!r}")
    alternatives[-1].append("".join(buffer))
    return alternatives, i


@lru_cache(maxsize=1024)
def _parsed(template: str) -> list[list]:
    """The parse of a template (cached: templates are constants)."""
    return _parse(template, 0, 0, template)[0]


def _render(alternatives: list[list], rng: random.Random) -> str:
    chosen = alternatives[rng.randrange(len(alternatives))] if len(alternatives) > 1 else alternatives[0]
    return "".join(part if isinstance(part, str) else _render(part, rng) for part in chosen)


_SPACE_BEFORE_MARK = re.compile(r"\s+([.,;:?!])")
_SENTENCE_START = re.compile(r"(^|[.?!]\s+)([\"']?)([a-z])")


def tidy(text: str) -> str:
    """Collapse doubled spaces and spaces before punctuation; capitalise each sentence start."""
    text = _SPACE_BEFORE_MARK.sub(r"\1", " ".join(text.split()))
    text = text.replace("..", ".").replace(",.", ".")
    return _SENTENCE_START.sub(lambda m: m.group(1) + m.group(2) + m.group(3).upper(), text)


def realise(templates: Sequence[str], rng: random.Random, slots: Mapping[str, str]) -> str:
    """One surface form: a template chosen from ``templates``, its groups resolved, slots filled.

    Raises:
        GrammarError: unbalanced parentheses.
        KeyError: a slot the template names is missing from ``slots``.
    """
    template = templates[rng.randrange(len(templates))]
    return tidy(_render(_parsed(template), rng).format_map(slots))


def count_forms(template: str) -> int:
    """How many surface forms a template has before slots are filled (for docs and tests)."""
    alternatives, _ = _parse(template, 0, 0, template)

    def forms(alts: list[list]) -> int:
        total = 0
        for alternative in alts:
            product = 1
            for part in alternative:
                if not isinstance(part, str):
                    product *= forms(part)
            total += product
        return total

    return forms(alternatives)
