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

Target kinds (issue 22): with ``--multi-share`` or ``--empty-share`` above 0, the drawn
targets become target slots (:func:`choose_slots`): each stays single, becomes a
multi-target set of one kind (:func:`target_sets`) or an empty target, drawn from a
generator of its own (:func:`kinds_rng`), so that shares of 0 leave every draw above as it
was.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from prist_builder.providers.base import TargetSlot
from prist_builder.providers.offline.knowledge import lookup, normalise
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


MAX_SET = 4
"""Most members of a multi-target set (a set is every instance of its kind, so a kind with more
instances than this never makes one: "all seven chairs" is a crowd, not an answer)."""


def kind_of(element: Element, label: str | None = None) -> str:
    """What a multi-target set shares: the knowledge-table category (``"sofa"`` and ``"couch"``
    are one) of the element's region ``label`` when it is grounded, else of its name; for a
    word the table lacks, that word normalised.

    The label comes first because a model-written step 1 names each instance apart ("woman in
    a denim jacket", "blonde woman with glasses"): grouping by name formed no set at all on the
    issue 22 relay run, and "woman holding a cup" would have joined the cups."""
    word = label or element.name
    category = lookup(word)
    return category.name if category.known else normalise(word)


def target_sets(record: ElementsRecord, min_share: float = 0.0) -> list[tuple[Element, ...]]:
    """The image's valid multi-target sets, in element order of their first member.

    A set is, for one kind (:func:`kind_of`, by region label when grounded) that is not a mass
    noun ("sky", "grass": its patches are no instances), every candidate target of it
    (:func:`candidates_of` with ``min_share``: grounded in a non-ignored region, and no tiny
    instance beside a much larger one while enough others remain; every element on a bare
    image), when there are 2..:data:`MAX_SET` of them and none lies inside another (the
    part-whole rule). Its members run left to right (box centre, then element id): the order
    the final answer names them.
    """
    image = record.image
    members = candidates_of(record, min_share) if image.source != "images" else list(record.elements)
    labels = {r.region_id: r.label for r in image.regions} if image.source != "images" else {}
    by_kind: dict[str, list[Element]] = {}
    for element in members:
        label = labels.get(element.region_id or "")
        if lookup(label or element.name).form != "mass":  # patches of sky are not instances
            by_kind.setdefault(kind_of(element, label), []).append(element)
    sets = []
    for group in by_kind.values():
        if not MIN_TARGETS <= len(group) <= MAX_SET:
            continue
        if image.source != "images":
            wholes = wholes_of(region_relations([image.region(e.region_id) for e in group]))
            if any(wholes.get(e.region_id or "") for e in group):
                continue

            def centre(e: Element) -> tuple[float, str]:
                x, _, w, _ = image.region(e.region_id).bbox
                return (x + w / 2, e.element_id)

            group = sorted(group, key=centre)
        sets.append(tuple(group))
    return sets


def kinds_rng(seed: int, image_id: str) -> random.Random:
    """The generator of the target-kind draws of one image: seeded from ``(seed, "kinds",
    image id)`` alone, apart from the step's own, so that shares of 0 draw nothing from it
    and a build writes what it wrote before the shares existed."""
    return random.Random(f"{seed}/kinds/{image_id}")


def choose_slots(
    record: ElementsRecord,
    targets: list[Element],
    rng: random.Random,
    multi_share: float,
    empty_share: float,
    min_share: float = 0.0,
) -> list[TargetSlot]:
    """Turn the drawn targets into step 2's target slots (issue 22), one slot per target, so
    the tree keeps its 2..4 paths.

    Each slot draws once: below ``empty_share`` it becomes ``empty`` (the provider picks a
    thing the image does not hold); below ``empty_share + multi_share`` it becomes ``multi``
    when a valid set (:func:`target_sets`) is still unused: the set holding the slot's
    target, else one of the image's other sets drawn uniformly (so the share holds on images
    whose drawn targets are not in a set); a set is used once per image and never holds a
    part or whole of another slot's target. Otherwise the slot stays ``single``.

    Args:
        record: the image's elements record.
        targets: :func:`choose_targets`' draw.
        rng: :func:`kinds_rng` of the image.
        multi_share, empty_share: chances in 0..1, summing to at most 1.
        min_share: the provider's tiny-instance share (:func:`target_sets`).
    """
    sets = target_sets(record, min_share)
    image = record.image
    grounded = image.source != "images"
    regions = [image.region(e.region_id) for e in record.elements if grounded and e.region_id is not None]
    wholes = wholes_of(region_relations(regions)) if grounded else {}

    def related(a: Element, b: Element) -> bool:
        ra, rb = a.region_id or "", b.region_id or ""
        return rb in wholes.get(ra, ()) or ra in wholes.get(rb, ())

    slots: list[TargetSlot] = []
    used: set[tuple[str, ...]] = set()
    for index, target in enumerate(targets):
        roll = rng.random()
        if roll < empty_share:
            slots.append(TargetSlot("empty"))
            continue
        if roll < empty_share + multi_share:
            others = [t for i, t in enumerate(targets) if i != index]
            free = [
                s
                for s in sets
                if tuple(e.element_id for e in s) not in used
                and not any(related(m, o) for m in s for o in others if o not in s)
            ]
            own = [s for s in free if target in s]
            options = own or free
            if options:
                chosen = options[0] if own else options[rng.randrange(len(options))]
                used.add(tuple(e.element_id for e in chosen))
                slots.append(TargetSlot("multi", chosen))
                continue
        slots.append(TargetSlot("single", (target,)))
    return slots
