"""The offline provider's category knowledge: uses, needs, places, materials, parts, noun forms.

The table lives in ``knowledge/*.toml`` (package data, read with :mod:`tomllib`); each
table is one category, keyed by its name. Fields, all optional but ``kind``:

- ``kind``: what it is, a count noun phrase without article (``"piece of furniture"``);
- ``uses``: gerund phrases, what it is for; ``needs``: infinitive phrases without "to",
  a need it meets; ``places``: noun phrases with article, where it is usually found;
- ``made_of``: materials; ``parts``: its usual parts; ``part_of``: wholes it belongs to;
- ``traits``: plural verb phrases, what is typically true of the kind (``"have four legs and
  a back"``: "chairs usually have four legs and a back"); general knowledge, never said of
  the pictured object alone (not used for a ``mass`` form);
- ``goes_with``: noun phrases with their article (or plural/mass nouns), what it is usually
  seen or used with (``"a saucer"``, ``"milk and sugar"``); for a person or animal, what it is
  seen with;
- ``users``: plural noun phrases, who relies on it most (``"office workers"``); none for a
  person, an animal or a body part;
- ``aliases``: other labels meaning it (VOC's ``diningtable``, ``sofa``...);
- ``form``: ``count`` (default), ``mass`` (no indefinite article: "coffee"), ``pair``
  ("a pair of scissors") or ``plural`` (a plural label: "index cards");
- ``article``: overrides the a/an spelling rule; ``plural``: overrides the plural rule;
- ``link``: how a part is named with its whole, ``"of"`` (default: "the cat's ear") or
  ``"in"`` ("the coffee in the cup");
- ``animate``: a person or animal (``true``/``false``): its ``uses`` are what it is often
  seen doing, and it is never asked what it is "used for" or "made of".

A label is matched by its normalised name, then an alias, then its singular, then its
longest trailing word sequence (``"highland 6539 self stick notes"`` -> ``sticky notes``).
A label that matches nothing gets :func:`fallback`: a category with ``known = False`` and no
uses or needs, so the dialogue falls back to what the pixels show (colour, size,
neighbours) and says so plainly instead of inventing a purpose.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from importlib import resources

KNOWLEDGE_PACKAGE = "prist_builder.providers.offline"
KNOWLEDGE_FOLDER = "knowledge"
FORMS = ("count", "mass", "pair", "plural")
LIST_FIELDS = ("uses", "needs", "places", "made_of", "parts", "part_of", "aliases", "traits", "goes_with", "users")
TEXT_FIELDS = ("kind", "form", "article", "plural", "link")
BOOL_FIELDS = ("animate",)
SLOT_MISFITS = {"users": frozenset("a an the every each to".split()), "goes_with": frozenset("to and or".split())}
"""First words a phrase of the field cannot start with: ``users`` are groups of people in the
plural ("Mostly commuters and students"), ``goes_with`` noun phrases ("A saucer and milk")."""
SLOT_READS = {"users": "plural group of people", "goes_with": "noun phrase"}

IRREGULAR_PLURALS = {
    "person": "people",
    "man": "men",
    "woman": "women",
    "child": "children",
    "mouse": "mice",
    "foot": "feet",
    "tooth": "teeth",
    "sheep": "sheep",
    "fish": "fish",
    "leaf": "leaves",
    "shelf": "shelves",
    "knife": "knives",
    "life": "lives",
    "scissors": "scissors",
}
AN_EXCEPTIONS = ("uni", "use", "usu", "eu", "one", "ewe")
"""Vowel-letter openings that sound like a consonant: "a unicorn", "a one-way street"."""
SILENT_H = ("hour", "honest", "honour", "heir")
"""Consonant-letter openings that sound like a vowel: "an hour"."""


def indefinite_article(phrase: str) -> str:
    """``"a"`` or ``"an"`` for a phrase by its spelling and the exceptions above."""
    lower = phrase.lower()
    if lower.startswith(SILENT_H):
        return "an"
    if lower[:1] in "aeiou" and not lower.startswith(AN_EXCEPTIONS):
        return "an"
    return "a"


def plural_of(noun: str) -> str:
    """English plural of a noun phrase (its last word), with the common irregular forms."""
    head, _, last = noun.rpartition(" ")
    lower = last.lower()
    if lower in IRREGULAR_PLURALS:
        word = IRREGULAR_PLURALS[lower]
    elif lower.endswith(("s", "x", "z", "ch", "sh")):
        word = last + "es"
    elif lower.endswith("y") and len(lower) > 1 and lower[-2] not in "aeiou":
        word = last[:-1] + "ies"
    else:
        word = last + "s"
    return f"{head} {word}" if head else word


@dataclass(frozen=True)
class Category:
    """One row of the knowledge table (see the module docstring for the fields).

    Attributes:
        name: the category's table key.
        known: ``False`` for a :func:`fallback` category (label not in the table).
    """

    name: str
    kind: str
    uses: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()
    places: tuple[str, ...] = ()
    made_of: tuple[str, ...] = ()
    parts: tuple[str, ...] = ()
    part_of: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    traits: tuple[str, ...] = ()
    goes_with: tuple[str, ...] = ()
    users: tuple[str, ...] = ()
    form: str = "count"
    article: str | None = None
    plural: str | None = None
    link: str = "of"
    animate: bool = False
    known: bool = True
    source: str = field(default="", compare=False)

    def a(self, noun: str) -> str:
        """Indefinite mention of ``noun`` (this category's label): ``"a cup"``, ``"an umbrella"``,
        ``"coffee"`` (mass), ``"a pair of skis"``, ``"some index cards"`` (plural label)."""
        if self.form == "mass":
            return noun
        if self.form == "plural":
            return f"some {noun}"
        if self.form == "pair":
            return f"a pair of {noun}"
        article = self.article if self.article and noun == self.name else indefinite_article(noun)
        return f"{article} {noun}"

    def plural_of(self, noun: str) -> str:
        """Plural of ``noun`` (this category's label); mass and plural labels stay as they are."""
        if self.form in ("mass", "plural", "pair"):
            return noun
        if self.plural and noun == self.name:
            return self.plural
        return plural_of(noun)

    def counted(self, noun: str, count: int, number: str) -> str:
        """``"a cup"`` for one, else ``"{number} cups"``, ``"{number} patches of sky"``,
        ``"{number} pairs of skis"``."""
        if count == 1:
            return self.a(noun)
        if self.form == "mass":
            return f"{number} patches of {noun}"
        if self.form == "pair":
            return f"{number} pairs of {noun}"
        if self.form == "plural":
            return f"{number} sets of {noun}"
        return f"{number} {self.plural_of(noun)}"

    def part_of_whole(self, whole: Category, part_name: str) -> bool:
        """Whether the table says this category (labelled ``part_name``) is a part of ``whole``."""
        names = {self.name, part_name, *self.aliases}
        wholes = {whole.name, *whole.aliases}
        return bool(names & set(whole.parts)) or bool(wholes & set(self.part_of))

    @cached_property
    def settings(self) -> tuple[str, ...]:
        """The places that are settings of a scene ("a kitchen", "an airport"), not surfaces ("a table")."""
        return tuple(
            p for p in self.places if not located(p).startswith("on ") and p.split()[-1].lower() not in CONTAINER_PLACES
        )

    @property
    def person(self) -> bool:
        """A human being: spoken of as "they"."""
        return self.animate and self.kind == "human being"

    def is_plural(self) -> bool:
        """The label reads as a plural ("the scissors are")."""
        return self.form in ("plural", "pair")


def _check_row(source: str, name: str, row: object) -> dict:
    """The row's fields as constructor arguments; ``ValueError`` names the file and field."""
    where = f"{source}: [{name}]"
    if not isinstance(row, dict):
        raise ValueError(f"{where}: expected a table")
    unknown = sorted(set(row) - set(LIST_FIELDS) - set(TEXT_FIELDS) - set(BOOL_FIELDS))
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {', '.join(unknown)}")
    if not isinstance(row.get("kind"), str) or not row["kind"]:
        raise ValueError(f"{where}.kind: a non-empty string is required")
    out: dict = {"name": name, "source": source}
    for key in LIST_FIELDS:
        value = row.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise ValueError(f"{where}.{key}: expected a list of non-empty strings")
        out[key] = tuple(value)
    for key in TEXT_FIELDS:
        if key in row:
            if not isinstance(row[key], str) or not row[key]:
                raise ValueError(f"{where}.{key}: expected a non-empty string")
            out[key] = row[key]
    for key in BOOL_FIELDS:
        if key in row:
            if not isinstance(row[key], bool):
                raise ValueError(f"{where}.{key}: expected true or false")
            out[key] = row[key]
    if out.get("form", "count") not in FORMS:
        raise ValueError(f"{where}.form: {out['form']!r} is not one of {', '.join(FORMS)}")
    if out.get("article") not in (None, "a", "an"):
        raise ValueError(f"{where}.article: expected 'a' or 'an'")
    if out.get("link", "of") not in ("of", "in"):
        raise ValueError(f"{where}.link: expected 'of' or 'in'")
    if out.get("animate") and out["users"]:
        raise ValueError(f"{where}.users: a person or an animal has no users")
    for key in ("users", "goes_with"):
        starts = [v for v in out[key] if v.split()[0].lower() in SLOT_MISFITS[key]]
        if starts:
            raise ValueError(f"{where}.{key}: {starts[0]!r} does not read as a {SLOT_READS[key]}")
    return out


def parse_table(text: str, source: str) -> dict[str, Category]:
    """Categories of one TOML document. Raises ``ValueError`` naming ``source`` and the field."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{source}: not valid TOML ({exc})") from exc
    return {name: Category(**_check_row(source, name, row)) for name, row in data.items()}


@lru_cache(maxsize=1)
def table() -> dict[str, Category]:
    """Every category of the packaged knowledge files, by name (files in name order).

    Raises:
        ValueError: a file is malformed or two files define the same category.
    """
    out: dict[str, Category] = {}
    folder = resources.files(KNOWLEDGE_PACKAGE).joinpath(KNOWLEDGE_FOLDER)
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".toml"):
            continue
        for name, category in parse_table(entry.read_text(encoding="utf-8"), entry.name).items():
            if name in out:
                raise ValueError(f"{entry.name}: [{name}] is already defined in {out[name].source}")
            out[name] = category
    return out


@lru_cache(maxsize=1)
def _index() -> dict[str, Category]:
    index: dict[str, Category] = {}
    for category in table().values():
        index[category.name] = category
    for category in table().values():
        for alias in category.aliases:
            index.setdefault(alias, category)
    return index


def normalise(label: str) -> str:
    """Lower-case words of a label: ``"Coffee_Cup"`` -> ``"coffee cup"``."""
    return " ".join(label.replace("_", " ").replace("-", " ").lower().split())


def _singular(word: str) -> str:
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith("es") and word[:-2].endswith(("s", "x", "ch", "sh")):
        return word[:-2]
    return word[:-1] if word.endswith("s") and not word.endswith("ss") else word


@lru_cache(maxsize=4096)
def lookup(label: str) -> Category:
    """The category of an annotation label, or :func:`fallback` when the table has none."""
    index = _index()
    words = normalise(label).split()
    for start in range(len(words)):
        tail = " ".join(words[start:])
        for candidate in (tail, " ".join(words[start:-1] + [_singular(words[-1])])):
            if candidate in index:
                return index[candidate]
    return fallback(normalise(label) or label)


def fallback(name: str) -> Category:
    """The category of a label the table does not know: nothing but its name and noun form."""
    return Category(name=name, kind="object", known=False)


ON_PLACES = frozenset(
    "table desk shelf windowsill wall road street sidewalk kerb kerbside plate saucer branch stem "
    "head face peak beach court slope platform track highway river flagpole pad spacesuit farm "
    "uniform jacket "
    "arm hand lawn bed couch axle side horizon".split()
)
CONTAINER_PLACES = frozenset("fridge pocket drawer box bowl cup bag bed pot vase stall".split())
"""Places that hold an object but are no scene's setting ("in a fridge" is where, not what, a photo shows)."""
AT_PLACES = frozenset(
    "airport stop station dock crossroads intersection stadium field cage junction racecourse".split()
)


def located(place: str) -> str:
    """A place with its preposition by its head noun: ``"in a kitchen"``, ``"on a table"``, ``"at an airport"``."""
    head = place.split()[-1].lower()
    if head in ON_PLACES:
        return f"on {place}"
    if head in AT_PLACES:
        return f"at {place}"
    return f"in {place}"
