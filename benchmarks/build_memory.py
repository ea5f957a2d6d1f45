"""Peak memory of ``prist build all`` (offline provider) as the run grows.

Synthetic 640x480 Labelme inputs (:mod:`prist_builder.testing.synthetic`) at two sizes;
each build runs in a fresh process with ``--workers 1`` (so the peak RSS of that one
process is the build's main process) and ``--no-fsync``. Target: the peak at the large size
within 1.5x of the peak at the small one (memory does not grow with the run). The
baseline is the small size, measured in the same run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from prist_builder.testing.synthetic import write_synthetic

TITLE = "prist build all --provider offline: main-process peak RSS vs run size"
SIZES = (500, 2000)
"""Images per build; PRIST_BENCH_MEMORY_SIZES=500,8000 measures others."""
TARGET_RATIO = 1.5

_PEAK = (
    "import resource, runpy, sys; sys.argv = ['prist'] + sys.argv[1:]\n"
    "try:\n    runpy.run_module('prist_builder', run_name='__main__')\n"
    "finally:\n    print('PEAK_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
)


def measure(count: int, root: Path) -> tuple[float, float]:
    """(peak RSS in MiB, wall seconds) of an offline ``build all`` over ``count`` synthetic images."""
    inputs = root / f"in{count}"
    write_synthetic(inputs, count, size=(640, 480))
    args = ["build", "all", "--labelme", str(inputs), "--run", str(root / f"run{count}"), "--workers", "1"]
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _PEAK, *args, "--no-fsync"], capture_output=True, text=True, env=os.environ.copy()
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"build of {count} images failed: {done.stderr[-500:]}")
    peak_kb = int(done.stderr.rsplit("PEAK_KB", 1)[1].split()[0])
    return peak_kb / 1024, seconds


def run() -> list[dict[str, str]]:
    """One row per size: images, peak RSS, KiB per image over the smallest, ratio, target."""
    sizes = tuple(int(s) for s in os.environ.get("PRIST_BENCH_MEMORY_SIZES", "").split(",") if s) or SIZES
    rows: list[dict[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        base = None
        for count in sizes:
            peak, seconds = measure(count, Path(tmp))
            base = base or peak
            rows.append(
                {
                    "images": f"{count:,}",
                    "peak RSS MiB": f"{peak:.0f}",
                    "wall s": f"{seconds:.1f}",
                    "ratio to smallest": f"{peak / base:.2f}",
                    "target": f"<= {TARGET_RATIO}",
                }
            )
    return rows
