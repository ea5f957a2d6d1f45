"""How a run's dialogues compare with PRIST: the measures of ``prist stats --reference``.

Both sides are read into :class:`Conversation` lists, from a run folder (through
:func:`prist_builder.samples.iter_samples`, review edits applied) or from a file in the
authors' released format (``[{img_id, dialogue: [{from, value}], focus}]``), and then
measured by the same rules:

- *turns*: question/answer pairs, the final segmentation turn included.
- *reasoning turns*: every turn but the last (the segmentation request and its answer).
- *tokens*: lower-cased words (``[a-z0-9']+``); ``[SEG]``/``[OBJ]`` and punctuation dropped.
- *distinct-n* (Li et al., 2016): distinct n-grams over all n-grams of the assistant text of
  the reasoning turns of a sample of dialogues, n-grams taken within one answer. The larger
  side is sampled down to the size of the smaller (seeded), and the figure is the mean over
  :data:`DIVERSITY_DRAWS` draws, because distinct-n falls as a sample grows.
- *vocabulary*: distinct tokens of the same samples' assistant text (mean over the draws).
- *question types* (user questions of the reasoning turns, one question can be of no type):
  ``function`` when it asks about a use, purpose, need, meaning or context (:data:`FUNCTION_RULE`);
  ``selection`` when it asks to list the scene or to choose among a group (:data:`SELECTION_RULE`).
- *position words*: reasoning turns (question or answer) that name a side or part of the
  picture frame (:data:`POSITION_RULE`).
- *templated turns*: reasoning turns whose skeleton (the text with every focus word of the
  whole data set, colour word and number replaced by a slot) occurs in at least
  :data:`TEMPLATE_MIN_DIALOGUES` different dialogues.
- *answer words*: mean tokens per assistant answer of the reasoning turns.
- *dialogue length*: mean characters of all messages of a dialogue, the final turn included
  (as :mod:`prist_builder.stats` counts it).
- *position answers*: assistant answers of the reasoning turns that name a position word
  (:data:`POSITION_RULE`); *position dialogues*: dialogues with such a word in any reasoning
  turn, question or answer.
- *images opening alike*: images at least two of whose dialogues open with the same first
  question (compared as lower-cased tokens).
- *top opening share*: the share of assistant sentences (reasoning turns) that begin with
  the most common four-word opening.
- *granularity*: :func:`prist_builder.stats.granularity` of each target mask; the authors'
  file has no masks, so the paper's Table 2 split (:data:`PAPER_GRANULARITY`) stands in.
- *unknown labels*: targets whose label the offline knowledge table does not hold
  (:func:`prist_builder.providers.offline.knowledge.lookup`); ``-1`` when not known (the authors' file).
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from prist_builder.annotation.masks import area
from prist_builder.records.limits import TARGET_KINDS
from prist_builder.samples import iter_samples
from prist_builder.stats import granularity

DIVERSITY_DRAWS = 10
"""Random equal-size samples averaged for distinct-n and vocabulary."""

TEMPLATE_MIN_DIALOGUES = 3
"""A turn skeleton shared by at least this many dialogues counts as a template."""

OPENING_WORDS = 4
"""Words of a sentence opening (the repeated-opening measure)."""

PAPER_GRANULARITY = {"coarse": 22.0, "medium": 25.0, "fine": 53.0}
"""Percentages of Table 2 (all of PRIST), used when the reference has no masks."""

GRAINS = ("coarse", "medium", "fine")

TOKEN = re.compile(r"[a-z0-9']+")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")

FUNCTION_RULE = re.compile(
    r"\b(why|purpose|used?|using|function(s|al)?|serves?|role|need(s|ed)?|help(s|ful)?|suggests?|indicates?|"
    r"significan(t|ce)|important|meaning|means?|symboli[sz]es?|represents?|context|occasion|benefit|designed|"
    r"meant|useful|would|could|might|tells? us|purpose|reason|activity|happening|good for|work for|safe|"
    r"comfortable|convenient|relate[sd]?|relationship|contribute[sd]?|effect|impact|affect)\b",
    re.IGNORECASE,
)
"""A question about a function, use, purpose, need, meaning or the scene's context."""

SELECTION_RULE = re.compile(
    r"\b(which (one|of (them|these|those|the)|object|thing)s?|what (objects|things|items) (can|do|are)|"
    r"what is in (this|the) (picture|image|photo|scene)|list|overview|what stands out|what does the "
    r"(picture|image|photo) (contain|show)|is anything here|so which)\b",
    re.IGNORECASE,
)
"""A question that asks to list the scene or to pick among several things."""

POSITION_RULE = re.compile(r"\b(left|right|top|bottom|middle|corner)\b", re.IGNORECASE)
"""Words that place something in the frame."""

COLOUR_WORDS = frozenset(
    "red orange yellow green teal blue purple pink brown white gray grey black silver gold beige".split()
)
NUMBER_WORDS = frozenset("one two three four five six seven eight nine ten".split())


