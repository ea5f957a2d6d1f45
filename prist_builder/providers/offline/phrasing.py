"""Wording for the offline provider: slot values of an act for one element, and act realisation.

:class:`Wording` turns a :class:`.scene.Subject` into the slots of :mod:`.acts` (its focus
with the right article, pronoun and verb agreement from the knowledge table's noun form,
a need, uses, places, the share of the frame from :mod:`.geometry`) and realises acts with
:func:`.grammar.realise`. Every choice goes through the input's seeded generator.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Sequence

from prist_builder.providers.offline.acts import ACTS, ASK_A_PERSON
from prist_builder.providers.offline.grammar import realise
from prist_builder.providers.offline.knowledge import indefinite_article, located
from prist_builder.providers.offline.scene import Scene, Subject, count_word

RANKS = ("largest", "second largest", "third largest")
LONG_LABEL_WORDS = 3
"""Labels longer than this many words use their table category's name in general statements."""
PERCENT_FLOOR = 1.0
"""Shares of the frame under this many percent read as "less than 1%"."""


_INDEFINITE = re.compile(r"^an?\s+", re.IGNORECASE)


def elide_articles(items: Sequence[str]) -> list[str]:
    """A list's items without the "a"/"an" that the item before already had, as a person writes
    a list: ``["a saucer", "a teaspoon", "cheese"]`` -> ``["a saucer", "teaspoon", "cheese"]``."""
    out = list(items)
    for i in range(1, len(items)):
        if _INDEFINITE.match(items[i - 1]) and _INDEFINITE.match(items[i]):
            out[i] = _INDEFINITE.sub("", items[i])
    return out


def join(items: Sequence[str]) -> str:
    """``"a, b and c"``."""
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"


def capital(text: str) -> str:
    """``text`` with its first letter upper-cased."""
    return text[:1].upper() + text[1:]


def share(fraction: float) -> tuple[str, str]:
    """``("about 12%", "12%")`` for an area fraction; ``("less than 1%", "under 1%")`` below the floor."""
    percent = 100.0 * fraction
    if percent < PERCENT_FLOOR:
        return "less than 1%", "under 1%"
    return f"about {percent:.0f}%", f"{percent:.0f}%"


FIRST_TO_THIRD = (("myself", "themselves"), ("my", "their"), ("me", "them"), ("I am", "they are"), ("I", "they"))
"""First-person words of a need and their third-person forms ("someone wanted to dry their hair")."""


FIRST_TO_SECOND = (("myself", "yourself"), ("my", "your"), ("me", "you"), ("I am", "you are"), ("I", "you"))
"""First-person words of a need and their second-person forms ("help you dry your hair")."""


def second_person(need: str) -> str:
    """A first-person need phrase in the second person: ``"dry my hair"`` -> ``"dry your hair"``."""
    return third_person(need, FIRST_TO_SECOND)


def third_person(need: str, swaps_to: tuple[tuple[str, str], ...] = FIRST_TO_THIRD) -> str:
    """A first-person need phrase in the third person: ``"pour myself some tea"`` -> ``"pour themselves some tea"``."""
    words = need.split()
    swaps = dict(swaps_to)
    out = []
    index = 0
    while index < len(words):
        pair = " ".join(words[index : index + 2])
        if pair in swaps:
            out.append(swaps[pair])
            index += 2
            continue
        out.append(swaps.get(words[index], words[index]))
        index += 1
    return " ".join(out)


SAID_SLOTS = ("use", "use2", "use3", "place", "place2", "place3", "setting", "trait", "trait2", "trait3")
SAID_SLOTS += ("pair", "pair2", "pair3", "pair4", "user", "user2", "user3")
"""Slots whose phrase is not said twice on one path (:meth:`Wording.new_path`)."""
LOOKING_VERBS = frozenset("find see spot watch hear listen visit know tell learn check recognise identify".split())
"""Needs that ask where something is rather than what to do: a need answer does not repeat them."""
THIRD_SLOTS = ("use3", "place3", "at_place3", "trait3", "pair3", "pair4", "user", "user2", "User_cap", "user3")
"""Slots filled only when the table gives the phrases (a third distinct one: no "a, b or b"; users)."""


