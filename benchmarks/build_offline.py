"""Throughput of ``prist build all`` with the offline provider (images per second).

Inputs: the demo's real photos and their Labelme files, each copied ``COPIES`` times
under new names, so the build sees a few hundred distinct inputs. Timed in-process
(no interpreter start-up), fsync on, as a user runs it.

Baseline, measured in the same run: reading every input alone (image decode and mask
rasterisation, :func:`prist_builder.sources.load_item`, one process), the floor any build
pays; ``build / read`` is how many times that the whole build takes.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import time
from pathlib import Path

from prist_builder.demo import LABELME_DIR, photo_path
from prist_builder.pipeline.build import build
from prist_builder.pipeline.manifest import BuildConfig
from prist_builder.sources import discover, load_item
from prist_builder.testing.synthetic import write_synthetic

TITLE = "prist build all --provider offline (images/s, 2 workers)"
COPIES = 40
"""Copies of each demo photo."""
SYNTHETIC_IMAGES = 300
TARGET_IMAGES_PER_S = 50.0
WORKERS = 2
"""Processes for step 1: the reference machine has 2 cores."""


def _replicate_demo(folder: Path) -> int:
    count = 0
    for labelme in sorted(LABELME_DIR.glob("*.json")):
        doc = json.loads(labelme.read_text(encoding="utf-8"))
        source = photo_path(doc["imagePath"])
        for copy in range(COPIES):
            name = f"{labelme.stem}_{copy:03d}"
            shutil.copyfile(source, folder / f"{name}{source.suffix}")
            copy_doc = {**doc, "imagePath": f"{name}{source.suffix}"}
            (folder / f"{name}.json").write_text(json.dumps(copy_doc), encoding="utf-8")
            count += 1
    return count


def _time_read(folder: Path) -> float:
    """Seconds to read every input of ``folder`` once (the baseline)."""
    items, _ = discover(labelme=folder)
    started = time.perf_counter()
    for item in items:
        load_item(item)
    return time.perf_counter() - started


def _time_build(folder: Path, run: Path) -> dict[str, float]:
    started = time.perf_counter()
    config = BuildConfig(labelme=str(folder), workers=WORKERS)
    result = asyncio.run(build(run, config, ("elements", "trees", "dialogues")))
    total = time.perf_counter() - started
    times = {r.step: r.seconds for r in result.reports}
    times["total"] = total
    times["n_images"] = float(result.manifest["counts"]["images"])
    times["n_dialogues"] = float(result.manifest["counts"]["dialogues"])
    return times


def run() -> list[dict[str, str]]:
    """Build both input sets and return one table row per set."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sets = {}
        demo = root / "demo"
        demo.mkdir()
        sets[f"demo photos x{COPIES}"] = (demo, _replicate_demo(demo))
        synthetic = root / "synthetic"
        write_synthetic(synthetic, SYNTHETIC_IMAGES, seed=1)
        sets["synthetic 320x240"] = (synthetic, SYNTHETIC_IMAGES)
        for name, (folder, _count) in sets.items():
            read = _time_read(folder)
            times = _time_build(folder, root / f"run-{folder.name}")
            rate = times["n_images"] / times["total"]
            rows.append(
                {
                    "inputs": name,
                    "images": f"{times['n_images']:.0f}",
                    "dialogues": f"{times['n_dialogues']:.0f}",
                    "elements s": f"{times['elements']:.2f}",
                    "trees s": f"{times['trees']:.2f}",
                    "dialogues s": f"{times['dialogues']:.2f}",
                    "total s": f"{times['total']:.2f}",
                    "read s": f"{read:.2f}",
                    "build / read": f"{times['total'] / read:.2f}",
                    "images/s": f"{rate:.1f}",
                    "target": f">= {TARGET_IMAGES_PER_S:.0f} {'ok' if rate >= TARGET_IMAGES_PER_S else 'MISSED'}",
                }
            )
    return rows
