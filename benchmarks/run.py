"""Run every benchmark and print one table each: ``make bench``.

Speed targets live here, not in unit tests. Figures depend on the machine; the targets
are set for the project's reference machine (2 CPU cores).
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

BENCHMARKS = [
    "build_offline",
    "build_memory",
    "openai_throughput",
    "openai_build",
    "openai_ratelimit",
    "agreement",
    "review",
    "evaluate",
    "export",
    "miras_step",
    "offline_diversity",
    "startup",
    "scale",
]
"""Benchmark modules beside this file; each has ``TITLE`` and ``run() -> list[dict[str, str]]``."""


def main() -> None:
    """Run the benchmarks named on the command line (all by default) and print tables."""
    console = Console(width=140)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    wanted = sys.argv[1:] or BENCHMARKS
    for name in BENCHMARKS:
        if name not in wanted:
            continue
        module = importlib.import_module(name)
        rows = module.run()
        table = Table(title=module.TITLE, title_justify="left")
        for column in rows[0]:
            table.add_column(column, justify="right")
        for row in rows:
            table.add_row(*row.values())
        console.print(table)


if __name__ == "__main__":
    main()
