"""What the offline provider knows of one image's elements: knowledge, geometry, parts, focus.

:class:`Scene` joins each grounded element with its knowledge-table category
(:mod:`.knowledge`), its mask facts (:mod:`.geometry`), the relation graph
(:mod:`.relations`) and its whole when it is a part: a region lying inside a larger region
of another label (as Labelme annotators draw an eye inside a cat). From these it writes
each element's focus, the shortest description that tells it apart from every other
element of its name, preferring colour, then size, then a relation to an object that
occurs once, then being nearest such an object, and only then the element's place in the
frame.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from dataclasses import dataclass

import networkx as nx

from prist_builder.providers.offline.geometry import Geometry, element_geometry
from prist_builder.providers.offline.knowledge import Category, lookup
from prist_builder.providers.offline.relations import INSIDE_SHARE, containment, placed_elements, relation_graph
from prist_builder.records import Element, ElementsRecord

SIZE_MARGIN = 1.25
"""An element is "the largest"/"the smallest" of its name only when it beats the runner-up by this area ratio."""

PART_MAX_SHARE = 0.6
"""A region is a part of another only if its area is at most this share of the other's."""

NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth")

RELATION_WORDS = {
    "next to": ("next to", "next to"),
    "above": ("above", "below"),
    "inside": ("in front of", None),
    "larger than": ("bigger than", "smaller than"),
}
"""Predicate -> (phrase with the subject first, phrase with the object first); ``left of`` is not
worded (a frame position in disguise) and ``inside`` only from the smaller side."""

WEARERS = frozenset({"person", "man", "woman", "child", "boy", "girl", "player", "astronaut", "rider", "people"})
"""Names whose colour is what they wear: ``"person in red"`` rather than ``"red person"``."""


def count_word(count: int) -> str:
    """``"one"`` .. ``"ten"``, digits beyond."""
    return NUMBER_WORDS[count] if 0 <= count < len(NUMBER_WORDS) else str(count)


def main_colour(colour: str | None) -> str | None:
    """The first of a two-colour name (``"orange and brown"`` -> ``"orange"``), for short phrases."""
    return colour.split(" and ")[0] if colour else colour


ACHROMATIC = frozenset({"gray", "grey", "dark gray", "light gray"})
"""Colours that a region's mean pixels give shadows, glass and metal alike: said of what a
person wears, not of an object (a yellow bus in shade measures gray)."""


def spoken_colour(colour: str | None, category: Category, name: str = "") -> str | None:
    """The colour a person would use to describe an element, or ``None``: none for a body
    or object part (``"an orange face"``, ``"a brown eye"``), none for a two-colour mean
    (``"brown and orange"``), and none for an achromatic mean on anything but clothing."""
    if not colour or " and " in colour or category.part_of:
        return None
    wearer = name.split(" ")[-1].lower() in WEARERS or category.person
    if colour in ACHROMATIC and not wearer:
        return None
    return colour


def coloured(name: str, colour: str | None) -> str:
    """``"brown sofa"``, ``"person in black"``; the bare name when the colour is unknown."""
    if not colour:
        return name
    return f"{name} in {colour}" if name.split(" ")[-1].lower() in WEARERS else f"{colour} {name}"


@dataclass(frozen=True)
class Focus:
    """How an element is named.

    Attributes:
        text: the focus phrase (``"brown cat's larger ear"``).
        way: how it is told apart: ``only`` (alone of its name), ``colour``, ``size``,
            ``relation``, ``nearest`` (to an object that occurs once), ``position`` or ``order``.
        reason: a clause that says why, for a disambiguating answer (``""`` for ``only``).
    """

    text: str
    way: str
    reason: str


@dataclass
class Subject:
    """One grounded element with everything the wording needs.

    Attributes:
        element: the element record.
        category: its knowledge row (``known`` is ``False`` for a fallback).
        geometry: its mask facts.
        count: elements of its name in the image.
        whole: element id of the element whose region holds it, or ``None``.
        link: how it relates to its whole: ``part`` (the knowledge table says it is a part
            of it: "the cat's ear") or ``on``/``in`` (it lies on or in it: "the notes on the shelf").
    """

    element: Element
    category: Category
    geometry: Geometry
    count: int
    whole: str | None = None
    link: str = "part"

    @property
    def name(self) -> str:
        """The element's name."""
        return self.element.name

    @property
    def colour(self) -> str | None:
        """The measured colour of step 1 as a person would say it (:func:`spoken_colour`)."""
        return spoken_colour(self.element.attributes.colour, self.category, self.element.name)


