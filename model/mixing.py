"""Mixing training sources by ratio (paper appendix C.2: stage 1 9:6:2:2, stage 2 PRIST:VQA 4:1).

The stream is a pure function of the position ``k``: which source item ``k`` comes from
follows a smooth weighted round-robin over the ratios (exact shares over every cycle of
``sum(ratios)`` picks when ratios are integers), and each source is read in a fresh seeded
permutation per pass. Resuming at step ``s`` therefore just starts at ``k = s * batch``,
and process ``r`` of ``w`` takes positions ``k * w + r``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


def schedule(ratios: Sequence[float], length: int) -> list[int]:
    """Source index of each of the first ``length`` picks (smooth weighted round-robin).

    Raises:
        ValueError: no ratio, or a ratio <= 0.
    """
    if not ratios or min(ratios) <= 0:
        raise ValueError(f"mixing: ratios must be positive, got {list(ratios)}")
    total = float(sum(ratios))
    current = [0.0] * len(ratios)
    picks = []
    for _ in range(length):
        for i, ratio in enumerate(ratios):
            current[i] += ratio
        best = max(range(len(ratios)), key=lambda i: current[i])
        current[best] -= total
        picks.append(best)
    return picks


class MixedStream(Generic[T]):
    """An endless, deterministic mixture of sources.

    Args:
        sources: the item lists (each non-empty).
        ratios: relative shares, one per source.
        seed: seed of the per-pass permutations.
    """

    def __init__(self, sources: Sequence[Sequence[T]], ratios: Sequence[float], seed: int = 0) -> None:
        if len(sources) != len(ratios):
            raise ValueError("mixing: one ratio per source")
        for i, items in enumerate(sources):
            if not items:
                raise ValueError(f"mixing: source {i} is empty")
        self.sources = sources
        self.ratios = list(ratios)
        self.seed = seed
        self._picks: list[int] = []
        self._nth: list[int] = []
        self._orders: dict[tuple[int, int], list[int]] = {}

    def _order(self, source: int, epoch: int) -> list[int]:
        key = (source, epoch)
        if key not in self._orders:
            order = list(range(len(self.sources[source])))
            random.Random(f"{self.seed}-{source}-{epoch}").shuffle(order)
            self._orders[key] = order
        return self._orders[key]

    def locate(self, k: int) -> tuple[int, int]:
        """``(source index, item index)`` of position ``k`` (k >= 0)."""
        if len(self._picks) <= k:
            self._picks = schedule(self.ratios, max(2 * k + 1, 64))
            seen = [0] * len(self.ratios)
            self._nth = []
            for pick in self._picks:
                self._nth.append(seen[pick])
                seen[pick] += 1
        source, nth = self._picks[k], self._nth[k]
        size = len(self.sources[source])
        return source, self._order(source, nth // size)[nth % size]

    def __getitem__(self, k: int) -> T:
        source, item = self.locate(k)
        return self.sources[source][item]

    def iterate(self, start: int = 0, stride: int = 1) -> Iterator[T]:
        """Items at ``start, start + stride, ...`` forever."""
        k = start
        while True:
            yield self[k]
            k += stride
