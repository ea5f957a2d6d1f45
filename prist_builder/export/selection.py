"""Which samples of a run go out, which stay home and why, and which split each goes to."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from prist_builder.export.splits import SPLITS, SplitSpec, assign_splits
from prist_builder.samples import Sample

REJECTED = "rejected by a reviewer"
NO_MASK = "no final mask"
NO_IMAGE = "image not available"
MASKS_MISMATCH = "final masks do not match the targets"
REFUSED = "refused by --format"
"""Start of the reason of a sample left out because its format cannot hold its target kind."""


def refusal(fmt: str, why: str) -> str:
    """The left-out reason of a sample whose target kind ``fmt`` cannot hold (``why``: one phrase)."""
    return f"{REFUSED} {fmt}: {why}"


def masks_match(sample: Sample) -> bool:
    """Whether a sample with a final mask has one per target (``Sample.masks`` against
    ``DialogueRecord.target_list()``; a single-target sample's union is its one mask)."""
    if sample.mask is None or sample.kind == "single":
        return True
    return len(sample.masks) == len(sample.dialogue.target_list())


def leave_out_reason(sample: Sample, *, need_mask: bool, need_image: bool, check_masks: bool) -> str | None:
    """Why ``sample`` stays home (:data:`REJECTED`, :data:`NO_MASK`, :data:`MASKS_MISMATCH`,
    :data:`NO_IMAGE`, checked in that order), or ``None`` when it goes out (see :func:`select`)."""
    if sample.review.status == "rejected":
        return REJECTED
    if need_mask and sample.mask is None:
        return NO_MASK
    if check_masks and not masks_match(sample):
        return MASKS_MISMATCH
    if need_image and not sample.image.sha256:
        return NO_IMAGE
    return None


@dataclass
class Selection:
    """The outcome of choosing and splitting samples.

    Attributes:
        splits: split name -> its samples, in the run's order; every name of :data:`SPLITS` is present.
        left_out: reason -> sample ids left out for it.
    """

    splits: dict[str, list[Sample]] = field(default_factory=lambda: {name: [] for name in SPLITS})
    left_out: dict[str, list[str]] = field(default_factory=dict)

    def leave_out(self, sample_id: str, reason: str) -> None:
        """Record that ``sample_id`` does not go out, for ``reason``."""
        self.left_out.setdefault(reason, []).append(sample_id)

    def sizes(self) -> dict[str, int]:
        """Samples per split."""
        return {name: len(samples) for name, samples in self.splits.items()}


def select(
    samples: list[Sample],
    spec: SplitSpec,
    seed: int,
    *,
    need_mask: bool = True,
    need_image: bool = True,
    one_split: str | None = None,
    check_masks: bool = True,
) -> Selection:
    """Keep the samples that can go out and split them by image.

    A sample rejected by a reviewer never goes out. Without ``need_mask`` a sample without
    a final mask goes out with no target; without ``need_image`` one whose image the run
    does not hold goes out without an image.

    Args:
        samples: the run's samples (:func:`prist_builder.samples.iter_samples`).
        spec: split sizes; ignored with ``one_split``.
        seed: seed of the split.
        one_split: put every kept sample into this split (e.g. ``"test"`` for a released test set).
        check_masks: leave out a sample whose final masks are not one per target
            (:func:`masks_match`; for the formats that write masks).

    Raises:
        ValueError: ``one_split`` is not one of :data:`SPLITS`.
    """
    if one_split is not None and one_split not in SPLITS:
        raise ValueError(f"--one-split must be one of {', '.join(SPLITS)}, got {one_split!r}")
    out = Selection()
    kept: list[Sample] = []
    for sample in samples:
        reason = leave_out_reason(sample, need_mask=need_mask, need_image=need_image, check_masks=check_masks)
        if reason is not None:
            out.leave_out(sample.sample_id, reason)
        else:
            kept.append(sample)
    if one_split is not None:
        out.splits[one_split] = kept
        return out
    per_image = Counter(s.dialogue.image_id for s in kept)
    where = assign_splits(list(per_image.items()), spec, seed)
    for sample in kept:
        out.splits[where[sample.dialogue.image_id]].append(sample)
    return out
