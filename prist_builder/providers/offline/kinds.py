"""Offline multi-target and empty-target paths (issue 22; the paper's Limitations section).

A *multi* path narrows a need (or, for a kind the table has no need for, the question of what
the picture holds more than one of) to a set of same-kind objects: its opening answers with
the set, middle acts say where its members are or how much of the frame they cover, and its
leaf names each member by its focus ("The brown chair by the table and the black chair.").

An *empty* path follows a need that is plausible for the scene (a knowledge-table category
whose settings, else places, the pictured categories share) to the object that would meet
it, and ends in a "none" answer: the picture holds no such thing, checked with
:func:`prist_builder.providers.absent.absent_conflict`.

Every template is written for this project; answers stay short, as in the released split.
"""

from __future__ import annotations

import random
from collections import Counter

from prist_builder.providers.absent import absent_conflict
from prist_builder.providers.offline import phrasing as say
from prist_builder.providers.offline.grammar import realise
from prist_builder.providers.offline.knowledge import Category, located, lookup, table
from prist_builder.providers.offline.scene import Scene, Subject, count_word
from prist_builder.records import ElementsRecord, Turn

NEED_SET = (
    (
        "(Suppose|Say|Imagine) (a few|several) (people|visitors) here (all |)(wanted|needed) to {need3}. What (could|"
        "would) they turn to?",
        "If (a group of|a few) (people|friends) (wanted|needed) to {need3} at once, what in this (picture|scene) "
        "would serve (them all|all of them)?",
        "What here could (help|serve) more than one person who (wanted|needed) to {need3}?",
    ),
    (
        "The {names} (would|could); there are {number} of them.",
        "(More than one thing|Several things) here (would|could) (help|serve): the {number} {names}.",
        "(All|Each) of the {number} {names} (would do|could serve).",
    ),
)
COUNT_SET = (
    (
        "(Is there anything|What is there) (that|which) (appears|shows up) more than once in this (picture|scene)?",
        "(Which|What) kind of (thing|object) does this (picture|photo) show (several|more than one) of?",
    ),
    (
        "(There are|I can see|The picture shows) {number} {names}.",
        "{Number} {names} (are in view|appear in the picture).",
    ),
)
USE_SET = (
    (
        "What are {names} (usually|typically) (for|used for)?",
        "(Why|What for) would {names} be (here|in a scene like this)?",
    ),
    ("{Gen} {are} (usually|typically|mostly) used for {use}.", "(Mostly|Usually) for {use}."),
)
WHERE_SET = (
    ("Where (are they|do they stand) in the (picture|frame)?", "(And|So) where are they?"),
    ("{where}.",),
)
SHARE_SET = (
    ("How much of the (picture|frame) do they (take up|cover) together?",),
    ("(Together|Between them) they cover {share} of the (picture|frame).",),
)
WHICH_SET = (
    (
        "(Which ones|Which of them) (do you mean|are they), exactly?",
        "(Can you|Could you) (name|point out) each of them?",
        "How would you tell (them|each one) apart?",
    ),
    ("{The_list}.", "{Both}: {the_list}.", "(I mean|That is) {the_list}."),
)
MULTI_REQUESTS = (
    "(Please|Now) segment (each of them|all of them|every one of them), one mask per object.",
    "(Based on|Going by) (our conversation|the dialogue above), (please |)(mark|outline|segment) each of those "
    "objects at pixel level.",
    "Could you (produce|give me) a (segmentation|mask) for each of the objects (we settled on|the conversation "
    "points to)?",
)

