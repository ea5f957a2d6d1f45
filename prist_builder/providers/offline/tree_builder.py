"""Offline reasoning trees (step 2): paths that narrow from the scene to each target.

The root asks about the whole scene. Below it, the targets are split into two or three
groups by one visible attribute (side of the picture, height, name, colour or size), and
each group is split again until one target is left; a group node's answer lists what the
picture really holds under the constraints of its path. A single target then gets an
optional relation or detail node and, last, the leaf that names it. Every node has at
most three children (section 3.2.2), because a split makes two or three groups.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

import networkx as nx

from prist_builder.providers.offline import phrasing as say
from prist_builder.providers.offline.relations import placed_elements, relation_graph, relations_of
from prist_builder.records import Element, ElementsRecord, TreeNode, TreePath, TreeRecord
from prist_builder.records.limits import MAX_CHILDREN

SPLIT_ATTRIBUTES = ("col", "row", "name", "colour", "size")
"""Visible attributes a group node may split on."""

EXTRA_NODE_CHANCE = 0.15
"""Chance of one optional relation/detail node on a path beyond the minimum length."""


@dataclass(frozen=True)
class Facts:
    """What the offline provider knows of one grounded element.

    Attributes:
        element: the element record.
        col, row: its third of the picture horizontally (left/center/right) and vertically
            (top/middle/bottom), from the box centre.
        x: horizontal box centre in pixels.
        count: instances of its name in the picture.
    """

    element: Element
    col: str
    row: str
    x: float
    count: int

    def value(self, attribute: str) -> str:
        """The element's value of a split attribute."""
        if attribute == "name":
            return self.element.name
        if attribute == "colour":
            return self.element.attributes.colour or "unknown"
        if attribute == "size":
            return self.element.attributes.relative_size or "unknown"
        return getattr(self, attribute)


def element_facts(record: ElementsRecord) -> dict[str, Facts]:
    """Facts of every grounded, non-ignored element, by element id."""
    placed = placed_elements(record)
    counts = Counter(p.name for p in placed)
    facts = {}
    for item in placed:
        x, y = item.centre
        col = ("left", "center", "right")[min(int(3 * x / record.image.width), 2)]
        row = ("top", "middle", "bottom")[min(int(3 * y / record.image.height), 2)]
        facts[item.element_id] = Facts(record.element(item.element_id), col, row, x, counts[item.name])
    return facts


def focus_phrase(target: Facts, facts: dict[str, Facts]) -> str:
    """The shortest description that singles the target out among same-name elements."""
    element = target.element
    same = [f for f in facts.values() if f.element.name == element.name and f is not target]
    position = element.attributes.position or "picture"
    candidates = [
        element.name,
        f"{element.name} in the {position}",
        f"{say.coloured(element.name, element.attributes.colour)} in the {position}",
    ]
    keys = [lambda f: "", lambda f: f.element.attributes.position, lambda f: (f.element.attributes.position, f.element.attributes.colour)]
    for text, key in zip(candidates, keys):
        if all(key(other) != key(target) for other in same):
            return text
    return candidates[-1]


