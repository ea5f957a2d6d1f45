"""Is an asked-for thing truly absent from an image? (issue 22: empty-target samples)

An empty-target dialogue (gRefCOCO/GRES's no-target case; the paper's Limitations section)
asks for something the image does not hold. Its answer "there is none" is only right when
nothing in the image is that thing under another name, so both providers check the thing
they pick with :func:`absent_conflict` against:

- every region label of the image (ignored regions too: the object is still in the picture),
- every step 1 element's name and the nouns of its description,
- the synonyms of each: the offline knowledge table's category of the thing and of each
  label/name (its name and ``aliases``, :func:`~prist_builder.providers.offline.knowledge.lookup`),
- parts: a thing the table lists as a part of a pictured category (a wheel, with a car in
  view) is not absent either.

Words are compared normalised (lower case, ``_``/``-`` as spaces) and in singular and plural
form; a label matches when one of the two is a trailing word sequence of the other
("office chair" holds a "chair").
"""

from __future__ import annotations

import re

from prist_builder.providers.offline.knowledge import Category, lookup, normalise, plural_of
from prist_builder.records import ElementsRecord


def _singular(word: str) -> str:
    """A plural word's singular ("benches" -> "bench", "cherries" -> "cherry"); others unchanged."""
    if len(word) > 3 and word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith("es") and word[:-2].endswith(("s", "x", "z", "ch", "sh")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def forms(phrase: str) -> set[str]:
    """The normalised phrase in singular and plural form (its last word inflected):
    ``"Coffee_Cups"`` -> ``{"coffee cups", "coffee cup"}``."""
    text = normalise(phrase)
    if not text:
        return set()
    head, _, last = text.rpartition(" ")
    singular = f"{head} {_singular(last)}".strip()
    return {text, singular, plural_of(singular).lower()}


def _names(category: Category, label: str) -> set[str]:
    """Every name of a label's meaning: the label's forms, and, for a known category, its
    name and aliases in both forms."""
    out = forms(label)
    if category.known:
        for name in (category.name, *category.aliases):
            out |= forms(name)
    return out


def _tail_match(a: str, b: str) -> bool:
    """One phrase is a trailing word sequence of the other ("office chair" / "chair")."""
    wa, wb = a.split(), b.split()
    short, long_ = (wa, wb) if len(wa) <= len(wb) else (wb, wa)
    return bool(short) and long_[-len(short) :] == short


def _labels(record: ElementsRecord) -> list[tuple[str, str]]:
    """``(what, label)``: every region label and element name of the image."""
    out = [(f"region {r.region_id} label {r.label!r}", r.label) for r in record.image.regions]
    out += [(f"element {e.element_id} name {e.name!r}", e.name) for e in record.elements]
    return out


def absent_conflict(thing: str, record: ElementsRecord) -> str | None:
    """Why ``thing`` may be in the image after all, or ``None`` when it is truly absent.

    Args:
        thing: the asked-for object, a noun phrase with or without article ("a bicycle",
            "bicycles", "pair of scissors").
        record: the image's step 1 record (regions and elements).

    Returns:
        ``None`` when no region label, element name, element description or their synonyms
        (offline knowledge table: category name and aliases) name the thing, nor list it as
        a part; else a one-line reason naming the first match
        (``"region r2 label 'sofa' is a couch (knowledge table alias)"``).
    """
    text = re.sub(r"^(a|an|the|some|any)\s+", "", normalise(thing))
    if not text:
        return "the asked-for thing is empty"
    category = lookup(text)
    wanted = _names(category, text)
    for what, label in _labels(record):
        label_category = lookup(label)
        label_forms = forms(label)
        for mine in wanted:
            for theirs in label_forms:
                if _tail_match(mine, theirs):
                    return f"{what} names {text!r} ({theirs!r} ~ {mine!r})"
        if category.known and label_category.known and label_category.name == category.name:
            return f"{what} is a {category.name} (knowledge table: {text!r} and {label!r} are one category)"
        if label_category.known and wanted & {p.lower() for p in label_category.parts}:
            return f"{what} is a {label_category.name}, which has {text!r} as a part (knowledge table)"
        if category.known and label_category.known and label_category.name in category.part_of:
            return f"{what} is a {label_category.name}, of which {text!r} is a part (knowledge table)"
        if category.known and label_category.known and category.name in label_category.part_of:
            return f"{what} is a {label_category.name}, a part of a {category.name} (knowledge table)"
    for element in record.elements:
        description = f" {normalise(re.sub(r'[^A-Za-z0-9_ -]+', ' ', element.description))} "
        for name in sorted(wanted, key=len, reverse=True):
            if f" {name} " in description:
                return f"element {element.element_id} description mentions {name!r}: {element.description!r}"
    return None
