"""Agreement pairs per second at 1024x1024: our IoU + kappa by counting, against sklearn's
``cohen_kappa_score`` on the same pairs and against a bare ``np.count_nonzero(a & b)``
(the least any intersection-based score must do), all measured in one run, best of
``ROUNDS`` passes each. A fourth row times our scores on the COCO RLE masks a run stores,
without decoding them (the path ``prist qa agreement`` takes).

Targets (issue 10): >= 100x sklearn's pairs/s, and within 2x of the bare count.
"""

from __future__ import annotations

import time

import numpy as np
from sklearn.metrics import cohen_kappa_score

from prist_builder.annotation.agreement import score_pair, score_rles
from prist_builder.annotation.masks import encode, rasterize

SIZE = 1024
TITLE = f"agreement pairs/s at {SIZE}x{SIZE}: IoU + Cohen's kappa by counting vs sklearn and a bare count"
"""Masks are SIZE x SIZE pixels."""
PAIRS = 200
"""Distinct mask pairs (ours and the bare count loop over them ROUNDS times)."""
ROUNDS = 5
SKLEARN_PAIRS = 10
"""sklearn is about 50 ms a pair: a subset of the same pairs keeps the run short."""
TARGET_VS_SKLEARN = 100.0
TARGET_VS_BARE = 2.0
SEED = 0


def _pairs() -> list[tuple[np.ndarray, np.ndarray]]:
    """Realistic pairs: a random polygon and a jittered copy of it (two annotators' outlines)."""
    rng = np.random.default_rng(SEED)
    out = []
    for _ in range(PAIRS):
        centre = rng.uniform(200, SIZE - 200, size=2)
        angles = np.sort(rng.uniform(0, 2 * np.pi, size=12))
        radii = rng.uniform(60, 180, size=12)
        points = [(centre[0] + r * np.cos(t), centre[1] + r * np.sin(t)) for r, t in zip(radii, angles, strict=True)]
        jittered = [(x + rng.normal(0, 3), y + rng.normal(0, 3)) for x, y in points]
        out.append((rasterize("polygon", points, SIZE, SIZE), rasterize("polygon", jittered, SIZE, SIZE)))
    return out


def _rate(function, pairs: list, rounds: int) -> float:  # noqa: ANN001
    """Pairs per second, best of ``rounds`` passes over ``pairs`` (the least disturbed by other load)."""
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for a, b in pairs:
            function(a, b)
        best = min(best, time.perf_counter() - started)
    return len(pairs) / best


def run() -> list[dict[str, str]]:
    """Measure the three methods on the same pairs; one row each, ratios against ours."""
    pairs = _pairs()
    for a, b in pairs[:SKLEARN_PAIRS]:  # same numbers before timing anything
        theirs = cohen_kappa_score(a.ravel(), b.ravel())
        assert abs(score_pair(a, b).kappa - theirs) < 1e-9
    encoded = [(encode(a), encode(b)) for a, b in pairs]
    ours = _rate(score_pair, pairs, ROUNDS)
    bare = _rate(lambda a, b: np.count_nonzero(a & b), pairs, ROUNDS)
    on_rle = _rate(score_rles, encoded, ROUNDS)
    sklearn = _rate(lambda a, b: cohen_kappa_score(a.ravel(), b.ravel()), pairs[:SKLEARN_PAIRS], 1)
    speedup, slowdown = ours / sklearn, bare / ours
    return [
        {
            "method": "ours: IoU + kappa by counting (bool masks)",
            "pairs/s": f"{ours:.0f}",
            "ours / method": "1.00",
            "target": "",
        },
        {
            "method": "ours on COCO RLE, no decode (prist qa's path)",
            "pairs/s": f"{on_rle:.0f}",
            "ours / method": f"{ours / on_rle:.2f}",
            "target": "",
        },
        {
            "method": "sklearn cohen_kappa_score (kappa only)",
            "pairs/s": f"{sklearn:.1f}",
            "ours / method": f"{speedup:.0f}x",
            "target": f">= {TARGET_VS_SKLEARN:.0f}x {'ok' if speedup >= TARGET_VS_SKLEARN else 'MISSED'}",
        },
        {
            "method": "bare np.count_nonzero(a & b)",
            "pairs/s": f"{bare:.0f}",
            "ours / method": f"{1 / slowdown:.2f}",
            "target": f"within {TARGET_VS_BARE:.0f}x {'ok' if slowdown <= TARGET_VS_BARE else 'MISSED'}",
        },
    ]
