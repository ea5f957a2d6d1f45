"""Train / validation / test splits made by image, deterministic from a seed.

All samples of an image land in the same split, so no image is seen in two splits. The
images are shuffled with ``random.Random(seed)``; the test split takes images until it
holds its share of samples, then validation, and train keeps the rest. Default shares are
the paper's: 7,312 / 500 / 508 samples of 8,320 (section 3.4).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

SPLITS: tuple[str, ...] = ("train", "validation", "test")
"""Every export has these three splits, empty or not."""

PAPER_TOTAL = 8320
"""Samples of PRIST (section 3.4)."""
PAPER_VALIDATION = 500
"""Validation samples of PRIST."""
PAPER_TEST = 508
"""Test samples of PRIST."""


@dataclass(frozen=True)
class SplitSpec:
    """How big validation and test are; train keeps the rest.

    Each size is a fraction of the samples when it is below 1 (``0.06``) and a number of
    samples otherwise (``500``). Splits are filled image by image, so a size is reached or
    slightly passed, never split inside an image.

    Raises (on construction): ``ValueError`` for a negative size or fractions summing to 1 or more.
    """

    validation: float = PAPER_VALIDATION / PAPER_TOTAL
    test: float = PAPER_TEST / PAPER_TOTAL

    def __post_init__(self) -> None:
        for name in ("validation", "test"):
            if getattr(self, name) < 0:
                raise ValueError(f"--{name} must not be negative, got {getattr(self, name)}")
        if self.validation < 1 and self.test < 1 and self.validation + self.test >= 1:
            raise ValueError("--validation and --test fractions must sum to less than 1")

    def target(self, name: str, samples: int) -> int:
        """Samples wanted in split ``name`` for a dataset of ``samples`` samples."""
        size = getattr(self, name)
        return round(size * samples) if size < 1 else int(size)


def assign_splits(image_samples: Sequence[tuple[str, int]], spec: SplitSpec, seed: int) -> dict[str, str]:
    """Split name of each image.

    Args:
        image_samples: ``(image_id, number of samples)`` per image (any order; sorted here).
        spec: the sizes.
        seed: seed of the shuffle.

    Returns:
        ``image_id -> "train" | "validation" | "test"``. With 2 or more images the test split
        gets at least one image and train keeps at least one.
    """
    images = sorted(image_samples)
    random.Random(seed).shuffle(images)
    total = sum(count for _, count in images)
    out: dict[str, str] = {}
    position = 0
    for name in ("test", "validation"):
        want = spec.target(name, total)
        if name == "test" and len(images) >= 2:
            want = max(want, 1)
        got = 0
        while got < want and position < len(images) - 1:
            image_id, count = images[position]
            out[image_id] = name
            got += count
            position += 1
    for image_id, _ in images[position:]:
        out[image_id] = "train"
    return out