@dataclass
class Conversation:
    """One dialogue as the measures see it.

    Attributes:
        turns: ``(question, answer)`` pairs, the final segmentation turn last.
        focus: the target's description.
        grain: ``coarse``/``medium``/``fine``, or ``None`` without a mask.
        label: the target element's name (runs only; ``None`` for the authors' file).
        image: the image's id (``img_id`` in the authors' file), or ``None`` when unknown.
        kind: ``single``, ``multi`` or ``empty`` (issue 22; the authors' file is all single).
        grains: the granularity of each target's mask (runs only; a multi-target sample has
            one per target, an empty one none); ``grain`` is the first.
    """

    turns: list[tuple[str, str]]
    focus: str = ""
    grain: str | None = None
    label: str | None = None
    image: str | None = None
    kind: str = "single"
    grains: tuple[str, ...] = ()

    @property
    def reasoning(self) -> list[tuple[str, str]]:
        """The turns before the final segmentation turn."""
        return self.turns[:-1]


def load_official(path: Path) -> list[Conversation]:
    """Dialogues of a file in the authors' format.

    Raises:
        ValueError: the file is not a list of ``{dialogue: [{from, value}]}`` objects (names the file).
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a readable JSON file ({exc})") from exc
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON list of dialogues")
    out = []
    for index, item in enumerate(data):
        messages = item.get("dialogue") if isinstance(item, dict) else None
        if not isinstance(messages, list):
            raise ValueError(f"{path}: item {index} has no 'dialogue' list")
        values = [str(m.get("value", "")) for m in messages if isinstance(m, dict)]
        pairs = [(values[i], values[i + 1]) for i in range(0, len(values) - 1, 2)]
        image = item.get("img_id")
        out.append(
            Conversation(turns=pairs, focus=str(item.get("focus", "")), image=None if image is None else str(image))
        )
    return out


def load_run(run: Path) -> list[Conversation]:
    """Dialogues of a run folder, review edits applied, with their mask granularity."""

    out = []
    for sample in iter_samples(run):
        texts = [t.content for t in sample.dialogue.turns]
        pairs = [(texts[i], texts[i + 1]) for i in range(0, len(texts) - 1, 2)]
        grains = tuple(granularity(area(m), sample.image.height, sample.image.width) for m in sample.masks)
        targets = sample.dialogue.target_list()
        label = sample.elements.element(targets[0].element_id).name if targets else None
        out.append(
            Conversation(
                turns=pairs,
                focus=sample.dialogue.focus,
                grain=grains[0] if grains else None,
                label=label,
                image=sample.image.image_id,
                kind=sample.kind,
                grains=grains,
            )
        )
    return out


def load(path: Path) -> list[Conversation]:
    """A run folder or a file in the authors' format."""
    return load_run(path) if path.is_dir() else load_official(path)


def tokens(text: str) -> list[str]:
    """Lower-cased word tokens of ``text`` (see the module rules)."""
    return TOKEN.findall(text.replace("[SEG]", " ").replace("[OBJ]", " ").lower())


