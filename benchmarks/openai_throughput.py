"""Throughput of the ``openai`` provider's HTTP path against the fake server.

The fake server answers every chat completion after a fixed latency ``L`` (no faults)
and runs in its own process, like a remote API. At concurrency ``c`` the best possible
rate is ``c / L`` requests per second; the table gives the achieved fraction of it.
Requests go through :class:`Transport` (limiter, retries, accounting; cache off) with a
prompt the size of a step 1 request, as a build sends them.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time

from prist_builder.llm.transport import Transport

LATENCY_S = 0.2
CONCURRENCIES = (8, 32, 64)
ROUNDS = 30
"""Requests per run: this many times the concurrency, after one warm-up round. Enough for
the steady state: with few rounds, the first waves (every request sent at once, every
answer back at once) dominate the figure."""
TARGET_FRACTION_AT_64 = 0.95
PROMPT_CHARS = 2000


def _serve(latency_s: float, port_queue: "multiprocessing.Queue[int]", stop: "multiprocessing.Event") -> None:
    from prist_builder.testing import FakeOpenAIServer

    with FakeOpenAIServer(latency_s=latency_s) as server:
        port_queue.put(server.port)
        stop.wait()


async def _measure(base_url: str, concurrency: int) -> float:
    transport = Transport(base_url, "sk-bench", concurrency=concurrency)
    text = "x" * PROMPT_CHARS

    async def one(index: int) -> None:
        body = {"model": "gpt-4o-2024-08-06", "messages": [{"role": "user", "content": f"{index} {text}"}],
                "max_tokens": 50}
        await transport.chat(body, {}, PROMPT_CHARS // 4)

    await asyncio.gather(*(one(-i - 1) for i in range(concurrency)))  # warm the connection pool
    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(concurrency * ROUNDS)))
    elapsed = time.perf_counter() - started
    await transport.aclose()
    return concurrency * ROUNDS / elapsed


def run() -> list[dict[str, str]]:
    """One row per concurrency: achieved requests/s, ideal c/L, fraction."""
    context = multiprocessing.get_context("spawn")
    ports: multiprocessing.Queue[int] = context.Queue()
    stop = context.Event()
    server = context.Process(target=_serve, args=(LATENCY_S, ports, stop), daemon=True)
    server.start()
    try:
        base_url = f"http://127.0.0.1:{ports.get(timeout=60)}/v1"
        rows = []
        for concurrency in CONCURRENCIES:
            rate = asyncio.run(_measure(base_url, concurrency))
            ideal = concurrency / LATENCY_S
            fraction = rate / ideal
            target = f">= {TARGET_FRACTION_AT_64}" + (" ok" if fraction >= TARGET_FRACTION_AT_64 else " MISSED") if concurrency == 64 else ""
            rows.append({"concurrency": str(concurrency), "requests/s": f"{rate:.1f}", "ideal c/L": f"{ideal:.0f}",
                         "fraction": f"{fraction:.3f}", "target": target})
        return rows
    finally:
        stop.set()
        server.join(timeout=10)