class Scene:
    """The grounded elements of one image, their relations, parts and focus phrases."""

    def __init__(self, record: ElementsRecord) -> None:
        self.record = record
        geometry = element_geometry(record)
        placed = placed_elements(record, geometry)
        inside = containment(record, placed) if len(placed) > 1 else None
        self.graph: nx.MultiDiGraph = relation_graph(record, placed, inside)
        counts = Counter(p.name for p in placed)
        self.subjects: dict[str, Subject] = {
            p.element_id: Subject(record.element(p.element_id), lookup(p.name), p.geometry, counts[p.name])
            for p in placed
        }
        if inside is not None:
            for i, part in enumerate(placed):
                wholes = [
                    j
                    for j, whole in enumerate(placed)
                    if j != i
                    and whole.name != part.name
                    and inside[i, j] >= INSIDE_SHARE
                    and part.area <= PART_MAX_SHARE * whole.area
                ]
                if wholes:  # the smallest container is the direct whole (pupil -> eye, not cat)
                    smallest = min(wholes, key=lambda j: (placed[j].area, j))
                    subject = self.subjects[part.element_id]
                    whole = self.subjects[placed[smallest].element_id]
                    subject.whole = whole.element.element_id
                    if subject.category.link == "in":
                        subject.link = "in"
                    elif not subject.category.part_of_whole(whole.category, subject.name):
                        subject.link = "on"
        self._focus: dict[str, Focus] = {}
        self._relations: dict[str, list[tuple[str, str]]] = {}
        self._ranked: list[Subject] | None = None

    def __getitem__(self, element_id: str) -> Subject:
        return self.subjects[element_id]

    def peers(self, subject: Subject) -> list[Subject]:
        """Other elements of the subject's name (with the same whole, for a part)."""
        return [
            s
            for s in self.subjects.values()
            if s is not subject and s.name == subject.name and (subject.whole is None or s.whole == subject.whole)
        ]

    def relations(self, subject: Subject) -> list[tuple[str, str]]:
        """``(phrase, other id)`` worded relations of the subject to elements whose name occurs once
        and that are not its whole or its part, sorted (stable across runs; cached)."""
        element_id = subject.element.element_id
        if element_id not in self._relations:
            self._relations[element_id] = self._worded(subject)
        return self._relations[element_id]

    def ranked(self) -> list[Subject]:
        """Subjects from the largest mask to the smallest (ties by element id)."""
        if self._ranked is None:
            self._ranked = sorted(self.subjects.values(), key=lambda s: (-s.geometry.area, s.element.element_id))
        return self._ranked

    def _worded(self, subject: Subject) -> list[tuple[str, str]]:
        element_id = subject.element.element_id
        found = []
        for _, other, data in self.graph.out_edges(element_id, data=True):
            found.append((RELATION_WORDS.get(data["predicate"], (None, None))[0], other))
        for other, _, data in self.graph.in_edges(element_id, data=True):
            found.append((RELATION_WORDS.get(data["predicate"], (None, None))[1], other))
        return sorted(
            {
                (p, o)
                for p, o in found
                if p
                and self.subjects[o].count == 1
                and o != subject.whole
                and self.subjects[o].whole != element_id
                and self.subjects[o].name != subject.name
            }
        )

    def focus(self, element_id: str) -> Focus:
        """The element's focus phrase (cached)."""
        if element_id not in self._focus:
            self._focus[element_id] = self._make_focus(self.subjects[element_id], depth=0)
        return self._focus[element_id]

    def _make_focus(self, subject: Subject, depth: int) -> Focus:
        own = self._tell_apart(subject)
        if subject.whole is None or depth > 2:
            return own
        whole = self.subjects[subject.whole]
        whole_text = whole.name if whole.count == 1 and whole.whole is None else self._make_focus(whole, depth + 1).text
        if subject.link != "part":
            text = f"{own.text} {subject.link} the {whole_text}"
        elif whole.whole is not None:
            text = f"{own.text} of the {whole_text}"
        else:
            text = f"{whole_text}'s {own.text}"
        return Focus(text, own.way, own.reason)

    def _nearest(self, subject: Subject, peers: list[Subject]) -> str | None:
        """Name of an object that occurs once and lies clearly nearer the subject than any peer."""

        def distance(a: Subject, b: Subject) -> float:
            return ((a.geometry.x - b.geometry.x) ** 2 + (a.geometry.y - b.geometry.y) ** 2) ** 0.5

        for other in self.subjects.values():
            if other.count != 1 or other.name == subject.name:
                continue
            if subject.element.element_id in (other.whole, other.element.element_id):
                continue
            if other.element.element_id == subject.whole or any(other.element.element_id == p.whole for p in peers):
                continue
            mine = distance(subject, other)
            if all(mine * SIZE_MARGIN <= distance(p, other) for p in peers):
                return other.name
        return None

    def _tell_apart(self, subject: Subject) -> Focus:
        name, peers = subject.name, self.peers(subject)
        colour = main_colour(subject.colour)
        plain = coloured(name, colour) if subject.whole is None else name
        if not peers:
            return Focus(plain, "only", "")
        if colour and all(main_colour(p.colour) != colour for p in peers):
            only = f"they are the only one in {colour}" if subject.category.person else f"it is the only {colour} one"
            return Focus(coloured(name, colour), "colour", only)
        areas = sorted(p.geometry.area for p in peers)
        many = len(peers) > 1
        if subject.geometry.area >= SIZE_MARGIN * areas[-1]:
            word = "largest" if many else "larger"
            return Focus(f"{word} {name}", "size", f"it is the {word} of the {count_word(len(peers) + 1)}")
        if subject.geometry.area * SIZE_MARGIN <= areas[0]:
            word = "smallest" if many else "smaller"
            return Focus(f"{word} {name}", "size", f"it is the {word} of the {count_word(len(peers) + 1)}")
        peer_relations = {r for p in peers for r in self.relations(p)}
        for phrase, other in self.relations(subject):
            if (phrase, other) not in peer_relations:
                other_name = self.subjects[other].name
                return Focus(
                    f"{name} {phrase} the {other_name}", "relation", f"it is the one {phrase} the {other_name}"
                )
        near = self._nearest(subject, peers)
        if near is not None:
            return Focus(f"{name} nearest the {near}", "nearest", f"it is the one nearest the {near}")
        position = subject.geometry.position
        if all(p.geometry.position != position for p in peers):
            where = "in the center" if position == "center" else f"in the {position}"
            return Focus(f"{name} {where}", "position", f"it is the one {where} of the picture")
        same = [s for s in self.subjects.values() if s.name == name]  # ranked among all of its name
        rank = sorted(same, key=lambda s: (s.geometry.x, s.element.element_id)).index(subject)
        ordinal = ORDINALS[rank] if rank < len(ORDINALS) else f"{rank + 1}th"
        return Focus(f"{ordinal} {name} from the left", "order", f"counting from the left, it is the {ordinal}")


