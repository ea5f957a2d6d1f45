"""Throughput of prist's LLM transport against the bare ``openai`` client.

The fake server answers every chat completion after a fixed latency ``L`` (no faults) and
runs in its own process, like a remote API. Both sides send the same bodies (a prompt the
size of a step 1 request) at the same concurrency ``c``: the baseline is
``openai.AsyncOpenAI().chat.completions.create`` under a semaphore, measured in the same
run; prist's :class:`Transport` adds pacing, retries and accounting (cache off). The ratio
is what those cost. The ideal ``c / L`` is shown for reference only: on 2 cores the
client's own CPU per request bounds both sides, so it is not a target.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time

import httpx2
import openai

from prist_builder.llm.transport import Transport

TITLE = "LLM transport vs the bare openai client (fake server, 200 ms latency)"

LATENCY_S = 0.2
CONCURRENCIES = (8, 32, 64)
ROUNDS = 30
"""Requests per run: this many times the concurrency, after one warm-up round. Enough for
the steady state: with few rounds, the first waves (every request sent at once, every
answer back at once) dominate the figure."""
TARGET_RATIO = 0.9
"""prist transport requests/s over the bare client's, at every concurrency."""
PROMPT_CHARS = 2000


def _serve(latency_s: float, port_queue: multiprocessing.Queue[int], stop: multiprocessing.Event) -> None:
    from prist_builder.testing import FakeOpenAIServer

    with FakeOpenAIServer(latency_s=latency_s) as server:
        port_queue.put(server.port)
        stop.wait()


def _body(index: int) -> dict:
    return {
        "model": "gpt-4o-2024-08-06",
        "messages": [{"role": "user", "content": f"{index} {'x' * PROMPT_CHARS}"}],
        "max_tokens": 50,
    }


async def _timed(one, concurrency: int) -> float:
    """Requests/s of ``concurrency * ROUNDS`` calls of ``one`` after a warm-up round."""
    await asyncio.gather(*(one(-i - 1) for i in range(concurrency)))  # warm the connection pool
    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(concurrency * ROUNDS)))
    return concurrency * ROUNDS / (time.perf_counter() - started)


async def _measure_prist(base_url: str, concurrency: int) -> float:
    transport = Transport(base_url, "sk-bench", concurrency=concurrency)

    async def one(index: int) -> None:
        await transport.chat(_body(index), {}, PROMPT_CHARS // 4)

    try:
        return await _timed(one, concurrency)
    finally:
        await transport.aclose()


async def _measure_bare(base_url: str, concurrency: int) -> float:
    gate = asyncio.Semaphore(concurrency)
    limits = httpx2.Limits(max_connections=concurrency + 8, max_keepalive_connections=concurrency + 8)
    client = openai.AsyncOpenAI(
        base_url=base_url, api_key="sk-bench", max_retries=0, http_client=openai.DefaultAsyncHttpxClient(limits=limits)
    )

    async def one(index: int) -> None:
        async with gate:
            await client.chat.completions.create(**_body(index))

    try:
        return await _timed(one, concurrency)
    finally:
        await client.close()


def run() -> list[dict[str, str]]:
    """One row per concurrency: bare client and prist requests/s, their ratio."""
    context = multiprocessing.get_context("spawn")
    ports: multiprocessing.Queue[int] = context.Queue()
    stop = context.Event()
    server = context.Process(target=_serve, args=(LATENCY_S, ports, stop), daemon=True)
    server.start()
    try:
        base_url = f"http://127.0.0.1:{ports.get(timeout=60)}/v1"
        rows = []
        for concurrency in CONCURRENCIES:
            bare = asyncio.run(_measure_bare(base_url, concurrency))
            prist = asyncio.run(_measure_prist(base_url, concurrency))
            ratio = prist / bare
            rows.append(
                {
                    "concurrency": str(concurrency),
                    "bare openai req/s": f"{bare:.1f}",
                    "prist transport req/s": f"{prist:.1f}",
                    "ratio": f"{ratio:.3f}",
                    "ideal c/L (reference)": f"{concurrency / LATENCY_S:.0f}",
                    "target": f">= {TARGET_RATIO}" + (" ok" if ratio >= TARGET_RATIO else " MISSED"),
                }
            )
        return rows
    finally:
        stop.set()
        server.join(timeout=10)
