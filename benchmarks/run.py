"""Run every benchmark and print one table each: ``make bench``.

Speed targets live here, not in unit tests. Figures depend on the machine; the targets
are set for the project's reference machine (2 CPU cores).
"""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))

import build_offline  # noqa: E402
import export  # noqa: E402
import openai_throughput  # noqa: E402

BENCHMARKS = {
    "prist build all --provider offline": build_offline,
    f"prist export (hf) of {export.SAMPLES} samples, 1024x1024 images": export,
    f"openai transport vs fake server (latency {openai_throughput.LATENCY_S * 1000:.0f} ms)": openai_throughput,
}


def main() -> None:
    """Run the benchmarks named on the command line (all by default) and print tables."""
    console = Console(width=140)
    wanted = sys.argv[1:] or list(BENCHMARKS)
    for title, module in BENCHMARKS.items():
        if not any(w in title or w == module.__name__ for w in wanted):
            continue
        rows = module.run()
        table = Table(title=title, title_justify="left")
        for column in rows[0]:
            table.add_column(column, justify="right")
        for row in rows:
            table.add_row(*row.values())
        console.print(table)


if __name__ == "__main__":
    main()
