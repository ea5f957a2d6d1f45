"""Throughput of ``prist export`` (hf format) against a bare ``datasets`` parquet write.

Input: a run built offline from synthetic 1024x1024 JPEG photos with Labelme shapes, cut
to ``SAMPLES`` dialogues (default 2,000; set ``PRIST_BENCH_EXPORT_SAMPLES`` or pass
``--samples N`` for a quick run). Timed in-process:

- *export*: :func:`prist_builder.export.writer.export_run` end to end (join of the run,
  image files read and checked, rows built, parquet shards, card with pictures, export.json);
- *baseline*: ``Dataset.from_dict(columns, features=FEATURES).to_parquet(file)`` of the very
  same columns, already in memory, in the same process.

The ratio is baseline seconds over export seconds (1.0 = export costs nothing on top of
the parquet write). Target: >= 0.8 at 2,000 samples. Quick runs of a few dozen samples
miss it by design: the card's fixed cost (three 1024x1024 overlays, two charts, about
0.3 s) then outweighs the parquet write.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import datasets
from PIL import Image, ImageFilter

from prist_builder.export.features import FEATURES
from prist_builder.export.selection import Selection
from prist_builder.export.writer import export_run, iter_rows
from prist_builder.pipeline.build import build
from prist_builder.pipeline.manifest import BuildConfig
from prist_builder.samples import iter_samples
from prist_builder.testing.synthetic import write_synthetic

SAMPLES = int(os.environ.get("PRIST_BENCH_EXPORT_SAMPLES", "2000"))
"""Samples exported (the issue asks for 2,000)."""
SIDE = 1024
"""Image side in pixels."""
SAMPLES_PER_IMAGE = 2
"""Fewest dialogues the offline build makes per image (2 to 4 targets)."""
MAX_IMAGES = 250
"""Images built at most; beyond them dialogues are repeated under new sample ids (each row
still carries its image's bytes), which keeps the set-up short."""
JPEG_QUALITY = 90
BLUR_RADIUS = 2
"""Pixels of blur on the synthetic noise, so that JPEGs have a photo-like size."""
TARGET_RATIO = 0.8
TITLE = f"prist export (hf) of {SAMPLES:,} samples, {SIDE}x{SIDE} images, vs bare Dataset.from_dict().to_parquet"
WORKERS = 2


def _make_run(root: Path, samples: int) -> Path:
    """A built run of at least ``samples`` dialogues, cut to exactly ``samples``."""
    folder = root / "inputs"
    count = min(MAX_IMAGES, max(2, -(-samples // SAMPLES_PER_IMAGE)))
    for labelme in write_synthetic(folder, count, seed=5, size=(SIDE, SIDE)):
        doc = json.loads(labelme.read_text(encoding="utf-8"))
        png = folder / doc["imagePath"]
        jpg = png.with_suffix(".jpg")
        Image.open(png).filter(ImageFilter.GaussianBlur(BLUR_RADIUS)).save(jpg, quality=JPEG_QUALITY)
        png.unlink()
        labelme.write_text(json.dumps({**doc, "imagePath": jpg.name}), encoding="utf-8")
    run = root / "run"
    asyncio.run(build(run, BuildConfig(labelme=str(folder), workers=WORKERS), ("elements", "trees", "dialogues")))
    built = [json.loads(line) for line in (run / "dialogues.jsonl").read_text(encoding="utf-8").splitlines()]
    lines = []
    for index in range(samples):
        record = dict(built[index % len(built)])
        if index >= len(built):
            record["sample_id"] = f"{record['sample_id']}-copy{index // len(built)}"
        lines.append(json.dumps(record))
    (run / "dialogues.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return run


def measure(samples: int | None = None) -> dict[str, float]:
    """Seconds of the export and of the baseline write, and the sample count (default :data:`SAMPLES`)."""
    samples = samples or SAMPLES
    datasets.disable_progress_bars()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        run = _make_run(root, samples)
        started = time.perf_counter()
        summary = export_run(run, root / "export")
        export_s = time.perf_counter() - started
        exported = sum(summary.sizes.values())
        rows = list(iter_rows(list(iter_samples(run)), Selection()))
        columns = {name: [row[name] for row in rows] for name in FEATURES}
        del rows
        started = time.perf_counter()
        datasets.Dataset.from_dict(columns, features=FEATURES).to_parquet(str(root / "baseline.parquet"))
        baseline_s = time.perf_counter() - started
        size = sum(p.stat().st_size for p in (root / "export" / "data").iterdir())
    return {"samples": exported, "export_s": export_s, "baseline_s": baseline_s, "bytes": size}


def run() -> list[dict[str, str]]:
    """One table row: samples, seconds and samples/s of both, and the ratio to the target."""
    m = measure()
    ratio = m["baseline_s"] / m["export_s"]
    return [
        {
            "samples": f"{m['samples']:.0f}",
            "images": f"{SIDE}x{SIDE} JPEG",
            "parquet MB": f"{m['bytes'] / 1e6:.0f}",
            "export s": f"{m['export_s']:.2f}",
            "export samples/s": f"{m['samples'] / m['export_s']:.0f}",
            "baseline s": f"{m['baseline_s']:.2f}",
            "baseline samples/s": f"{m['samples'] / m['baseline_s']:.0f}",
            "ratio": f"{ratio:.2f}",
            "target": f">= {TARGET_RATIO} {'ok' if ratio >= TARGET_RATIO else 'MISSED'}",
        }
    ]


if __name__ == "__main__":
    if "--samples" in sys.argv:
        SAMPLES = int(sys.argv[sys.argv.index("--samples") + 1])
    print(json.dumps(run(), indent=2))
