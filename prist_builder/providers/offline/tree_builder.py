"""Offline reasoning trees (step 2): from a need or the scene's context down to each target.

The root sums up the scene (what kind of place it looks like and what it holds); it frames
the tree and is not voiced in the dialogues. Below it, each target's path opens with its
reasoning question ``Q_i`` (Eq. 2): a need the target meets, or the scene's context the
target reveals (from :mod:`.knowledge`). With four targets two of them share one opening
node, a context question both answer, so that no node has more than three children
(section 3.2.2). Then come one to three inference nodes (function, role, material, place,
look, a relation, telling same-named objects apart), and a part target ends with the part
of its whole. A path has 2 to 4 nodes below the root (a dialogue of 3 to 5 turns with the
segmentation turn), 3 most of the time, as in the authors' test split.
"""

from __future__ import annotations

import random
from collections import Counter

from prist_builder.providers.base import TargetSlot
from prist_builder.providers.offline import kinds
from prist_builder.providers.offline import phrasing as say
from prist_builder.providers.offline.grammar import realise
from prist_builder.providers.offline.relations import relations_of
from prist_builder.providers.offline.scene import Subject, scene_of
from prist_builder.records import Element, ElementsRecord, TreeRecord
from prist_builder.records.limits import EMPTY_ID_PREFIX, MAX_CHILDREN, MULTI_ID_SEPARATOR

LENGTH_WEIGHTS = {2: 0.12, 3: 0.83, 4: 0.05}
"""Chance of each number of reasoning turns (path nodes below the root) when the bounds allow:
the authors' test split has 13% / 86% / 1% dialogues of 3 / 4 / 5 turns."""

LONGEST_PATH = 5
"""Most reasoning turns a path can take: an opening and four inference acts."""

NEED_SHARE = 0.9
"""Chance that a known target's path opens with a need rather than the scene's context."""

TELL_APART_SHARE = 0.5
"""Chance of an explicit "how do I tell it apart" turn for a target with same-named peers."""

FRAME_WAYS = ("position", "order")
"""Ways of telling an object apart that name the frame: never repeated in a turn of their own."""

ACT_WEIGHTS = {
    "function": 3.0,
    "role": 2.0,
    "material": 1.0,
    "place": 0.5,
    "look": 0.1,
    "relation": 0.15,
    "trait": 3.0,
    "companion": 3.0,
    "user": 3.0,
}
"""Relative chance of each inference act for a known category."""

ANIMATE_WEIGHTS = {"activity": 3.0, "place": 1.5, "look": 0.2, "relation": 0.2, "trait": 2.5, "companion": 1.5}
"""Relative chance of each inference act for a person or an animal (never "used for" or "made of")."""

LIVING_KINDS = frozenset({"body part"})
"""Kinds of category that are parts of a living body: never asked what they are made of."""

GENERIC_WEIGHTS = {"unknown_use": 2.0, "look": 2.0, "rank": 1.5, "count": 1.0, "relation": 2.0}
"""Relative chance of each inference act for a label the knowledge table lacks."""

FILLER_ACTS = ("look", "rank", "count")
"""Acts every grounded subject supports (its colour and share of the frame, its size rank, how many of its name)."""

ROOT_QUESTIONS = (
    "What is (going on|happening) in this (scene|picture)?",
    "What (is this picture|does this photo show) overall?",
)
ROOT_ANSWERS = (
    "(The picture|This photo|The image) (shows|holds) {inventory}.",
    "(I can see|There are|In view are) {inventory}.",
)
"""The root answers with what the regions show and nothing else (no guessed setting)."""

ACT_FAMILY = {
    "need": "use",
    "need_animate": "use",
    "function": "use",
    "role": "use",
    "activity": "use",
    "held": "use",
    "part": "use",
    "unknown_use": "use",
    "context": "setting",
    "pair": "setting",
    "place": "setting",
    "look": "look",
    "held_plain": "look",
    "part_plain": "look",
    "unknown_open": "look",
    "pair_plain": "look",
    "rank": "size",
}
"""The dialogue act each act performs: a dialogue asks each act once about one object (a
function question after a need answered with the use, or "why is it here" after "what is
it for", asks the same thing twice). Acts not listed are their own family."""


def family(act: str) -> str:
    """The dialogue act ``act`` performs (see :data:`ACT_FAMILY`)."""
    return ACT_FAMILY.get(act, act)


