"""``max_tokens`` per step, from what that step's answers really use.

A rate limiter (OpenAI's among them) reserves ``max_tokens`` for every request at admission,
so a cap far above the real answer size wastes the tokens-per-minute budget. The rule:

- The cap of a step (its ceiling, e.g. 4,000 tokens for the dialogues) is sent until
  :data:`MIN_SAMPLES` answers of that step came back complete (``finish_reason: stop``).
- Then the cap is the :data:`PERCENTILE` th percentile of their ``completion_tokens``
  times :data:`MARGIN`, rounded up to a multiple of :data:`ROUND_TO`, at least
  :data:`FLOOR` and at most the ceiling.
- An answer cut off at the cap (``finish_reason: length``) under a cap below the ceiling
  is asked again, the same request, at the ceiling (the model was not wrong, the cap was),
  and counts as an observation of the ceiling, so the percentile moves up.
- ``--max-tokens N`` fixes the cap of every step (still at most each step's ceiling).

Observations come from the complete answers of the run (a step is known by its prompt
version), including the accounting lines
already in ``requests.jsonl`` of a resumed run (:meth:`MaxTokens.load`). The cap sent does
not enter the response cache key (the key keeps the ceiling), so a cached answer is found
whatever cap was sent: only answers that finished (``stop``) and passed validation are cached.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path

MIN_SAMPLES = 20
"""Accepted answers of a step before its cap follows them."""
PERCENTILE = 99.0
"""Percentile of the observed completion tokens the cap covers."""
MARGIN = 1.25
"""The cap is this many times that percentile."""
FLOOR = 256
"""The lowest cap sent (tokens)."""
ROUND_TO = 64
"""Caps are rounded up to a multiple of this (tokens), so they change in steps."""
KEPT = 2000
"""Observations kept per step (the most recent)."""


class MaxTokens:
    """Chooses the ``max_tokens`` of each request (see the module docstring).

    Args:
        fixed: ``--max-tokens``: every step's cap, bounded by its ceiling; None = adaptive.
    """

    def __init__(self, fixed: int | None = None) -> None:
        self.fixed = fixed
        self._seen: dict[str, list[int]] = defaultdict(list)

    def cap(self, step: str, ceiling: int) -> int:
        """The ``max_tokens`` to send for a first ask of ``step`` (tokens)."""
        if self.fixed is not None:
            return min(self.fixed, ceiling)
        seen = self._seen.get(step, [])
        if len(seen) < MIN_SAMPLES:
            return ceiling
        ordered = sorted(seen)
        rank = min(len(ordered) - 1, math.ceil(PERCENTILE / 100 * len(ordered)) - 1)
        wanted = ROUND_TO * math.ceil(ordered[rank] * MARGIN / ROUND_TO)
        return max(min(FLOOR, ceiling), min(ceiling, wanted))

    def observe(self, step: str, completion_tokens: int) -> None:
        """Record the completion tokens of one complete answer of ``step`` (or the ceiling,
        for an answer that was cut off below it)."""
        seen = self._seen[step]
        seen.append(completion_tokens)
        if len(seen) > KEPT:
            del seen[: len(seen) - KEPT]

    def load(self, path: Path) -> None:
        """Observations from an accounting log (``requests.jsonl``): every answered chat line
        (``kind`` chat, not failed, not cached) with its ``prompt`` and ``completion_tokens``."""
        try:
            lines = Path(path).read_bytes().splitlines()
        except OSError:
            return
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            tokens = entry.get("completion_tokens") if isinstance(entry, dict) else None
            if entry.get("kind") == "chat" and not entry.get("failed") and isinstance(tokens, int) and tokens >= 0:
                if isinstance(entry.get("prompt"), str):
                    self.observe(entry["prompt"], tokens)