PAIRING_STOPWORDS = frozenset(
    "a an the to of for in on at my me i and or with up down out some it is be get have do make take keep go put "
    "use find one someone something them their your you off into from by as".split()
)
"""Words that do not tie a need to a use (see :func:`stems`)."""


def stems(phrase: str, stopwords: frozenset[str] = PAIRING_STOPWORDS) -> set[str]:
    """Rough stems of a phrase's content words: ``"sitting at a table"`` -> ``{"sit", "table"}``.

    Used to pair a need with a use that meets it (words in ``stopwords`` left out); no
    dictionary, a few suffix rules.
    """
    out = set()
    for word in re.findall(r"[a-z]+", phrase.lower()):
        if word in stopwords or len(word) < 3:
            continue
        word = re.sub(r"(ing|ed|es|s)$", "", word) if len(word) > 4 else word
        out.add(word[:-1] if len(word) > 3 and word[-1] == word[-2] else word)
    return out


def meets(need: str, use: str) -> bool:
    """Whether ``use`` shares a content-word stem with ``need`` ("sit down at the table" and
    "sitting at a table" do; "standing on to change a bulb" does not)."""
    return bool(stems(need) & stems(use))


def usable(templates: Sequence[str], slots: dict[str, str]) -> Sequence[str]:
    """The templates whose :data:`THIRD_SLOTS` are all filled (all of them if none is)."""
    missing = [f"{{{key}}}" for key in THIRD_SLOTS if key not in slots]
    kept = [t for t in templates if not any(m in t for m in missing)]
    return kept or templates


