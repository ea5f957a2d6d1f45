"""Is an asked-for thing truly absent from an image? (issue 22: empty-target samples).

Interim version written with the ``openai`` provider (branch feat-22b): a plain word check
of the thing against every region label and element name of the image, singular and
plural. The build helper's version (branch feat-22a, with the offline knowledge table's
synonyms) replaces this file at merge; the signature is the shared contract.
"""

from __future__ import annotations

import re

from prist_builder.records import ElementsRecord

_WORD = re.compile(r"[a-z0-9]+")
_ARTICLES = {"a", "an", "the", "some", "any"}


def _singular(word: str) -> str:
    """``"cups"`` -> ``"cup"``, ``"boxes"`` -> ``"box"``, ``"berries"`` -> ``"berry"``."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith(("ches", "shes", "sses", "xes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def _words(text: str) -> tuple[str, ...]:
    """Lower-case words of ``text``, underscores and hyphens as spaces, articles dropped, singular."""
    words = _WORD.findall(text.lower().replace("_", " "))
    return tuple(_singular(w) for w in words if w not in _ARTICLES)


def _contains(haystack: tuple[str, ...], needle: tuple[str, ...]) -> bool:
    """``needle`` occurs as consecutive words of ``haystack``."""
    n = len(needle)
    return n > 0 and any(haystack[i : i + n] == needle for i in range(len(haystack) - n + 1))


def absent_conflict(thing: str, record: ElementsRecord) -> str | None:
    """Why ``thing`` may be in the image, or ``None`` when it is truly absent.

    ``thing`` (a noun phrase, e.g. ``"bicycle pump"``) conflicts with a region label or an
    element name when the head noun (last word) of either occurs in the other, singular and
    plural alike ("cups" against the label ``cup``, "pump" against "bicycle pump").

    Returns:
        a one-line reason naming the matching region label or element, or ``None``.
    """
    wanted = _words(thing)
    if not wanted:
        return "the absent thing is empty"
    named = [(f"region {r.region_id} is labelled {r.label!r}", r.label) for r in record.image.regions if not r.ignore]
    named += [(f"element {e.element_id} is {e.name!r}", e.name) for e in record.elements]
    for reason, name in named:
        words = _words(name)
        if words and (_contains(words, wanted[-1:]) or _contains(wanted, words[-1:])):
            return f"{thing!r} is in the image: {reason}"
    return None
