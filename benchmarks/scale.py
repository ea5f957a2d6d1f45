"""PRIST at scale: offline build, export in both row layouts and ``prist review`` start-up at
growing numbers of synthetic 640x480 images, wall time and peak RSS per size, extrapolated to
28,000 images.

Targets (issue 20): build peak RSS at the largest size within 1.5x of that at the smallest;
``--rows image`` parquet within 1.2x of the input images' bytes; review start-up at 8,000
images under 3 s. The baseline of each ratio is measured in the same run: the smallest
size's build for RSS, the input images for bytes.

Every phase runs in a fresh process (``prist`` in-process inside a small runner that reports
its own peak RSS, ``ru_maxrss``, and that of its worker processes). Review start-up is the
wall time of a fresh interpreter that creates the app and serves the first list page: the
first start builds the index (``RUN/.review-index.json``), the next ones read it (fastest of
:data:`REVIEW_REPEATS`).

Settings: ``PRIST_BENCH_SCALE_SIZES`` (default ``500,2000,8000``; e.g. ``100,300`` for a quick
run), ``PRIST_BENCH_SCALE_DIR`` (the folder of the runs and the generated images; default a
temporary folder for the runs and ``~/.cache/prist-bench/scale`` for the images, which are kept),
``PRIST_BENCH_SCALE_WORKERS`` (build ``--workers``, default 2). The images are generated for
the largest size, in chunks of :data:`CHUNK` (each with its own seed, made once, by parallel
processes); smaller sizes build the first N (``--limit``). Images: 640x480 PNG of noise and
shapes written at zlib level 1, about 450 KiB each (8,000 need about 3.5 GB; the per-sample
export about three times that).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZES = [int(v) for v in os.environ.get("PRIST_BENCH_SCALE_SIZES", "500,2000,8000").split(",") if v.strip()]
WORKERS = int(os.environ.get("PRIST_BENCH_SCALE_WORKERS", "2"))
PAPER_SCALE = 28_000
IMAGE_SIZE = (640, 480)
TITLE = (
    f"scale: offline build, export, review start-up at {', '.join(f'{n:,}' for n in SIZES)} images"
    f" (extrapolated to {PAPER_SCALE:,}); targets: build RSS <= 1.5x smallest, --rows image parquet"
    " <= 1.2x input, review start-up < 3 s at 8,000"
)
RSS_TARGET, BYTES_TARGET, REVIEW_TARGET_S = 1.5, 1.2, 3.0
REVIEW_REPEATS = 3
"""Starts with the stored index per size (the fastest is reported: the machine may be shared)."""

RUNNER = """
import json, resource, sys, time
mode, args = sys.argv[1], sys.argv[2:]
if mode == "prist":
    from prist_builder.cli import app
    try:
        app(args, standalone_mode=False)
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise
else:
    from starlette.testclient import TestClient
    from prist_builder.review.app import create_app
    response = TestClient(create_app(args[0], "bench"), base_url="http://127.0.0.1").get("/")
    assert response.status_code == 200, response.status_code
own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print("SCALE-RSS " + json.dumps({"self_kib": own, "children_kib": children}))
"""


def _phase(mode: str, *args: str) -> tuple[float, float, float]:
    """Run one phase in a fresh process: (wall seconds, main peak RSS MiB, worker peak RSS MiB)."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, mode, *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": "120"},
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{mode} {' '.join(map(str, args))} failed: {done.stderr[-2000:]}")
    line = next(x for x in done.stdout.splitlines()[::-1] if x.startswith("SCALE-RSS "))
    rss = json.loads(line.removeprefix("SCALE-RSS "))
    return seconds, rss["self_kib"] / 1024, rss["children_kib"] / 1024


CHUNK = 250
"""Images generated per task: each chunk has its own seed and marker, so a larger count
reuses the chunks already made and generation runs in parallel processes."""
SEED = 20


def _chunk(folder: Path, first: int) -> None:
    from prist_builder.testing.synthetic import write_synthetic

    marker = folder / f".chunk-{first:06d}-{CHUNK}"
    if marker.exists():
        return
    # PNG level 1: noise is written about 5x faster than at Pillow's default level, and smaller
    seed = SEED * 1_000_003 + first
    write_synthetic(folder, CHUNK, seed=seed, size=IMAGE_SIZE, first=first, digits=6, compress_level=1)
    marker.touch()


def _inputs(folder: Path, count: int) -> Path:
    """``count`` (rounded up to :data:`CHUNK`) synthetic images in ``folder``, generated in
    chunks by ``os.cpu_count()`` processes, each chunk once (its marker file)."""
    from concurrent.futures import ProcessPoolExecutor

    folder.mkdir(parents=True, exist_ok=True)
    firsts = list(range(0, count, CHUNK))
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        list(pool.map(_chunk, [folder] * len(firsts), firsts))
    return folder