NEED_ABSENT = (
    (
        "(I'd like to|I want to|I need to|I'm hoping to) {need}. (What here could help?|Is there something in this "
        "(picture|scene) that would help?)",
        "If I (wanted|had) to {need}, what in this (picture|scene|photo) (would|could) (help|be useful)?",
        "What here (would|could) help if someone needed to {need3}?",
    ),
    (
        "(That|Such a need) would call for {a}; {gen} {are} (made|meant) for (that|jobs like that).",
        "You would (want|need) {a} for that.",
        "{A_cap} (would be the thing|is what you would want) for that.",
    ),
)
PLACE_ABSENT = (
    ("(Would|Could) you (expect|find) {a} in a (place|scene) like this?",),
    (
        "(It would fit|Quite possibly): {gen} {are} (often|usually) found {at_setting}, like the {present} "
        "(here|in view).",
    ),
)
KIND_ABSENT = (
    ("What (kind|sort) of thing is {a}?", "What is {a}, (exactly|in short)?"),
    ("{A_kind}, (usually|often|mostly) made of {material}.",),
)
TRAIT_ABSENT = (
    ("How would I (recognise|spot) {a}?", "What do {gen} (usually|typically) look like?"),
    ("{Gen} (usually|typically) {trait}.",),
)
NONE_ABSENT = (
    (
        "(Is there|Can you see|Do you see) {a} (anywhere |)in this (picture|photo)?",
        "(So|Then), is there {a} (here|in the picture)?",
    ),
    (
        "No. The picture shows {inventory}, but no {thing}.",
        "(No|Sadly not); (I can see|there is) {inventory}, (but|and) no {thing}.",
    ),
)
EMPTY_REQUESTS = (
    "(Please|Now) segment the {thing} (I was asking about|we have been talking about).",
    "Could you (produce|give me) a (segmentation|mask) of the {thing} (I need|I asked about)?",
    "(Then|All right,) please (mark|outline) the {thing} at pixel level, if there is one.",
)
FORMS_FOR_ABSENT = ("count",)
"""Noun forms an absent thing may have (a mass noun or a pair reads oddly in "there is no ...")."""


def _act(pair: tuple[tuple[str, ...], tuple[str, ...]], rng: random.Random, slots: dict[str, str]) -> tuple[str, str]:
    return realise(pair[0], rng, slots), realise(pair[1], rng, slots)


def set_names(scene: Scene, members: list[str]) -> tuple[Category, str]:
    """The category of a set and its plural name ("chairs"; the category's own name when the
    members' labels differ, "sofa" and "couch")."""
    subjects = [scene[m] for m in members]
    category = subjects[0].category
    names = {s.name for s in subjects}
    noun = subjects[0].name if len(names) == 1 or not category.known else category.name
    return category, category.plural_of(noun)


def set_focus(scene: Scene, members: list[str]) -> str:
    """The focus of a set as a whole: ``"two chairs"``, ``"three cups"``."""
    return f"{count_word(len(members))} {set_names(scene, members)[1]}"


def member_foci(scene: Scene, members: list[str]) -> list[str]:
    """Each member's focus phrase, in answer order (they tell the members apart)."""
    return [scene.focus(m).text for m in members]


def _where(subjects: list[Subject]) -> str:
    """Where the members are: "One is at the left and two are in the centre"; "Both are in
    the centre" when they share a place."""
    counts = Counter(s.geometry.position for s in subjects)
    if len(counts) == 1:
        position = next(iter(counts))
        where = "in the centre" if position in ("center", "centre") else f"at the {position}"
        every = "Both" if len(subjects) == 2 else f"All {count_word(len(subjects))}"
        return f"{every} are {where} of the picture"
    parts = []
    for position, count in counts.items():
        where = "in the centre" if position in ("center", "centre") else f"at the {position}"
        parts.append(f"{'one is' if count == 1 else count_word(count) + ' are'} {where}")
    return say.capital(say.join(parts))


def multi_acts(scene: Scene, members: list[str], rng: random.Random, length: int) -> list[tuple[str, str]]:
    """Up to ``length`` ``(question, answer)`` acts of a multi path: the opening (a need the
    kind meets, else what the picture holds several of), up to two or three middle acts
    (where the members are, how much of the frame they cover, what the kind is for after a
    plain opening) and the leaf that names every member. Fewer when no more acts fit."""
    category, names = set_names(scene, members)
    subjects = [scene[m] for m in members]
    number = count_word(len(members))
    uses = list(category.uses) or ["what their label says"]
    rng.shuffle(uses)
    need = rng.choice(category.needs) if category.needs else ""
    slots = {
        "names": names,
        "number": number,
        "Number": say.capital(number),
        "gen": names,
        "Gen": say.capital(names),
        "are": "is" if category.form == "mass" else "are",
        "use": uses[0],
        "need3": say.third_person(need),
        "where": _where(subjects),
        "share": say.share(sum(s.geometry.fraction for s in subjects))[0],
    }
    foci = [f"the {f}" for f in member_foci(scene, members)]
    slots["the_list"] = say.join(foci)
    slots["The_list"] = say.capital(slots["the_list"])
    slots["Both"] = "Both" if len(members) == 2 else f"All {number}"
    useful = (
        category.known
        and not category.animate
        and not category.part_of
        and bool(category.needs)
        and category.form != "mass"
    )
    acts = [_act(NEED_SET if useful else COUNT_SET, rng, slots)]
    middles = [WHERE_SET, SHARE_SET] + ([USE_SET] if category.known and category.uses and not useful else [])
    rng.shuffle(middles)
    for pair in middles[: max(0, length - 2)]:
        acts.append(_act(pair, rng, slots))
    acts.append(_act(WHICH_SET, rng, slots))
    return acts