SCENE_CACHE_SIZE = 64
"""Scenes kept per process. A scene holds its elements record (RLE masks included) and
its relation graph, ~35 KB for a synthetic image with a few regions, so the cache must not
grow with the run: at 2,048 it was what made ``prist build`` hold ~37 KB more per image
(``benchmarks/build_memory.py``). A step reuses the scene of an image it is working on;
step 3 reuses step 2's scenes only for the last images of step 2 (the steps run one
after the other over every input, so a cache smaller than the run misses anyway)."""
_scenes: OrderedDict[tuple, Scene] = OrderedDict()


def scene_of(record: ElementsRecord) -> Scene:
    """The :class:`Scene` of an elements record, from a small per-process cache.

    The key holds everything a scene is computed from (image id and content hash, each
    element's id, name, colour and region, each region's RLE), so a hit is the same scene.
    """
    key = (
        record.image_id,
        record.image.sha256,
        record.image.width,
        record.image.height,
        tuple((e.element_id, e.name, e.attributes.colour, e.region_id) for e in record.elements),
        tuple((r.region_id, r.mask.counts, r.ignore) for r in record.image.regions),
    )
    scene = _scenes.get(key)
    if scene is None:
        scene = _scenes[key] = Scene(record)
        if len(_scenes) > SCENE_CACHE_SIZE:
            _scenes.popitem(last=False)
    else:
        _scenes.move_to_end(key)
    return scene
