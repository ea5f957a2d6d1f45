"""Who annotates what: each sample goes to two annotators of one group (paper Appendix B.1).

Annotators are split into ``groups`` contiguous groups in the order given (``a,b,c,d`` in
two groups: ``{a, b}`` and ``{c, d}``). Samples are shuffled with the seed and dealt to the
groups in turn; inside a group each sample goes to the pair of annotators with the least
work so far (ties: the first pair in order), so loads differ by at most one sample per
annotator within a group. The first annotator of a pair is annotator A. A sample assigned
before (``RUN/assignments.jsonl``) keeps its assignment; only new samples are dealt.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from prist_builder import appendlog

ASSIGNMENTS_FILE = "assignments.jsonl"
"""``RUN/assignments.jsonl``: one :class:`Assignment` per sample and export; the latest wins."""
ANNOTATORS_PER_SAMPLE = 2
"""Independent annotations per sample (paper: two annotators of one group)."""


class Assignment(BaseModel):
    """The group and the two annotators of one sample.

    Attributes:
        sample_id: the dialogue's ``sample_id``.
        group: group name (``g1``, ``g2``, ...).
        annotators: ``[A, B]``.
        seed: seed of the deal.
        time: ISO 8601 UTC time of the export that dealt it.
    """

    model_config = ConfigDict(extra="forbid")

    sample_id: str
    group: str
    annotators: list[str] = Field(min_length=ANNOTATORS_PER_SAMPLE, max_length=ANNOTATORS_PER_SAMPLE)
    seed: int
    time: str


def now() -> str:
    """The current UTC time, ISO 8601 with seconds."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def split_groups(annotators: Sequence[str], groups: int) -> dict[str, list[str]]:
    """Split annotators into ``groups`` contiguous groups named ``g1..gN``.

    Raises:
        ValueError: duplicated or empty names, ``groups < 1``, or a group with fewer
            than two annotators.
    """
    names = [a.strip() for a in annotators]
    if any(not n for n in names) or len(set(names)) != len(names):
        raise ValueError(f"--annotators: names must be distinct and non-empty, got {list(annotators)}")
    if groups < 1 or len(names) < ANNOTATORS_PER_SAMPLE * groups:
        raise ValueError(
            f"--groups {groups}: {len(names)} annotators cannot form {groups} groups of at least"
            f" {ANNOTATORS_PER_SAMPLE}"
        )
    size, extra = divmod(len(names), groups)
    out: dict[str, list[str]] = {}
    start = 0
    for g in range(groups):
        end = start + size + (1 if g < extra else 0)
        out[f"g{g + 1}"] = names[start:end]
        start = end
    return out


def deal(
    sample_ids: Sequence[str],
    groups: dict[str, list[str]],
    seed: int,
    previous: dict[str, Assignment] | None = None,
) -> dict[str, Assignment]:
    """Assign every sample to a group and a pair of its annotators (see the module docstring).

    Returns:
        sample id -> :class:`Assignment`, in ``sample_ids`` order.
    """
    previous = previous or {}
    load = {a: 0 for members in groups.values() for a in members}
    for assignment in previous.values():
        for name in assignment.annotators:
            if name in load:
                load[name] += 1
    fresh = [s for s in sample_ids if s not in previous]
    random.Random(seed).shuffle(fresh)
    names = sorted(groups, key=lambda g: int(g[1:]) if g[1:].isdigit() else g)
    stamp = now()
    dealt: dict[str, Assignment] = {}
    for index, sample_id in enumerate(fresh):
        group = names[index % len(names)]
        pairs = list(itertools.combinations(groups[group], ANNOTATORS_PER_SAMPLE))
        pair = min(pairs, key=lambda p: (max(load[a] for a in p), sum(load[a] for a in p)))
        for name in pair:
            load[name] += 1
        dealt[sample_id] = Assignment(sample_id=sample_id, group=group, annotators=list(pair), seed=seed, time=stamp)
    return {s: previous.get(s) or dealt[s] for s in sample_ids}


def read_assignments(run: Path) -> dict[str, Assignment]:
    """The latest assignment of each sample of a run (``{}`` if none was exported)."""
    return appendlog.latest(appendlog.read(Path(run) / ASSIGNMENTS_FILE, Assignment), lambda a: a.sample_id)