def _cache_root() -> Path:
    """Where generated images are kept between runs without ``PRIST_BENCH_SCALE_DIR``: the
    user's cache folder (a subfolder per seed and image size; chunks as in :func:`_inputs`)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "prist-bench" / "scale"


def _bytes(paths: list[Path]) -> int:
    return sum(p.stat().st_size for p in paths)


def _measure(inputs: Path, root: Path, size: int) -> dict[str, dict[str, float]]:
    run = root / f"run-{size}"
    out: dict[str, dict[str, float]] = {}
    seconds, main, workers = _phase(
        "prist", "build", "all", "--labelme", inputs, "--run", run, "--limit", size, "--workers", WORKERS, "--no-fsync"
    )
    out["build"] = {"s": seconds, "rss": main, "workers_rss": workers}
    seconds, main, _ = _phase(
        "prist", "build", "all", "--labelme", inputs, "--run", run, "--limit", size, "--workers", WORKERS, "--no-fsync"
    )
    out["build re-run (no-op)"] = {"s": seconds, "rss": main}
    images = sorted(inputs.glob("*.png"))[:size]
    out["input images"] = {"mib": _bytes(images) / 2**20}
    for rows in ("sample", "image"):
        target = root / f"export-{size}-{rows}"
        seconds, main, _ = _phase("prist", "export", run, "--out", target, "--rows", rows)
        out[f"export --rows {rows}"] = {
            "s": seconds,
            "rss": main,
            "mib": _bytes(list(target.rglob("*.parquet"))) / 2**20,
        }
        shutil.rmtree(target)
    (run / ".review-index.json").unlink(missing_ok=True)
    seconds, main, _ = _phase("review", run)
    out["review start, new index"] = {"s": seconds, "rss": main}
    starts = [_phase("review", run)[:2] for _ in range(REVIEW_REPEATS)]
    seconds, main = min(starts)
    out["review start, stored"] = {"s": seconds, "rss": main}
    shutil.rmtree(run)
    return out


def _fmt(value: float | None, digits: int = 1) -> str:
    return "" if value is None else f"{value:,.{digits}f}"


def run() -> list[dict[str, str]]:
    """One row per phase and size, then the 28,000-image extrapolation of each phase."""
    kept = os.environ.get("PRIST_BENCH_SCALE_DIR")
    root = Path(kept) if kept else Path(tempfile.mkdtemp(prefix="prist-scale-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        name = f"images-seed{SEED}-{IMAGE_SIZE[0]}x{IMAGE_SIZE[1]}"
        inputs = _inputs((root if kept else _cache_root()) / name, max(SIZES))
        results = {size: _measure(inputs, root, size) for size in sorted(SIZES)}
    finally:
        if not kept:
            shutil.rmtree(root, ignore_errors=True)
    return table(results)


def table(results: dict[int, dict[str, dict[str, float]]]) -> list[dict[str, str]]:
    """Rows of the printed table from the measured figures (see :func:`run`)."""
    sizes = sorted(results)
    smallest = results[sizes[0]]["build"]["rss"]
    rows = []
    for size in sizes:
        figures = results[size]
        for phase, fig in figures.items():
            check = ""
            if phase == "build" and size != sizes[0]:
                ratio = fig["rss"] / smallest
                check = f"RSS {ratio:.2f}x {sizes[0]:,}'s: {'met' if ratio <= RSS_TARGET else 'NOT met'}"
            elif phase == "export --rows image":
                ratio = fig["mib"] / figures["input images"]["mib"]
                check = f"{ratio:.2f}x input: {'met' if ratio <= BYTES_TARGET else 'NOT met'}"
            elif phase == "export --rows sample":
                check = f"{fig['mib'] / figures['input images']['mib']:.2f}x input"
            elif phase.startswith("review start") and size >= 8000:
                check = f"{'met' if fig['s'] < REVIEW_TARGET_S else 'NOT met'} (< {REVIEW_TARGET_S:.0f} s)"
            rows.append(_row(f"{size:,}", phase, fig, check))
    if len(sizes) >= 2:
        a, b = sizes[-2], sizes[-1]

        def grow(x: float | None, y: float | None) -> float | None:
            # linear in the images; never below the largest size's figure (timing noise can
            # make a smaller size the slower one)
            return None if x is None or y is None else max(y, y + (y - x) / (b - a) * (PAPER_SCALE - b))

        for phase, fig in results[b].items():
            before = results[a][phase]
            guess = {k: grow(before.get(k), fig.get(k)) for k in fig}
            rows.append(_row(f"{PAPER_SCALE:,}*", phase, guess, f"* linear from {a:,}-{b:,}"))
    return rows


def _row(size: str, phase: str, fig: dict[str, float | None], check: str) -> dict[str, str]:
    return {
        "images": size,
        "phase": phase,
        "wall s": _fmt(fig.get("s")),
        "RSS MiB": _fmt(fig.get("rss"), 0),
        "workers MiB": _fmt(fig.get("workers_rss"), 0),
        "output MiB": _fmt(fig.get("mib"), 0),
        "ratio / target": check,
    }


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from run import main

    sys.argv = [sys.argv[0], "scale"]
    main()
