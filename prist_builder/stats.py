"""Dataset statistics in the layout of the paper's Table 2.

Definitions (our reading of the paper, stated so numbers are comparable):

- *samples*: dialogues; *images*: distinct images with at least one dialogue.
- *turns*: question/answer pairs of a dialogue, the final segmentation turn included
  (the authors' test split has 3 to 5; Table 2 reports 4 on average, 7 at most).
- *utterances*: reasoning turns, i.e. turns before the final segmentation turn. Table 2's
  24k utterances over 8,320 samples (about 3 per sample at 4 turns each) fits this.
- *dialogue length*: characters of all messages of a dialogue (the authors' test split
  averages 492 characters against Table 2's 477.6, so Table 2 counts characters).
- *granularity*: the target mask's area scaled to a 1024x1024 image is *fine* below
  ``(s*32)^2``, *medium* up to ``(s*96)^2`` and *coarse* above, with ``s = 1.6`` (COCO's
  small/medium/large thresholds moved from 640 px to 1024 px images; Table 2 caption).
- *targets* (issue 22): the objects the final answers segment: one per single-target sample,
  one per member of a multi-target sample, none for an empty-target sample. The granularity
  split is over targets (each member of a set counted by its own mask). *single / multi /
  empty*: shares of samples by target kind, in percent.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

from prist_builder.annotation.masks import area
from prist_builder.records import DialogueRecord, ElementsRecord
from prist_builder.records.granularity import COARSE_ABOVE, FINE_BELOW, SCALE, STANDARD_SIDE, granularity

__all__ = [
    "COARSE_ABOVE",
    "FINE_BELOW",
    "SCALE",
    "STANDARD_SIDE",
    "DatasetStats",
    "StatsTally",
    "compute_stats",
    "granularity",
]


@dataclass
class DatasetStats:
    """Table 2 figures of a run. Lengths in characters, areas in pixels, shares in percent.

    ``unmasked`` counts samples with a target still without a mask; ``targets`` the targets
    of all samples; ``single``/``multi``/``empty`` the shares of samples by target kind."""

    images: int = 0
    samples: int = 0
    utterances: int = 0
    avg_turns: float = 0.0
    max_turns: int = 0
    avg_length: float = 0.0
    max_length: int = 0
    coarse: float = 0.0
    medium: float = 0.0
    fine: float = 0.0
    unmasked: int = 0
    targets: int = 0
    single: float = 0.0
    multi: float = 0.0
    empty: float = 0.0

    def as_dict(self) -> dict:
        """Plain dict (for ``--json``)."""
        return asdict(self)


class StatsTally:
    """:func:`compute_stats` one dialogue at a time, holding sums and counts only (an export
    streams its samples through it). ``add`` each dialogue, then read :meth:`result`."""

    def __init__(self) -> None:
        self.stats = DatasetStats()
        self.images: set[str] = set()
        self.turns = self.turn_sum = self.length_sum = 0
        self.max_turns = self.max_length = 0
        self.grains = {"coarse": 0, "medium": 0, "fine": 0}
        self.kinds = {"single": 0, "multi": 0, "empty": 0}

    def add(self, dialogue: DialogueRecord, size: tuple[int, int] | None = None) -> None:
        """Count one dialogue; ``size`` is its image's ``(height, width)`` in pixels (default:
        each target mask's own size)."""
        self.images.add(dialogue.image_id)
        turns, length = dialogue.num_turns, sum(len(t.content) for t in dialogue.turns)
        self.turns += 1
        self.turn_sum += turns
        self.length_sum += length
        self.max_turns, self.max_length = max(self.max_turns, turns), max(self.max_length, length)
        self.kinds[dialogue.kind] += 1
        targets = dialogue.target_list()
        self.stats.targets += len(targets)
        if any(t.mask is None for t in targets):
            self.stats.unmasked += 1
            return
        for target in targets:
            assert target.mask is not None
            height, width = size or tuple(target.mask.size)
            self.grains[granularity(area(target.mask), height, width)] += 1

    def result(self) -> DatasetStats:
        """The Table 2 figures of the dialogues added so far."""
        stats = self.stats
        stats.images = len(self.images)
        stats.samples = self.turns
        stats.utterances = self.turn_sum - self.turns
        if self.turns:
            stats.avg_turns = round(self.turn_sum / self.turns, 2)
            stats.max_turns = self.max_turns
            stats.avg_length = round(self.length_sum / self.turns, 1)
            stats.max_length = self.max_length
            for name, count in self.kinds.items():
                setattr(stats, name, round(100.0 * count / self.turns, 1))
        masked = sum(self.grains.values())
        if masked:
            for name, count in self.grains.items():
                setattr(stats, name, round(100.0 * count / masked, 1))
        return stats


def compute_stats(dialogues: Iterable[DialogueRecord], elements: Iterable[ElementsRecord]) -> DatasetStats:
    """Compute Table 2 over dialogues; image sizes come from the elements records. The
    granularity split counts targets (a multi-target sample each of its masks, an empty one
    none); see the module docstring."""
    sizes = {r.image_id: (r.image.height, r.image.width) for r in elements}
    tally = StatsTally()
    for dialogue in dialogues:
        tally.add(dialogue, sizes.get(dialogue.image_id))
    return tally.result()
