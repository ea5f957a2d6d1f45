"""Start-up of the ``prist`` command line (target: ``--help`` within 4x of the bare libraries).

Each row starts a fresh interpreter, as a user's shell does, and takes the fastest of
``PRIST_BENCH_STARTUP_REPEATS`` (default 7) runs, taken in turns so that a busy spell of a
shared machine hits every row alike. Baseline: an interpreter that imports typer, rich and
pydantic (what any ``--help`` needs) and exits. The test that no heavy library loads is
``tests/test_startup.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

TITLE = "prist start-up, fresh interpreter, fastest run (target: --help <= 4.0x the bare libraries)"
TARGET_RATIO = 4.0
REPEATS = int(os.environ.get("PRIST_BENCH_STARTUP_REPEATS", "7"))

CASES = {
    "python -c 'import typer, rich.console, pydantic' (baseline)": ["-c", "import typer, rich.console, pydantic"],
    "prist --help": ["-m", "prist_builder", "--help"],
    "prist build --help": ["-m", "prist_builder", "build", "--help"],
    "prist build all --help": ["-m", "prist_builder", "build", "all", "--help"],
    "prist export --help": ["-m", "prist_builder", "export", "--help"],
}


def _once(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], check=True, capture_output=True, env={**os.environ, "COLUMNS": "120"})
    return time.perf_counter() - start


def run() -> list[dict[str, str]]:
    """One row per command: fastest wall time in ms and the ratio to the baseline."""
    for args in CASES.values():  # warm the file cache
        _once(args)
    best = {name: float("inf") for name in CASES}
    for _ in range(REPEATS):
        for name, args in CASES.items():
            best[name] = min(best[name], _once(args))
    base = next(iter(best.values()))
    rows = []
    for name, seconds in best.items():
        ratio = seconds / base
        is_base = name.endswith("(baseline)")
        rows.append(
            {
                "command": name,
                "ms": f"{seconds * 1000:.0f}",
                "ratio": f"{ratio:.2f}x",
                "target": "" if is_base else f"<= {TARGET_RATIO:.1f}x",
                "met": "" if is_base else ("yes" if ratio <= TARGET_RATIO else "NO"),
            }
        )
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
