"""Step 2-1's target choice (section 3.2.2), the same for every provider.

The paper draws ``K`` objects (``2 <= K <= min(N, 4)``) from the elements of step 1 and
asks three reasoning questions in its prompt (Figure 7b); PRIST's targets are 22 : 25 : 53
coarse : medium : fine (Table 2). So ``K`` defaults to 3 (``--targets``), capped by the
candidates, and each target slot first draws a granularity class with the weights of
``--granularity-mix`` among the classes the image still has, then a candidate of that
class uniformly. An image too small for K simply gets fewer targets (never fewer than 2).

Candidates are the elements grounded in a non-ignored region when the image has regions
(unmarked context elements are never targets), else every element (bare images: the
granularity is unknown until the mask is drawn, so the draw is uniform).

Part-whole rule: a region lying inside another (a collar on a dog, a plate on a car; see
:func:`prist_builder.providers.regions.region_relations`) is never a target together with
its whole, because the whole's mask then contains the part's and the two dialogues would
segment overlapping pixels under two names. Once one of them is drawn, the other leaves
the candidates, unless that would leave fewer than two targets, in which case the pair
is kept (and steps 2 and 3 are told that one is part of the other).

Tiny-region rule: an instance of a label that covers less than :data:`MIN_TARGET_SHARE` of
the image while another instance of that label is :data:`TINY_BESIDE` times larger (the top
of a head behind a counter beside three seated people; its Set-of-Mark id tag hides most
of it) leaves the candidates while at least K other regions remain; it comes back only to
fill the K slots. The rule is the provider's (``Provider.tiny_target_share``): on for
``openai``, whose marked image hides such a region under its id tag, off for ``offline``,
which reads the mask itself. A small thing of its own kind (a logo, a cup) stays a candidate, so the
granularity mix keeps its fine targets (``min_share=0`` turns the rule off).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from prist_builder.providers.regions import region_granularity, region_relations, wholes_of
from prist_builder.records import Element, ElementsRecord
from prist_builder.records.granularity import GRANULARITIES, PRIST_MIX
from prist_builder.records.limits import MIN_TARGETS
from prist_builder.sources import InputRejected

MIN_TARGET_SHARE = 0.01
"""Regions below this share of the image's pixels are targets only when too few larger ones
remain (see the module docstring; the issue 19 relay run met a 0.53% region)."""

TINY_BESIDE = 4
"""A region is tiny only when an instance of its label is at least this many times larger."""

DEFAULT_TARGETS = 3
"""K targets per image (Figure 7b asks three reasoning questions; section 3.2.2 bounds K to 2..4)."""


def candidates_of(record: ElementsRecord, min_share: float = MIN_TARGET_SHARE, k: int = MIN_TARGETS) -> list[Element]:
    """The elements that may be targets (see the module docstring): grounded in a
    non-ignored region, and not a tiny instance (under ``min_share`` of the image, a
    fraction, beside a :data:`TINY_BESIDE` times larger instance of its label) unless
    fewer than ``k`` other elements remain (then the tiny ones stay)."""
    if record.image.source == "images":
        return list(record.elements)
    image = record.image
    grounded = [e for e in record.elements if e.region_id is not None and not image.region(e.region_id).ignore]
    pixels = max(image.width * image.height, 1)
    areas = {e.element_id: image.region(e.region_id).area for e in grounded}
    labels = {e.element_id: image.region(e.region_id).label for e in grounded}
    largest: dict[str, int] = {}
    for e in grounded:
        largest[labels[e.element_id]] = max(largest.get(labels[e.element_id], 0), areas[e.element_id])

    def tiny(e: Element) -> bool:  # a small instance beside a much larger one of its label
        area = areas[e.element_id]
        return area < min_share * pixels and area * TINY_BESIDE < largest[labels[e.element_id]]

    large = [e for e in grounded if not tiny(e)]
    return large if len(large) >= max(k, MIN_TARGETS) else grounded


def choose_targets(
    record: ElementsRecord,
    rng: random.Random,
    k: int = DEFAULT_TARGETS,
    mix: Sequence[float] = PRIST_MIX,
    min_share: float = MIN_TARGET_SHARE,
) -> list[Element]:
    """Draw the targets of one image: ``min(k, candidates)`` of them toward the granularity
    ``mix`` (weights coarse, medium, fine), no part together with its whole, no region
    under ``min_share`` of the image while larger ones suffice (module docstring).
    Returned in element order.

    Raises:
        InputRejected: fewer than two candidates.
    """
    candidates = candidates_of(record, min_share, k)
    if len(candidates) < MIN_TARGETS:
        raise InputRejected(
            f"{record.image.annotation_path or record.image.path}: {len(candidates)} candidate"
            f" target(s); step 2 needs at least {MIN_TARGETS}",
            record.image.annotation_path,
        )
    image = record.image
    grounded = image.source != "images"
    klass = {
        e.element_id: region_granularity(image.region(e.region_id), image) if grounded else "fine" for e in candidates
    }
    region_of = {e.element_id: e.region_id for e in candidates}
    wholes = wholes_of(region_relations([image.region(e.region_id) for e in candidates])) if grounded else {}

    def related(a: str, b: str) -> bool:
        ra, rb = region_of[a], region_of[b]
        return rb in wholes.get(ra or "", ()) or ra in wholes.get(rb or "", ())

    weights = dict(zip(GRANULARITIES, mix, strict=True))
    chosen: list[str] = []
    pool = [e.element_id for e in candidates]
    wanted = min(k, len(candidates))
    while len(chosen) < wanted and pool:
        free = [e for e in pool if not any(related(e, c) for c in chosen)]
        if not free and len(chosen) >= MIN_TARGETS:
            break
        options = free or pool
        classes = sorted({klass[e] for e in options}, key=GRANULARITIES.index)
        class_weights = [weights[c] for c in classes]
        if sum(class_weights) <= 0:
            class_weights = [1.0] * len(classes)
        picked_class = rng.choices(classes, weights=class_weights)[0]
        picked = rng.choice([e for e in options if klass[e] == picked_class])
        chosen.append(picked)
        pool.remove(picked)
    keep = set(chosen)
    return [e for e in candidates if e.element_id in keep]
