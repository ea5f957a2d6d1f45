"""Wording for the offline provider: question and answer variants, plurals, lists.

All strings are written for this project. Each list holds interchangeable variants; the
provider picks one with the input's seeded generator, so wording varies across samples
but a given input always reads the same.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence

NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
IRREGULAR_PLURALS = {"person": "people", "man": "men", "woman": "women", "child": "children", "mouse": "mice"}

ROOT_QUESTIONS = (
    "What stands out in this picture?",
    "Can you give me an overview of what this photo shows?",
    "What objects can you make out in this image?",
    "I'd like to get my bearings in this scene. What is in it?",
    "Before we zoom in, what does the picture contain?",
)
ROOT_ANSWERS = ("The picture contains {items}.", "I can see {items}.", "In view there are {items}.")

SIDE_QUESTIONS = {
    "left": ("What is on the left side of the picture?", "Let's look at the left part. What is there?"),
    "center": ("What is in the middle of the picture?", "What sits in the central part of the image?"),
    "right": ("What is on the right side of the picture?", "Let's look at the right part. What is there?"),
}
ROW_QUESTIONS = {
    "top": ("What can be seen in the upper part of the image?", "What is near the top of the picture?"),
    "middle": ("What occupies the middle band of the image?", "What is at mid-height in the picture?"),
    "bottom": ("What can be seen in the lower part of the image?", "What is near the bottom of the picture?"),
}
NAME_QUESTIONS = ("Tell me more about the {plural}.", "What about the {plural} here?", "Let's focus on the {plural}.")
NAME_QUESTIONS_ONE = ("Tell me more about the {name}.", "What about the {name} here?", "Let's focus on the {name}.")
COLOUR_QUESTIONS = ("Which of these things are {colour}?", "Is anything here {colour}?")
SIZE_QUESTIONS = {
    "large": ("Which of them fill a large part of the frame?",),
    "medium": ("Which of them are of middling size in the frame?",),
    "small": ("Which of them are small in the frame?",),
    "tiny": ("Which of them are only tiny details?",),
}
ORDER_QUESTIONS = {
    "further left": ("Of these, which lie further to the left?",),
    "further right": ("Of these, which lie further to the right?",),
}
GROUP_ANSWERS = ("There {verb} {items}.", "That would be {items}.", "I see {items} there.")

RELATION_PHRASES = {
    "left of": ("to the left of", "to the right of"),
    "above": ("above", "below"),
    "inside": ("inside", "around"),
    "next to": ("next to", "next to"),
    "larger than": ("larger than", "smaller than"),
}
"""Predicate -> (phrase with the target as subject, phrase with the target as object)."""

RELATION_QUESTIONS = ("What is {phrase} the {other}?", "Which thing here is {phrase} the {other}?")
RELATION_ANSWERS = ("The {name} is {phrase} the {other}.", "That is the {name}, {phrase} the {other}.")

DETAIL_TEMPLATES = {
    "colour": (("What colour is the {name}?", "It is mostly {colour}."),),
    "size": (
        ("How much of the frame does the {name} take up?", "About {percent}% of the picture, so it is {size}."),
    ),
    "count": (("How many {plural} are there in total?", "There {verb} {count_word} in the picture."),),
}
"""Detail questions that add turns: kind -> ((question, answer), ...)."""

LEAF_QUESTIONS = (
    "So which one is it exactly?",
    "Which object does all of this point to?",
    "Which one should I look at, then?",
    "Can you pin down the exact object?",
)
LEAF_ANSWERS = ("It is the {focus}. {description}", "The one I mean is the {focus}. {description}")

REASONING_QUESTIONS = (
    "What is the {colour} thing {phrase} the {other}?",
    "Which {size} object is {phrase} the {other}?",
)
REASONING_QUESTIONS_ALONE = (
    "What is the {size} {colour} object in the {position} of the picture?",
    "Which {colour} thing occupies the {position} of the picture?",
)

OPENERS = ("", "Hi! ", "Quick question: ", "I'm looking at this photo. ")
CONNECTORS = ("", "", "Okay. ", "Got it. ", "I see. ", "Thanks. ")
SEG_REQUESTS = (
    "Based on our conversation, please segment that object.",
    "Now mark the object we have been discussing with a mask.",
    "Please produce a segmentation of the object this conversation led to.",
    "Segment the object the answers above point to.",
    "Using everything above, outline the target object at pixel level.",
    "Could you segment the object we narrowed down to?",
)
SEG_LEADS = ("", "Sure, ", "Here it is: ", "Done: ", "The segmentation is ", "Segmented as ")


WEARERS = frozenset({"person", "man", "woman", "child", "boy", "girl", "player", "astronaut", "rider", "people"})
"""Names whose colour is what they wear: ``"person in red"`` rather than ``"red person"``."""


def coloured(name: str, colour: str | None) -> str:
    """``"brown sofa"``, ``"person in black"``; the bare name when the colour is unknown."""
    if not colour:
        return name
    return f"{name} in {colour}" if name.split(" ")[-1].lower() in WEARERS else f"{colour} {name}"


def plural(noun: str) -> str:
    """English plural of a noun phrase (pluralises its last word)."""
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


def count_word(count: int) -> str:
    """``"one"`` .. ``"ten"``, digits beyond."""
    return NUMBER_WORDS[count] if 0 <= count < len(NUMBER_WORDS) else str(count)


def article(noun: str) -> str:
    """``"a"`` or ``"an"`` for a noun phrase."""
    return "an" if noun[:1].lower() in "aeiou" else "a"


def counted(name: str, count: int) -> str:
    """``"a cup"``, ``"two cups"``."""
    return f"{article(name)} {name}" if count == 1 else f"{count_word(count)} {plural(name)}"


def join(items: Sequence[str]) -> str:
    """``"a, b and c"``."""
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"


def inventory(names: Sequence[str]) -> tuple[str, str]:
    """Listing of names with counts in first-seen order, and the verb that agrees with it.

    Returns:
        ``("two persons and a bottle", "are")``.
    """
    counts = Counter(names)
    ordered = list(dict.fromkeys(names))
    verb = "is" if len(names) == 1 else "are"
    return join([counted(n, counts[n]) for n in ordered]), verb


def pick(rng: random.Random, options: Sequence[str]) -> str:
    """One option, chosen with the input's generator."""
    return options[rng.randrange(len(options))]
