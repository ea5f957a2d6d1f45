"""Speed of ``prist evaluate``'s segmentation metrics on 1024x1024 masks given as RLE.

Inputs: ``SAMPLES`` synthetic (prediction, target) pairs of 1024x1024 masks made of random
polygons (pycocotools rasterises them straight to RLE, so making them costs little). Timed:
gIoU, cIoU, pixel precision/recall/F1 (micro and macro) overall and by granularity, from the
RLEs, as ``prist evaluate`` computes them. Baseline, measured in the same run over the same
RLEs: a bare pycocotools pass, one ``iou`` call and the two areas per pair, nothing else.

Run alone: ``python benchmarks/evaluate.py [SAMPLES]`` (or ``PRIST_BENCH_EVAL_SAMPLES``).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from pycocotools import mask as coco_mask

from prist_builder.annotation.masks import area
from prist_builder.evaluate.references import Reference
from prist_builder.evaluate.scoring import ScoringOptions, evaluate
from prist_builder.evaluate.segmentation import AREA_CHUNK, by_granularity, count_pairs, summarize
from prist_builder.records.rle import RLE
from prist_builder.stats import granularity

SAMPLES = int(os.environ.get("PRIST_BENCH_EVAL_SAMPLES", "10000"))
"""Pairs scored (10,000 in the issue's target)."""
SIDE = 1024
"""Mask side in pixels."""
TITLE = f"prist evaluate segmentation metrics ({SAMPLES:,} pairs of {SIDE}x{SIDE} RLE masks; target < 60 s per 10,000)"
TARGET_S = 60.0
"""Target seconds for ``SAMPLES`` = 10,000 on the reference machine (2 cores)."""
VERTICES = 12
SEED = 0


def _polygon(rng: np.random.Generator) -> list[float]:
    cx, cy = rng.uniform(0.1, 0.9, size=2) * SIDE
    radius = rng.uniform(0.02, 0.3) * SIDE  # fine to coarse targets
    angles = np.sort(rng.uniform(0, 2 * np.pi, VERTICES))
    radii = radius * rng.uniform(0.5, 1.0, VERTICES)
    return np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], axis=1).ravel().tolist()


def make_pairs(samples: int, seed: int = SEED) -> list[tuple[RLE, RLE]]:
    """``samples`` (prediction, target) pairs of overlapping random polygons, as RLE models."""
    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(samples):
        target = _polygon(rng)
        shift = rng.normal(0, 0.05 * SIDE, size=2)
        predicted = (np.array(target).reshape(-1, 2) + shift).ravel().tolist()
        rles = [coco_mask.merge(coco_mask.frPyObjects([poly], SIDE, SIDE)) for poly in (predicted, target)]
        pred, targ = (RLE(size=list(r["size"]), counts=r["counts"].decode("ascii")) for r in rles)
        pairs.append((pred, targ))
    return pairs


def time_prist(pairs: list[tuple[RLE, RLE]]) -> float:
    """Seconds for the scorer's segmentation figures (overall and by granularity) of ``pairs``."""
    started = time.perf_counter()
    grains = [granularity(area(t), SIDE, SIDE) for _, t in pairs]
    counts = count_pairs(pairs)
    summarize(counts)
    by_granularity(counts, grains)
    return time.perf_counter() - started


def time_pycocotools(pairs: list[tuple[RLE, RLE]]) -> float:
    """Seconds for a bare pycocotools pass: per pair one ``iou`` call, areas in chunks."""
    started = time.perf_counter()
    preds = [{"size": p.size, "counts": p.counts.encode("ascii")} for p, _ in pairs]
    targets = [{"size": t.size, "counts": t.counts.encode("ascii")} for _, t in pairs]
    for p, t in zip(preds, targets, strict=True):
        coco_mask.iou([p], [t], [0])
    for start in range(0, len(pairs), AREA_CHUNK):
        coco_mask.area(preds[start : start + AREA_CHUNK])
        coco_mask.area(targets[start : start + AREA_CHUNK])
    return time.perf_counter() - started


def time_end_to_end(pairs: list[tuple[RLE, RLE]]) -> float:
    """Seconds for ``evaluate()`` from a predictions JSONL file: read, match, score (no response texts)."""
    refs = [
        Reference(
            f"s{i}", f"img{i}", SIDE, SIDE, (("user", "Segment it."), ("assistant", "Certainly, [SEG].")), "target", t
        )
        for i, (_, t) in enumerate(pairs)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "predictions.jsonl"
        path.write_text(
            "".join(
                json.dumps({"sample_id": f"s{i}", "responses": ["Certainly, [SEG]."], "mask": p.model_dump()}) + "\n"
                for i, (p, _) in enumerate(pairs)
            ),
            encoding="utf-8",
        )
        started = time.perf_counter()
        evaluate(path, refs, ScoringOptions())
        return time.perf_counter() - started


def _row(name: str, samples: int, seconds: float, baseline: float, target: str) -> dict[str, str]:
    return {
        "pass": name,
        "samples": f"{samples:,}",
        "seconds": f"{seconds:.2f}",
        "ms / sample": f"{1000 * seconds / samples:.3f}",
        "ratio to baseline": f"{seconds / baseline:.2f}",
        "target s": target,
    }


def run(samples: int = SAMPLES) -> list[dict[str, str]]:
    """Time the baseline and the scorer over the same RLEs; one table row each."""
    pairs = make_pairs(samples)
    baseline = time_pycocotools(pairs)
    ours = time_prist(pairs)
    whole = time_end_to_end(pairs)
    target = TARGET_S * samples / 10_000
    verdict = f"< {target:.0f}" + (" (met)" if ours < target else " (MISSED)")
    return [
        _row("bare pycocotools iou + area", samples, baseline, baseline, "-"),
        _row("prist segmentation metrics (overall + granularity)", samples, ours, baseline, verdict),
        _row("prist evaluate() from a predictions JSONL", samples, whole, baseline, "-"),
    ]


if __name__ == "__main__":
    for row in run(int(sys.argv[1]) if len(sys.argv) > 1 else SAMPLES):
        print(row)
