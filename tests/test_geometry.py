"""The offline provider's one geometry: the same facts from pixels (step 1) and from RLE runs (step 2)."""

from __future__ import annotations

import numpy as np
import pytest

from prist_builder.annotation.masks import encode
from prist_builder.providers.offline.geometry import mask_geometry, rle_counts, rle_geometry


def _masks() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    out = []
    for index in range(200):
        height, width = (int(v) for v in rng.integers(1, 90, 2))
        if index % 2:
            mask = rng.random((height, width)) < rng.random()
        else:
            mask = np.zeros((height, width), bool)
            y, x = int(rng.integers(0, height)), int(rng.integers(0, width))
            mask[y : y + int(rng.integers(1, 30)), x : x + int(rng.integers(1, 30))] = True
        if mask.any():
            out.append(mask)
    return out


def test_rle_runs_decode_like_pycocotools() -> None:
    for mask in _masks()[:50]:
        counts = rle_counts(encode(mask).counts)
        flat = mask.flatten(order="F")
        assert counts.sum() == flat.size
        rebuilt = np.repeat(np.arange(len(counts)) % 2 == 1, counts)
        assert (rebuilt == flat).all()


def test_pixels_and_runs_give_the_same_geometry_and_the_true_centroid() -> None:
    for mask in _masks():
        height, width = mask.shape
        from_pixels = mask_geometry(mask, width, height)
        assert rle_geometry(encode(mask), width, height) == from_pixels
        ys, xs = np.nonzero(mask)
        assert from_pixels.x == pytest.approx(xs.mean()) and from_pixels.y == pytest.approx(ys.mean())
        assert from_pixels.box == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        assert from_pixels.area == len(xs)
        column = ("left", "center", "right")[min(int(3 * xs.mean() / width), 2)]
        assert from_pixels.column == column


def test_a_crop_measures_like_the_whole_image() -> None:
    mask = np.zeros((60, 90), bool)
    mask[10:25, 50:80] = True
    whole = mask_geometry(mask, 90, 60)
    crop = mask_geometry(mask[10:25, 50:80], 90, 60, offset=(50, 10))
    assert whole == crop and whole.position == "top right" and whole.size == "medium"


def test_empty_masks_are_refused() -> None:
    with pytest.raises(ValueError):
        mask_geometry(np.zeros((4, 4), bool), 4, 4)
    with pytest.raises(ValueError):
        rle_geometry(encode(np.zeros((4, 4), bool)), 4, 4)