class OfflineTreeBuilder:
    """Builds one image's reasoning tree; use :meth:`build` once per instance.

    Args:
        record: the image's elements (grounded).
        rng: the input's seeded generator.
        min_turns, max_turns: dialogue length bounds in turns, the segmentation turn included.
    """

    def __init__(self, record: ElementsRecord, rng: random.Random, min_turns: int, max_turns: int) -> None:
        self.record = record
        self.rng = rng
        self.min_reasoning = max(2, min_turns - 1)
        self.max_reasoning = min(LONGEST_PATH, max(2, max_turns - 1))
        self.scene = scene_of(record)
        self.words = say.Wording(self.scene, rng)
        self.nodes: list[dict] = []  # TreeNode fields; validated once, with the whole tree
        self.edges: list[tuple[str, str]] = []
        self.paths: list[dict] = []  # TreePath fields

    def _node(self, act: tuple[str, str], parent: str | None, element_id: str | None = None) -> str:
        node_id = f"n{len(self.nodes)}"
        self.nodes.append({"id": node_id, "question": act[0], "answer": act[1], "element_id": element_id})
        if parent is not None:
            self.edges.append((parent, node_id))
        return node_id

    def build(self, targets: list[Element], provider: str, validation: dict | None = None) -> TreeRecord:
        """The tree with one path per target (targets in the given order).

        Raises:
            pydantic.ValidationError: the tree breaks a rule of :class:`TreeRecord`.
        """
        subjects = [self.scene[t.element_id] for t in targets]
        root = self._node(self._root(), None)
        self._single_groups(root, subjects, len(subjects))
        order = {t.element_id: i for i, t in enumerate(targets)}
        self.paths.sort(key=lambda p: order[p["target_element_id"]])
        return self._record(root, provider, validation)

    def _single_groups(self, root: str, subjects: list[Subject], children: int) -> None:
        """The paths of single targets below ``root``; when the root would get more than
        :data:`MAX_CHILDREN` of ``children`` paths, two targets share an opening node."""
        groups: list[list[Subject]] = [[s] for s in subjects]
        if children > MAX_CHILDREN:
            # Pair two targets that are wholes and named without the frame, where there are two such.
            plain = [
                i
                for i, s in enumerate(subjects)
                if s.whole is None and self.scene.focus(s.element.element_id).way not in FRAME_WAYS
            ]
            wholes = [i for i, s in enumerate(subjects) if s.whole is None]
            pool = plain if len(plain) >= 2 else wholes if len(wholes) >= 2 else list(range(len(subjects)))
            first, second = sorted(self.rng.sample(pool, 2))
            groups = [[subjects[first], subjects[second]]] + [
                [s] for i, s in enumerate(subjects) if i not in (first, second)
            ]
        for group in groups:
            if len(group) == 1:
                self._single(root, group[0])
            else:
                self._pair(root, group)

    def _record(self, root: str, provider: str, validation: dict | None) -> TreeRecord:
        data = {
            "image_id": self.record.image_id,
            "provider": provider,
            "root": root,
            "nodes": self.nodes,
            "edges": self.edges,
            "paths": self.paths,
            "relations": [r.model_dump() for r in relations_of(self.scene.graph)],
        }
        return TreeRecord.model_validate(data, context=validation)

    def build_slots(
        self, slots: list[TargetSlot], targets: list[Element], provider: str, validation: dict | None = None
    ) -> TreeRecord:
        """The tree with one path per target slot, in slot order (issue 22): ``single`` slots
        as :meth:`build` writes them, ``multi`` and ``empty`` ones by :mod:`.kinds`.

        A slot that cannot be written as asked falls back to the single target the pipeline
        drew for it (``targets[i]``): an empty slot when no plausible absent thing is left, a
        multi or empty slot whose path cannot reach ``min_turns``, and, with four slots and
        fewer than two single ones, the last non-single slots (two single paths share an
        opening node so that the root keeps at most three children).

        Raises:
            pydantic.ValidationError: the tree breaks a rule of :class:`TreeRecord`.
        """
        slots = list(slots)
        root = self._node(self._root(), None)
        plans: list[tuple[str, list[tuple[str, str]], str]] = []  # (kind, acts, target id or absent thing)
        taken: set[str] = set()
        for index, slot in enumerate(slots):
            plan = self._slot_plan(slot, taken)
            if plan is None:
                slots[index] = TargetSlot("single", (targets[index],))
            plans.append(plan)
        while len(slots) > MAX_CHILDREN and sum(s.kind == "single" for s in slots) < 2:
            index = max(i for i, s in enumerate(slots) if s.kind != "single")
            slots[index], plans[index] = TargetSlot("single", (targets[index],)), None
        singles = [s.elements[0] for s in slots if s.kind == "single"]
        single_paths: dict[str, dict] = {}
        if singles:
            start = len(self.paths)
            self._single_groups(root, [self.scene[e.element_id] for e in singles], len(slots))
            single_paths = {p["target_element_id"]: p for p in self.paths[start:]}
        self.paths = []
        empties = 0
        for slot, plan in zip(slots, plans, strict=True):
            if slot.kind == "single":
                self.paths.append(single_paths[slot.elements[0].element_id])
            elif slot.kind == "multi":
                assert plan is not None
                ids = [e.element_id for e in slot.elements]
                self._kind_path(root, plan[1], MULTI_ID_SEPARATOR.join(ids), kind="multi", target_element_ids=ids)
            else:
                assert plan is not None
                leaf_id = EMPTY_ID_PREFIX if not empties else f"{EMPTY_ID_PREFIX}-{empties}"
                empties += 1
                self._kind_path(root, plan[1], leaf_id, kind="empty", absent=plan[2])
        return self._record(root, provider, validation)

    def _slot_plan(self, slot: TargetSlot, taken: set[str]) -> tuple[str, list[tuple[str, str]], str] | None:
        """The acts of a multi or empty slot, or ``None`` (single, or it cannot be written)."""
        if slot.kind == "multi":
            acts = kinds.multi_acts(self.scene, [e.element_id for e in slot.elements], self.rng, self._length())
        elif slot.kind == "empty":
            thing = kinds.pick_absent(self.record, self.scene, self.rng, taken)
            if thing is None:
                return None
            taken.add(thing.name)
            acts = kinds.empty_acts(self.scene, self.words, thing, self.rng, self._length())
            return ("empty", acts, thing.name) if len(acts) >= self.min_reasoning else None
        else:
            return None
        return ("multi", acts, "") if self.min_reasoning <= len(acts) <= self.max_reasoning else None

    def _kind_path(self, root: str, acts: list[tuple[str, str]], target: str, **fields: object) -> None:
        """A chain of ``acts`` below the root; the last node names ``target`` (joined ids or ``none...``)."""
        parent, path = root, [root]
        for index, act in enumerate(acts):
            parent = self._node(act, parent, target if index == len(acts) - 1 else None)
            path.append(parent)
        reasoning = acts[0][0]
        self.paths.append({"target_element_id": target, "reasoning_question": reasoning, "node_ids": path, **fields})

    def _root(self) -> tuple[str, str]:
        places = Counter(c.settings[0] for c in (s.category for s in self.scene.subjects.values()) if c.settings)
        place = places.most_common(1)[0][0] if places else None
        inventory = self.words.inventory()
        del place  # the setting is a guess; the root states only what the regions show
        question = realise(ROOT_QUESTIONS, self.rng, {})
        return question, realise(ROOT_ANSWERS, self.rng, {"inventory": inventory})

    def _length(self) -> int:
        roll, total = self.rng.random(), 0.0
        length = max(LENGTH_WEIGHTS)
        for candidate, weight in LENGTH_WEIGHTS.items():
            total += weight
            if roll < total:
                length = candidate
                break
        return min(max(length, self.min_reasoning), self.max_reasoning)

    # -- openings ------------------------------------------------------------------------
    def _opening(self, subject: Subject) -> str:
        """The act that opens a single target's path (about the whole, for a part)."""
        about = self.scene[subject.whole] if subject.whole else subject
        category = about.category
        if not category.known:
            return "unknown_open"
        if category.part_of or not category.settings or self.rng.random() < NEED_SHARE:
            return "need"
        return "context"

    def _single(self, root: str, subject: Subject) -> None:
        self.words.new_path()
        length = self._length()
        opening = self._opening(subject)
        about = self.scene[subject.whole] if subject.whole else subject
        first = self.words.act(opening, about, named=False)
        node = self._node(first, root)
        self._chain(root, node, subject, length - 1, reasoning=first[0], named=True, about=about, opening=opening)

    def _pair(self, root: str, pair: list[Subject]) -> None:
        known = all(
            s.category.known and s.category.settings and not s.category.part_of and s.whole is None for s in pair
        )
        opening = "pair" if known else "pair_plain"
        first = self.words.pair(opening, pair)
        node = self._node(first, root)
        for subject in pair:
            self.words.new_path()
            about = self.scene[subject.whole] if subject.whole else subject
            self._chain(
                root, node, subject, self._length() - 1, reasoning=first[0], named=False, about=about, opening=opening
            )

    # -- inference acts --------------------------------------------------------------------
    def _plan(self, subject: Subject, about: Subject, count: int, opening: str) -> list[tuple[str, Subject]]:
        """``count`` acts after the ``opening`` act; the last one is about the target itself. No
        act repeats the dialogue act (:func:`family`) of an earlier one about the same object."""
        plan: list[tuple[str, Subject]] = []
        asked = {family(opening)}
        if subject.whole is not None:
            if subject.link == "part":
                last = "part" if subject.category.known else "part_plain"
            else:
                last = "held" if subject.category.known else "held_plain"
            pool = {a: w for a, w in self._pool(about).items() if family(a) not in asked}
            plan = [(act, about) for act in self._draw(pool, count - 1, asked)] + [(last, subject)]
            return plan
        pool = {a: w for a, w in self._pool(subject).items() if family(a) not in asked}
        wanted = count
        way = self.scene.focus(subject.element.element_id).way
        if way not in FRAME_WAYS and self.scene.peers(subject) and count >= 2 and self.rng.random() < TELL_APART_SHARE:
            wanted -= 1
            plan.append(("tell_apart", subject))
        plan += [(act, subject) for act in self._draw(pool, wanted, asked | {"tell_apart"})]
        return plan

    def _pool(self, subject: Subject) -> dict[str, float]:
        category = subject.category
        weights = dict(GENERIC_WEIGHTS if not category.known else ANIMATE_WEIGHTS if category.animate else ACT_WEIGHTS)
        if not self.scene.relations(subject):
            weights.pop("relation", None)
        if subject.count < 2:
            weights.pop("count", None)
        if category.known and len(category.places) < 2:
            weights.pop("place", None)
        if category.kind in LIVING_KINDS:  # "what is the ear made of?" is no question to ask
            weights.pop("material", None)
        if not subject.colour:
            weights.pop("look", None)
        if not category.traits or category.form == "mass":
            weights.pop("trait", None)
        if not category.goes_with:
            weights.pop("companion", None)
        if not category.users:
            weights.pop("user", None)
        return weights

    def _draw(self, weights: dict[str, float], count: int, asked: set[str] | None = None) -> list[str]:
        """``count`` acts of distinct dialogue acts (:func:`family`, none in ``asked``) drawn by
        weight; when the pool runs out (long dialogues asked for with --min-turns), acts any
        subject supports fill in."""
        done = set(asked or ())
        pool = {a: w for a, w in weights.items() if family(a) not in done}
        out = []
        while pool and len(out) < count:
            names = list(pool)
            pick = self.rng.choices(names, weights=[pool[n] for n in names])[0]
            out.append(pick)
            done.add(family(pick))
            pool = {a: w for a, w in pool.items() if family(a) not in done}
        fillers = [act for act in FILLER_ACTS if act not in out and family(act) not in done]
        fillers += [act for act in FILLER_ACTS if act not in out and act not in fillers]
        out += fillers[: max(0, count - len(out))]
        return out

    def _chain(
        self,
        root: str,
        parent: str,
        subject: Subject,
        count: int,
        reasoning: str,
        named: bool,
        about: Subject,
        opening: str,
    ) -> None:
        path = [root, parent]
        plan = self._plan(subject, about, count, opening) if count > 0 else []
        previous = about if named else None
        for index, (act, topic) in enumerate(plan):
            last = index == len(plan) - 1
            whole_named = topic.whole is not None and previous is self.scene[topic.whole]
            text = self.words.act(act, topic, named=previous is topic, whole_named=whole_named)
            node = self._node(text, parent, subject.element.element_id if last else None)
            previous, parent = topic, node
            path.append(node)
        if not plan:  # the opening itself is the leaf
            self.nodes[int(parent[1:])]["element_id"] = subject.element.element_id
        self.paths.append(
            {"target_element_id": subject.element.element_id, "reasoning_question": reasoning, "node_ids": path}
        )