class OfflineTreeBuilder:
    """Builds one image's reasoning tree; use :meth:`build` once per instance.

    Args:
        record: the image's elements (grounded).
        rng: the input's seeded generator.
        min_nodes, max_nodes: bounds on path length in nodes (turns minus the final one).
    """

    def __init__(self, record: ElementsRecord, rng: random.Random, min_nodes: int, max_nodes: int) -> None:
        self.record = record
        self.rng = rng
        self.min_nodes = min_nodes
        self.max_nodes = max_nodes
        self.facts = element_facts(record)
        self.graph: nx.MultiDiGraph = relation_graph(record)
        self.nodes: list[TreeNode] = []
        self.edges: list[tuple[str, str]] = []
        self.paths: list[TreePath] = []

    def _node(self, question: str, answer: str, parent: str | None, element_id: str | None = None) -> str:
        node_id = f"n{len(self.nodes)}"
        self.nodes.append(TreeNode(id=node_id, question=question, answer=answer, element_id=element_id))
        if parent is not None:
            self.edges.append((parent, node_id))
        return node_id

    def build(self, targets: list[Element], provider: str, validation: dict | None = None) -> TreeRecord:
        """The tree with one path per target (targets in the given order).

        Args:
            targets: the K target elements.
            provider: provider name recorded in the tree.
            validation: pydantic validation context (bounds), see ``StepContext.validation``.

        Raises:
            pydantic.ValidationError: the tree breaks a rule of :class:`TreeRecord`.
        """
        names = [f.element.name for f in self.facts.values()]
        items, _ = say.inventory(names)
        root = self._node(say.pick(self.rng, say.ROOT_QUESTIONS), say.pick(self.rng, say.ROOT_ANSWERS).format(items=items), None)
        self._grow(root, [self.facts[t.element_id] for t in targets], [], [root])
        order = {t.element_id: i for i, t in enumerate(targets)}
        self.paths.sort(key=lambda p: order[p.target_element_id])
        data = {
            "image_id": self.record.image_id,
            "provider": provider,
            "root": root,
            "nodes": [n.model_dump() for n in self.nodes],
            "edges": self.edges,
            "paths": [p.model_dump() for p in self.paths],
            "relations": [r.model_dump() for r in relations_of(self.graph)],
        }
        return TreeRecord.model_validate(data, context=validation)

    # -- groups ----------------------------------------------------------------------
    def _split(self, targets: list[Facts], used: list[str]) -> tuple[str, dict[str, list[Facts]]]:
        attributes = [a for a in SPLIT_ATTRIBUTES if a not in used]
        self.rng.shuffle(attributes)
        best: tuple[str, dict[str, list[Facts]]] | None = None
        for attribute in attributes:
            groups: dict[str, list[Facts]] = {}
            for fact in targets:
                groups.setdefault(fact.value(attribute), []).append(fact)
            # Prefer the split with the most groups: shallower trees, shorter dialogues.
            if 2 <= len(groups) <= MAX_CHILDREN and (best is None or len(groups) > len(best[1])):
                best = attribute, groups
        if best is not None:
            return best
        ordered = sorted(targets, key=lambda f: f.x)
        half = len(ordered) // 2
        return "order", {"further left": ordered[:half], "further right": ordered[half:]}

    def _members(self, constraints: list[tuple[str, str, Facts]]) -> list[Facts]:
        members = list(self.facts.values())
        for attribute, value, pivot in constraints:
            if attribute == "order":
                keep = [f for f in members if (f.x <= pivot.x) == (value == "further left")]
                members = keep or members
            else:
                members = [f for f in members if f.value(attribute) == value]
        return members

    def _group_question(self, attribute: str, value: str, members: list[Facts]) -> str:
        if attribute == "col":
            return say.pick(self.rng, say.SIDE_QUESTIONS[value])
        if attribute == "row":
            return say.pick(self.rng, say.ROW_QUESTIONS[value])
        if attribute == "name":
            options = say.NAME_QUESTIONS_ONE if len(members) == 1 else say.NAME_QUESTIONS
            return say.pick(self.rng, options).format(name=value, plural=say.plural(value))
        if attribute == "colour":
            return say.pick(self.rng, say.COLOUR_QUESTIONS).format(colour=value)
        if attribute == "size":
            return say.pick(self.rng, say.SIZE_QUESTIONS.get(value, say.SIZE_QUESTIONS["medium"]))
        return say.pick(self.rng, say.ORDER_QUESTIONS[value])

    def _grow(self, parent: str, targets: list[Facts], constraints: list, path: list[str]) -> None:
        if len(targets) == 1:
            self._chain(parent, targets[0], path)
            return
        attribute, groups = self._split(targets, [c[0] for c in constraints])
        for value, group in groups.items():
            pivot = max(groups["further left"], key=lambda f: f.x) if attribute == "order" else group[0]
            narrowed = constraints + [(attribute, value, pivot)]
            members = self._members(narrowed)
            items, verb = say.inventory([f.element.name for f in members])
            question = self._group_question(attribute, value, members)
            answer = say.pick(self.rng, say.GROUP_ANSWERS).format(items=items, verb=verb)
            child = self._node(question, answer[0].upper() + answer[1:], parent)
            self._grow(child, group, narrowed, path + [child])

    # -- the target's chain ------------------------------------------------------------
    def _related(self, target: Facts, inverse: bool) -> list[tuple[str, str]]:
        """``(phrase, other element id)`` for the target's relations to differently named
        elements, sorted; with ``inverse``, also relations where the target is the object."""
        element_id = target.element.element_id
        options = [(say.RELATION_PHRASES[d["predicate"]][0], o) for _, o, d in self.graph.out_edges(element_id, data=True)]
        if inverse:
            options += [(say.RELATION_PHRASES[d["predicate"]][1], o) for o, _, d in self.graph.in_edges(element_id, data=True)]
        return sorted((p, o) for p, o in options if self.facts[o].element.name != target.element.name)

    def _relation_node(self, target: Facts) -> tuple[str, str] | None:
        options = self._related(target, inverse=True)
        if not options:
            return None
        phrase, other = options[self.rng.randrange(len(options))]
        other_name = self.facts[other].element.name
        question = say.pick(self.rng, say.RELATION_QUESTIONS).format(phrase=phrase, other=other_name)
        answer = say.pick(self.rng, say.RELATION_ANSWERS).format(name=target.element.name, phrase=phrase, other=other_name)
        return question, answer

    def _detail_nodes(self, target: Facts) -> list[tuple[str, str]]:
        attrs = target.element.attributes
        slots = {
            "name": target.element.name,
            "plural": say.plural(target.element.name),
            "colour": attrs.colour,
            "size": attrs.relative_size,
            "percent": f"{100 * (attrs.area_fraction or 0):.0f}" if (attrs.area_fraction or 0) >= 0.01 else "under 1",
            "count_word": say.counted(target.element.name, target.count),
            "verb": "is" if target.count == 1 else "are",
        }
        kinds = ["colour", "size"] + (["count"] if target.count > 1 else [])
        details = []
        for kind in kinds:
            question, answer = say.DETAIL_TEMPLATES[kind][self.rng.randrange(len(say.DETAIL_TEMPLATES[kind]))]
            details.append((question.format(**slots), answer.format(**slots)))
        self.rng.shuffle(details)
        return details

    def _chain(self, parent: str, target: Facts, path: list[str]) -> None:
        used = len(path) + 1  # nodes so far plus the leaf
        needed = max(0, self.min_nodes - used)
        room = max(0, self.max_nodes - used)
        extras: list[tuple[str, str]] = []
        relation = self._relation_node(target)
        if relation is not None:
            extras.append(relation)
        extras += self._detail_nodes(target)
        wanted = needed + (1 if self.rng.random() < EXTRA_NODE_CHANCE else 0)
        for question, answer in extras[: min(wanted, room)]:
            parent = self._node(question, answer, parent)
            path = path + [parent]
        focus = focus_phrase(target, self.facts)
        leaf_answer = say.pick(self.rng, say.LEAF_ANSWERS).format(focus=focus, description=target.element.description)
        leaf = self._node(say.pick(self.rng, say.LEAF_QUESTIONS), leaf_answer, parent, target.element.element_id)
        self.paths.append(
            TreePath(
                target_element_id=target.element.element_id,
                reasoning_question=self._reasoning_question(target),
                node_ids=path + [leaf],
            )
        )

    def _reasoning_question(self, target: Facts) -> str:
        """Step 2-1's question ``Q_i`` (Eq. 2): it designates the target without naming it."""
        attrs = target.element.attributes
        slots = {"colour": attrs.colour, "size": attrs.relative_size, "position": attrs.position}
        named = sorted((p, self.facts[o].element.name) for p, o in self._related(target, inverse=False))
        if named:
            phrase, other = named[0]
            return say.pick(self.rng, say.REASONING_QUESTIONS).format(phrase=phrase, other=other, **slots)
        return say.pick(self.rng, say.REASONING_QUESTIONS_ALONE).format(**slots)