def distinct(answers: Iterable[str], n: int) -> float:
    """Distinct n-grams over all n-grams, n-grams taken within each text (0 with none)."""
    grams: list[tuple[str, ...]] = []
    for text in answers:
        words = tokens(text)
        grams += [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def _answers(conversations: Sequence[Conversation]) -> list[str]:
    return [a for c in conversations for _, a in c.reasoning]


def diversity(conversations: Sequence[Conversation], size: int, seed: int) -> dict[str, float]:
    """Mean distinct-1, distinct-2 and vocabulary over :data:`DIVERSITY_DRAWS` samples of ``size`` dialogues."""
    rng = random.Random(seed)
    draws = 1 if size >= len(conversations) else DIVERSITY_DRAWS
    totals = Counter()
    for _ in range(draws):
        chosen = list(conversations) if draws == 1 else rng.sample(list(conversations), size)
        answers = _answers(chosen)
        totals["distinct_1"] += distinct(answers, 1)
        totals["distinct_2"] += distinct(answers, 2)
        totals["vocabulary"] += len({w for a in answers for w in tokens(a)})
    return {k: round(v / draws, 3) for k, v in totals.items()}


def _share(hits: int, total: int) -> float:
    return round(100.0 * hits / total, 1) if total else 0.0


def _skeleton(text: str, slots: frozenset[str]) -> str:
    return " ".join("#" if w in slots or w.isdigit() else w for w in tokens(text))


def sentences(text: str) -> list[str]:
    """Sentences of a text (split after ``.!?``)."""
    return [s for s in SENTENCE_END.split(text.strip()) if s]


@dataclass
class ReferenceStats:
    """The comparison table's figures of one side. Shares in percent."""

    dialogues: int = 0
    turns_mean: float = 0.0
    turns_min: int = 0
    turns_max: int = 0
    turns_histogram: dict[str, int] = field(default_factory=dict)
    mode_share: float = 0.0
    distinct_1: float = 0.0
    distinct_2: float = 0.0
    vocabulary: float = 0.0
    templated: float = 0.0
    function_questions: float = 0.0
    selection_questions: float = 0.0
    position_turns: float = 0.0
    answer_words: float = 0.0
    dialogue_chars: float = 0.0
    position_answers: float = 0.0
    position_dialogues: float = 0.0
    images_opening_alike: int = 0
    images: int = 0
    top_opening: str = ""
    top_opening_share: float = 0.0
    granularity: dict[str, float] = field(default_factory=dict)
    granularity_source: str = "masks"
    unknown_labels: int = -1
    kinds: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        """Plain dict (JSON)."""
        return asdict(self)


def opening_alike(conversations: Sequence[Conversation]) -> tuple[int, int]:
    """``(images, images opening alike)``: how many images the dialogues come from (those
    without an image id each count as their own), and how many of them have two or more
    dialogues whose first questions are the same lower-cased tokens."""
    firsts: dict[str, list[str]] = {}
    for index, conversation in enumerate(conversations):
        key = conversation.image if conversation.image is not None else f"#{index}"
        opening = " ".join(tokens(conversation.turns[0][0])) if conversation.turns else ""
        firsts.setdefault(key, []).append(opening)
    alike = sum(len(set(openings)) < len(openings) for openings in firsts.values())
    return len(firsts), alike


def measure(conversations: Sequence[Conversation], sample_size: int, seed: int = 0) -> ReferenceStats:
    """Every figure of the comparison for one side.

    Args:
        conversations: the dialogues.
        sample_size: dialogues per diversity sample (the smaller side's count).
        seed: seed of the diversity samples.
    """
    stats = ReferenceStats(dialogues=len(conversations))
    if not conversations:
        return stats
    counts = [len(c.turns) for c in conversations]
    histogram = Counter(counts)
    stats.turns_mean = round(sum(counts) / len(counts), 2)
    stats.turns_min, stats.turns_max = min(counts), max(counts)
    stats.turns_histogram = {str(k): histogram[k] for k in sorted(histogram)}
    stats.mode_share = _share(histogram.most_common(1)[0][1], len(counts))
    for key, value in diversity(conversations, sample_size, seed).items():
        setattr(stats, key, value)

    questions = [q for c in conversations for q, _ in c.reasoning]
    stats.function_questions = _share(sum(bool(FUNCTION_RULE.search(q)) for q in questions), len(questions))
    stats.selection_questions = _share(sum(bool(SELECTION_RULE.search(q)) for q in questions), len(questions))
    pairs = [p for c in conversations for p in c.reasoning]
    stats.position_turns = _share(sum(bool(POSITION_RULE.search(q + " " + a)) for q, a in pairs), len(pairs))
    answers = _answers(conversations)
    stats.answer_words = round(sum(len(tokens(a)) for a in answers) / len(answers), 1) if answers else 0.0
    chars = [sum(len(q) + len(a) for q, a in c.turns) for c in conversations]
    stats.dialogue_chars = round(sum(chars) / len(chars), 1)
    stats.position_answers = _share(sum(bool(POSITION_RULE.search(a)) for a in answers), len(answers))
    stats.position_dialogues = _share(
        sum(any(POSITION_RULE.search(q + " " + a) for q, a in c.reasoning) for c in conversations), len(conversations)
    )
    stats.images, stats.images_opening_alike = opening_alike(conversations)

    slots = frozenset(w for c in conversations for w in tokens(c.focus)) | COLOUR_WORDS | NUMBER_WORDS
    owners: dict[str, set[int]] = {}
    for index, conversation in enumerate(conversations):
        for question, answer in conversation.reasoning:
            for text in (question, answer):
                owners.setdefault(_skeleton(text, slots), set()).add(index)
    texts = [t for c in conversations for q, a in c.reasoning for t in (q, a)]
    stats.templated = _share(sum(len(owners[_skeleton(t, slots)]) >= TEMPLATE_MIN_DIALOGUES for t in texts), len(texts))

    openings = Counter(
        " ".join(tokens(s)[:OPENING_WORDS])
        for a in _answers(conversations)
        for s in sentences(a)
        if len(tokens(s)) >= OPENING_WORDS
    )
    total = sum(len(sentences(a)) for a in _answers(conversations))
    if openings:
        stats.top_opening, hits = openings.most_common(1)[0]
        stats.top_opening_share = _share(hits, total)

    labels = [c.label for c in conversations if c.label is not None]
    if labels:
        from prist_builder.providers.offline.knowledge import lookup  # the offline provider's table

        stats.unknown_labels = sum(not lookup(label).known for label in labels)
    grains = Counter(g for c in conversations for g in (c.grains or ((c.grain,) if c.grain else ())))
    kinds = Counter(c.kind for c in conversations)
    stats.kinds = {k: _share(kinds[k], len(conversations)) for k in TARGET_KINDS}
    if grains:
        stats.granularity = {g: _share(grains[g], sum(grains.values())) for g in GRAINS}
    else:
        stats.granularity, stats.granularity_source = dict(PAPER_GRANULARITY), "paper Table 2"
    return stats


def compare(
    run: Sequence[Conversation], reference: Sequence[Conversation], seed: int = 0
) -> tuple[ReferenceStats, ReferenceStats]:
    """Measure both sides with diversity samples of the smaller side's size."""
    size = max(1, min(len(run), len(reference)))
    return measure(run, size, seed), measure(reference, size, seed)
