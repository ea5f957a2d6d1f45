"""cProfile of ``prist build all --provider openai`` against the fake server in another process.

Not part of ``make bench`` (no ratio): the tool behind the profiles quoted in the
performance notes. Same inputs and server as :mod:`openai_build` (JPEG images of 1024x768,
about 200 KiB request bodies, 200 ms latency)::

    python benchmarks/openai_profile.py [CONCURRENCY=64] [IMAGES=192] [OUT=/tmp/prist-openai.prof]

prints requests/s and CPU ms per request (this process, all threads; and the step 1
reader processes), then the top entries by own time and by cumulative time (main thread
only: the readers' work does not show there).
"""

from __future__ import annotations

import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import openai_build as bench  # noqa: E402

TOP = 25


def main() -> None:
    """Profile one build (arguments: concurrency, images, output .prof path)."""
    concurrency = int(sys.argv[1]) if len(sys.argv) > 1 else 64
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 192
    out = sys.argv[3] if len(sys.argv) > 3 else "/tmp/prist-openai.prof"
    import prist_builder.cli  # noqa: F401  (imports are not profiled)

    with tempfile.TemporaryDirectory() as tmp, bench.ServerProcess(bench.LATENCY_S) as base_url:
        work = Path(tmp)
        inputs = bench.make_inputs(work / "inputs", count)
        profile = cProfile.Profile()
        cpu, readers, wall = time.process_time(), bench._children_cpu_s(), time.perf_counter()
        profile.enable()
        bench.run_cli(bench.build_args(base_url, inputs, work / "run", work / "cache", concurrency))
        profile.disable()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        readers = bench._children_cpu_s() - readers
        sent = bench._requests_sent(work / "run")
        print(
            f"requests {sent} wall {wall:.2f}s req/s {sent / wall:.1f} cpu ms/req {1000 * cpu / sent:.2f}"
            f" (+ {1000 * readers / sent:.2f} in reader processes)"
        )
        profile.dump_stats(out)
        stats = pstats.Stats(profile)
        stats.sort_stats("tottime").print_stats(TOP)
        stats.sort_stats("cumulative").print_stats(TOP)


if __name__ == "__main__":
    main()
