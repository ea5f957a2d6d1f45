"""What the dataset card says about an export's samples, gathered one sample at a time.

``prist export`` streams a run's samples (it never holds them all): each sample written is
added to the :class:`SplitFacts` of its split, and the card (:mod:`.card`) is written from
the :class:`CardFacts` of the three splits. Every figure is what the card computed from
the full lists before: counts, first appearances and the samples shown follow the order
of the splits (train, validation, test) and, within one, the run's order.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from prist_builder.export.features import targets
from prist_builder.export.splits import SPLITS
from prist_builder.exported import TARGET_KINDS
from prist_builder.samples import Sample
from prist_builder.stats import DatasetStats, StatsTally

CARD_SAMPLES = 3
"""Samples shown with their mask on the card."""
PICTURE_CANDIDATES = 2 * CARD_SAMPLES
"""Samples kept per split that could be shown (one whose image cannot be read is skipped)."""


def shown_on_card(sample: Sample) -> bool:
    """Whether a sample may be shown with its mask on the card."""
    return sample.mask is not None and sample.kind != "empty" and bool(sample.image.sha256)


@dataclass
class SplitFacts:
    """The card's figures of one split (see :meth:`add`)."""

    samples: int = 0
    images: set[str] = field(default_factory=set)
    kinds: Counter = field(default_factory=Counter)
    targets: int = 0
    providers: Counter = field(default_factory=Counter)
    rules: Counter = field(default_factory=Counter)
    reviews: Counter = field(default_factory=Counter)
    ious: list[float] = field(default_factory=list)
    turns: Counter = field(default_factory=Counter)
    grains: Counter = field(default_factory=Counter)
    multi: bool = False
    pictures: list[Sample] = field(default_factory=list)
    stats: StatsTally = field(default_factory=StatsTally)

    def add(self, sample: Sample) -> None:
        """Count one sample written to the split (memory: counters; a few samples to show)."""
        self.samples += 1
        self.images.add(sample.image.image_id)
        self.kinds[sample.kind] += 1
        listed = targets(sample)
        self.targets += len(listed)
        self.providers[sample.dialogue.provider] += 1
        self.rules[sample.mask_rule or "none"] += 1
        self.reviews[sample.review.status] += 1
        if sample.mask_provenance and sample.mask_provenance.iou is not None:
            self.ious.append(sample.mask_provenance.iou)
        self.turns[sample.dialogue.num_turns] += 1
        self.grains.update(t["granularity"] for t in listed)
        self.multi = self.multi or sample.kind == "multi"
        if len(self.pictures) < PICTURE_CANDIDATES and shown_on_card(sample):
            self.pictures.append(sample)
        # an empty-target sample's no-pixel mask is no target: it counts as unmasked, not as "fine"
        dialogue = sample.dialogue.model_copy(update={"mask": None if sample.kind == "empty" else sample.mask})
        self.stats.add(dialogue, (sample.elements.image.height, sample.elements.image.width))


@dataclass
class CardFacts:
    """The card's figures of every split of :data:`SPLITS`."""

    splits: dict[str, SplitFacts] = field(default_factory=lambda: {name: SplitFacts() for name in SPLITS})

    @classmethod
    def of(cls, splits: dict[str, list[Sample]]) -> CardFacts:
        """The facts of samples already in lists (split name -> its samples)."""
        facts = cls()
        for name in SPLITS:
            for sample in splits[name]:
                facts.splits[name].add(sample)
        return facts

    def merged(self, attribute: str) -> Counter:
        """A counter of every split, its keys in order of first appearance over the splits."""
        total: Counter = Counter()
        for name in SPLITS:
            total.update(getattr(self.splits[name], attribute))
        return total

    def ious(self) -> list[float]:
        """The annotators' IoUs of every split, in split order."""
        return [iou for name in SPLITS for iou in self.splits[name].ious]

    def pictures(self) -> list[Sample]:
        """Samples that may be shown on the card, in split order."""
        return [sample for name in SPLITS for sample in self.splits[name].pictures]

    def multi(self) -> bool:
        """Whether any sample has several targets."""
        return any(self.splits[name].multi for name in SPLITS)

    def stats(self) -> DatasetStats:
        """Table 2 over every split's samples."""
        tally = StatsTally()
        for name in SPLITS:
            part = self.splits[name].stats
            tally.images |= part.images
            tally.turns += part.turns
            tally.turn_sum += part.turn_sum
            tally.length_sum += part.length_sum
            tally.max_turns, tally.max_length = (
                max(tally.max_turns, part.max_turns),
                max(tally.max_length, part.max_length),
            )
            tally.stats.targets += part.stats.targets
            tally.stats.unmasked += part.stats.unmasked
            for key in tally.grains:
                tally.grains[key] += part.grains[key]
            for key in tally.kinds:
                tally.kinds[key] += part.kinds[key]
        return tally.result()

    def target_kind_counts(self) -> dict[str, dict[str, int]]:
        """Samples per target kind and split, plus ``all``; ``targets``: target masks per split."""
        out: dict[str, dict[str, int]] = {}
        for kind in TARGET_KINDS:
            row = {name: self.splits[name].kinds.get(kind, 0) for name in SPLITS}
            out[kind] = {**row, "all": sum(row.values())}
        row = {name: self.splits[name].targets for name in SPLITS}
        out["targets"] = {**row, "all": sum(row.values())}
        return out