def multi_request(rng: random.Random) -> str:
    """The user's request of a multi-target sample's final turn (the answer is
    :func:`~prist_builder.providers.final_turn.multi_final_turn`'s)."""
    return realise(MULTI_REQUESTS, rng, {})


def _settings(scene: Scene) -> tuple[set[str], set[str]]:
    categories = [s.category for s in scene.subjects.values() if s.category.known]
    return {p for c in categories for p in c.settings}, {p for c in categories for p in c.places}


def absent_options(record: ElementsRecord, scene: Scene) -> list[Category]:
    """Things the scene could plausibly hold but does not: known, inanimate categories of
    count nouns with a need, not parts, of no pictured category's kind (a pictured chair
    would meet a couch's need), that share a setting (else a place) with a pictured category
    and pass :func:`absent_conflict`; sorted by name. Without any such, every
    absent category with a need (a scene of unknown labels gives no hint)."""
    settings, places = _settings(scene)
    kinds = {s.category.kind for s in scene.subjects.values() if s.category.known}
    pool = [
        c
        for c in table().values()
        if c.needs
        and c.uses
        and not c.animate
        and not c.part_of
        and c.form in FORMS_FOR_ABSENT
        and c.kind not in kinds  # a pictured chair would meet a couch's need: no "there is none"
    ]
    for wanted in (settings, places, None):
        options = [c for c in pool if wanted is None or set(c.settings if wanted is settings else c.places) & wanted]
        options = [c for c in options if absent_conflict(c.name, record) is None]
        if options:
            return sorted(options, key=lambda c: c.name)
    return []


def pick_absent(record: ElementsRecord, scene: Scene, rng: random.Random, taken: set[str]) -> Category | None:
    """One absent thing for an empty path, not in ``taken`` (names already used in the image)."""
    options = [c for c in absent_options(record, scene) if c.name not in taken]
    return options[rng.randrange(len(options))] if options else None


def empty_acts(
    scene: Scene, wording: say.Wording, thing: Category, rng: random.Random, length: int
) -> list[tuple[str, str]]:
    """Up to ``length`` ``(question, answer)`` acts of an empty path: the need, up to three
    middle acts (where such a thing is found, what kind of thing it is, how to spot it; those
    the table supports) and the "none" answer. Fewer when the table has too little to say."""
    need = rng.choice(thing.needs)
    a = thing.a(thing.name)
    settings, _ = _settings(scene)
    shared = [p for p in thing.settings if p in settings] or list(thing.settings) or list(thing.places)
    setting = rng.choice(shared) if shared else "a scene like this"
    present = sorted(
        s.category.plural_of(s.name) if s.count > 1 else s.name
        for s in scene.subjects.values()
        if setting in s.category.settings or setting in s.category.places
    )
    gen = thing.plural_of(thing.name)
    kind = thing.a(thing.kind) if thing.kind else a
    slots = {
        "need": need,
        "need3": say.third_person(need),
        "a": a,
        "A_cap": say.capital(a),
        "gen": gen,
        "Gen": say.capital(gen),
        "are": "are",
        "thing": thing.name,
        "at_setting": located(setting),
        "present": present[0] if present else "",
        "inventory": wording.inventory(),
        "A_kind": say.capital(kind),
        "material": rng.choice(thing.made_of) if thing.made_of else "",
        "trait": rng.choice(thing.traits) if thing.traits else "",
    }
    middles = [
        pair for pair, ok in ((PLACE_ABSENT, present), (KIND_ABSENT, thing.made_of), (TRAIT_ABSENT, thing.traits)) if ok
    ]
    rng.shuffle(middles)
    acts = [_act(NEED_ABSENT, rng, slots)]
    for pair in middles[: max(0, length - 2)]:
        acts.append(_act(pair, rng, slots))
    acts.append(_act(NONE_ABSENT, rng, slots))
    return acts


def empty_request(thing: str, rng: random.Random) -> str:
    """The user's request of an empty-target sample's final turn."""
    return realise(EMPTY_REQUESTS, rng, {"thing": thing})


def request_turn(text: str) -> Turn:
    """The user turn of a final request."""
    return Turn(role="user", content=text)


def category_of(thing: str) -> Category:
    """The knowledge-table category of an absent thing."""
    return lookup(thing)