class Wording:
    """Realises acts about the elements of one scene.

    Args:
        scene: the image's scene.
        rng: the input's seeded generator.
    """

    def __init__(self, scene: Scene, rng: random.Random) -> None:
        self.scene = scene
        self.rng = rng
        self.said: set[str] = set()
        self._fixed_slots: dict[str, dict[str, str]] = {}

    def new_path(self) -> None:
        """Forget what the previous path said (uses and places are not repeated within a path)."""
        self.said = set()

    def _fresh(self, options: Sequence[str]) -> list[str]:
        """``options`` shuffled, those not yet said on this path first."""
        shuffled = list(options)
        self.rng.shuffle(shuffled)
        return sorted(shuffled, key=lambda o: o in self.said)

    def inventory(self) -> str:
        """``"two people, a bus and sky"``: every grounded element, counted, in first-seen order."""
        counts = Counter(s.name for s in self.scene.subjects.values())
        firsts = {s.name: s for s in reversed(list(self.scene.subjects.values()))}
        names = list(dict.fromkeys(s.name for s in self.scene.subjects.values()))
        return join([firsts[n].category.counted(n, counts[n], count_word(counts[n])) for n in names])

    def slots(self, subject: Subject, named: bool) -> dict[str, str]:
        """Slot values of the acts about ``subject``; ``named``: the previous answer named it ("it").

        The fixed part (names, pronouns, shares) is computed once per subject; needs, uses,
        places and the relation are drawn afresh with the generator on every call.
        """
        category = subject.category
        slots = dict(self._fixed(subject))
        slots["ref"] = slots["it"] if named else slots["the"]
        slots["ref_obj"] = slots["them"] if named else slots["the"]
        need = self.rng.choice(category.needs) if category.needs else "understand this scene"
        uses = self._fresh(category.uses or ["what its label says"])
        places = self._fresh(category.places or ["a scene like this"])
        settings = self._fresh(category.settings or places)
        second_place = places[1] if len(places) > 1 else places[0]
        slots.update(
            {
                "need": need,
                "need3": third_person(need),
                "use": uses[0],
                "use2": uses[1] if len(uses) > 1 else uses[0],
                "place": places[0],
                "place2": second_place,
                "setting": settings[0],
                "setting2": settings[1] if len(settings) > 1 else places[1] if len(places) > 1 else settings[0],
                "at_setting": located(settings[0]),
                "at_place": located(places[0]),
                "At_place": capital(located(places[0])),
                "at_place2": located(second_place),
                "Use_cap": capital(uses[0]),
                "Place_cap": capital(places[0]),
                "Setting_cap": capital(settings[0]),
            }
        )
        traits = self._fresh(category.traits or ["look like this"])
        slots["trait"], slots["trait2"] = traits[0], traits[1] if len(traits) > 1 else traits[0]
        slots["Place2_cap"] = capital(second_place)
        pairs = elide_articles(self._fresh(category.goes_with or ["nothing in particular"]))
        slots["pair"], slots["pair2"] = pairs[0], pairs[1] if len(pairs) > 1 else pairs[0]
        slots["Pair_cap"] = capital(pairs[0])
        users = self._fresh(category.users)
        if users:  # templates naming a user are not used for a category without users
            slots["user"], slots["user2"] = users[0], users[1] if len(users) > 1 else users[0]
            slots["User_cap"] = capital(users[0])
        for key, options in (
            ("use3", uses),
            ("place3", places),
            ("trait3", traits),
            ("pair3", pairs),
            ("user3", users),
        ):
            if len(options) > 2:  # a third distinct phrase, else templates naming it are not used
                slots[key] = options[2]
        if len(pairs) > 3:
            slots["pair4"] = pairs[3]
        if "place3" in slots:
            slots["at_place3"] = located(slots["place3"])
        if len(category.made_of) > 1:
            material = self.rng.choice(category.made_of)
            slots["material"], slots["Material_cap"] = material, capital(material)
        relations = self.scene.relations(subject)
        if relations:
            phrase, other = relations[self.rng.randrange(len(relations))]
            slots["rel"], slots["other"] = phrase, self.scene[other].name
        return slots

    def _fixed(self, subject: Subject) -> dict[str, str]:
        """The slots that do not depend on the generator (cached per subject)."""
        element_id = subject.element.element_id
        if element_id in self._fixed_slots:
            return self._fixed_slots[element_id]
        category, name = subject.category, subject.name
        focus = self.scene.focus(element_id)
        plural_form = category.is_plural() or category.person
        # A long product label ("kong air dog squeakair tennis ball") speaks of its kind in general terms.
        generic = category.plural_of(category.name if category.known and len(name.split()) > LONG_LABEL_WORDS else name)
        about, bare = share(subject.geometry.fraction)
        it = "they" if plural_form else "it"
        whole = self.scene[subject.whole] if subject.whole else None
        unit = {"mass": f"patch of {name}", "pair": f"pair of {name}", "plural": f"set of {name}"}.get(
            category.form, name
        )
        units = {"mass": f"patches of {name}", "pair": f"pairs of {name}", "plural": f"sets of {name}"}.get(
            category.form, generic
        )
        number = count_word(subject.count)
        counted = category.counted(name, subject.count, number)
        slots = {
            "The": capital(f"the {focus.text}"),
            "the": f"the {focus.text}",
            "focus": focus.text,
            "it": it,
            "It": capital(it),
            "them": "them" if plural_form else "it",
            "its": "their" if plural_form else "its",
            "Its": "Their" if plural_form else "Its",
            "is": "are" if plural_form else "is",
            "Is": "Are" if plural_form else "Is",
            "does": "do" if plural_form else "does",
            "Does": "Do" if plural_form else "Does",
            "gen": generic,
            "Gen": capital(generic),
            "are": "is" if category.form == "mass" else "are",
            "a": category.a(name),
            "name": name,
            "a_kind": f"{indefinite_article(category.kind)} {category.kind}",  # a count noun for every form
            "A_kind": capital(f"{indefinite_article(category.kind)} {category.kind}"),
            "name1": unit,
            "names": units,
            "link": subject.link,
            "material": category.made_of[0] if category.made_of else "something the picture does not show",
            "Material_cap": capital(category.made_of[0]) if category.made_of else "Something the picture does not show",
            "colour": subject.colour or "plain",
            "Colour_cap": capital(subject.colour or "plain"),
            "share": about,
            "share_bare": bare,
            "reason": focus.reason,
            "number": number,
            "number_phrase": counted.replace(category.a(name), f"one {name}") if subject.count == 1 else counted,
            "part": name,
            "whole": f"the {self.scene.focus(whole.element.element_id).text}" if whole else "it",
            "it_whole": "it",
        }
        ranked = self.scene.ranked()
        position = ranked.index(subject)
        slots["total"] = count_word(len(ranked))
        if position == len(ranked) - 1:
            slots["rank"] = "smallest"
        else:
            slots["rank"] = RANKS[position] if position < len(RANKS) else f"{position + 1}th largest"
        self._fixed_slots[element_id] = slots
        return slots

    def act(self, act: str, subject: Subject, named: bool, whole_named: bool = False) -> tuple[str, str]:
        """``(question, answer)`` of one act about ``subject``; ``whole_named``: the previous answer
        named the subject's whole, so the question calls it "it"."""
        questions, answers = ACTS[act]
        if act == "need" and subject.category.animate:
            answers = ASK_A_PERSON if subject.category.person else ACTS["need_animate"][1]
        if act == "context" and subject.category.animate:  # a person or an animal is not "used for" anything
            answers = [t for t in answers if "{use" not in t]
        slots = self.slots(subject, named)
        if whole_named:
            slots["whole"] = "it"
        if act == "need" and not subject.category.person:
            self._lead_with_the_need(slots, subject)
        answers = usable(answers, slots)
        if slots["need"].split(" ", 1)[0] in LOOKING_VERBS:  # "would help you find what ..." reads as a riddle
            answers = [t for t in answers if "{need_ans}" not in t] or answers
        template = questions[self.rng.randrange(len(questions))] if questions else ""
        # A need answer speaks to whoever the question named: "help you dry your hair" after
        # "I need to dry my hair", "help them dry their hair" after "someone needed to ...".
        third = "{need3}" in template
        slots["who"], slots["need_ans"] = ("them", slots["need3"]) if third else ("you", second_person(slots["need"]))
        question, answer = realise([template], self.rng, slots), realise(answers, self.rng, slots)
        for key in SAID_SLOTS:
            value = slots.get(key)
            if value and (value in question or value in answer):
                self.said.add(value)
        return question, answer

    def _lead_with_the_need(self, slots: dict[str, str], subject: Subject) -> bool:
        """Make a need answer's first use one that meets the asked need (:func:`meets`): "sit down
        at the table" -> "sitting at a table, or ...". The others stay as drawn, so answers keep
        their variety. False when no use of the table meets it."""
        matching = [use for use in subject.category.uses if meets(slots["need"], use)]
        if not matching:
            return False
        first = self.rng.choice(matching)
        rest = [slots[key] for key in ("use", "use2", "use3") if key in slots and slots[key] != first]
        for key, value in zip(("use", "use2", "use3"), [first, *rest], strict=False):
            if key in slots:
                slots[key] = value
        slots["Use_cap"] = capital(first)
        return True

    def pair(self, act: str, pair: list[Subject]) -> tuple[str, str]:
        """``(question, answer)`` of the opening shared by two targets."""
        questions, answers = ACTS[act]
        first, second = (self.slots(s, named=False) for s in pair)
        common = [p for p in pair[0].category.settings if p in pair[1].category.settings]
        slots = {
            "the1": first["the"],
            "The1": first["The"],
            "the2": second["the"],
            "place": common[0] if common else first["setting"],
            "place2": second["setting"],
        }
        templates = answers if common else answers[-1:]
        if act == "pair" and not common:
            return realise(questions, self.rng, slots), realise(templates, self.rng, slots)
        return realise(questions, self.rng, slots), realise(answers[:-1] if act == "pair" else answers, self.rng, slots)
