"""The whole ``prist build all --provider openai`` against the bare ``openai`` client.

The fake server (``prist_responder``: valid answers to the three prompts) runs in its own
process with a fixed latency, like a remote API. Inputs are synthetic Labelme images of
1280x960 pixels saved as JPEG, which the build downscales to 1024 px: each request body
is about 195 KiB, image included. The prist side is the real CLI command in this process
(fresh run folder and response cache); the baseline sends the very same bodies (recorded
from a cached replay of that build) with ``openai.AsyncOpenAI().chat.completions.create``
under a semaphore, step after step, at the same concurrency. Both figures are requests
per second over the whole run and CPU milliseconds per request (prist: this process and
its step 1 reader processes). A small build and a bare request run first, untimed, so that
neither side pays first-use costs (imports, the TLS trust store).

Each side runs :data:`REPEATS` times per concurrency, in turns, and the table shows each
side's fastest run. Environment: ``PRIST_BENCH_CONCURRENCIES`` (default ``8,32,64,256``),
``PRIST_BENCH_IMAGES_PER_SLOT`` (images per unit of concurrency, default 3),
``PRIST_BENCH_REPEATS`` (default 3).
"""

from __future__ import annotations

import asyncio
import io
import json
import multiprocessing
import os
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx2
import openai
from PIL import Image, ImageFilter

from prist_builder.testing.build_args import openai_build_args
from prist_builder.testing.synthetic import write_synthetic

TITLE = "prist build all (openai) vs the bare openai client, same bodies (fake server, 200 ms latency)"

LATENCY_S = 0.2
CONCURRENCIES = (8, 32, 64, 256)
IMAGES_PER_SLOT = 3
"""Images per unit of concurrency: each step then runs this many waves."""
MIN_IMAGES = 48
TARGET_RATIO = 0.9
REPEATS = 3
"""Runs of each side per concurrency, in turns; the table shows each side's fastest (as
``timeit`` does: on a shared 2-core machine the spread between runs is several percent)."""
WARM_UP_IMAGES = 4
"""Images (and concurrency) of the untimed warm-up run."""
WARM_UP_SEED = 11
IMAGE_SIZE = (1024, 768)
"""Source image size in pixels: within the default 1024 px --max-side, so sent as they are."""
BLUR_RADIUS = 1.2
"""Softens the synthetic noise so each JPEG is about 145 KB (195 KiB as base64)."""
JPEG_QUALITY = 90
API_KEY = "sk-bench"


def serve(latency_s: float, port_queue: Any, stop: Any, limit: dict | None = None) -> None:
    """Run a fake server with the prist responder until ``stop`` is set (a spawned process);
    with ``limit`` (``EnforcedLimit`` fields), it enforces it and sends its counters back."""
    from prist_builder.testing import EnforcedLimit, FakeOpenAIServer
    from prist_builder.testing.fake_openai.prist_model import prist_responder

    enforced = EnforcedLimit(**limit) if limit else None
    with FakeOpenAIServer(prist_responder, latency_s=latency_s, rate_limit=enforced) as server:
        port_queue.put(server.port)
        stop.wait()
        port_queue.put(server.limit_stats())


class ServerProcess:
    """A fake server in another process: ``with ServerProcess(0.2) as base_url: ...``."""

    def __init__(self, latency_s: float, limit: dict | None = None) -> None:
        context = multiprocessing.get_context("spawn")
        self._ports = context.Queue()
        self._stop = context.Event()
        self._process = context.Process(target=serve, args=(latency_s, self._ports, self._stop, limit), daemon=True)

    def __enter__(self) -> str:
        self._process.start()
        return f"http://127.0.0.1:{self._ports.get(timeout=60)}/v1"

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> dict | None:
        """Stop the server; its enforced limit's counters (None without one, or if stopped)."""
        if self._stop.is_set():
            return None
        self._stop.set()
        stats = self._ports.get(timeout=30)
        self._process.join(timeout=10)
        return stats


def make_inputs(folder: Path, count: int, seed: int = 3) -> Path:
    """``count`` Labelme files with JPEG images of :data:`IMAGE_SIZE` in ``folder``."""
    write_synthetic(folder, count, seed=seed, size=IMAGE_SIZE, compress_level=1)  # PNG only passes through
    for labelme in sorted(folder.glob("*.json")):
        doc = json.loads(labelme.read_text())
        png = folder / doc["imagePath"]
        with Image.open(png) as image:
            soft = image.convert("RGB").filter(ImageFilter.GaussianBlur(BLUR_RADIUS))
        jpeg = png.with_suffix(".jpg")
        buffer = io.BytesIO()
        soft.save(buffer, format="JPEG", quality=JPEG_QUALITY)
        jpeg.write_bytes(buffer.getvalue())
        png.unlink()
        doc["imagePath"] = jpeg.name
        labelme.write_text(json.dumps(doc))
    return folder


def build_args(base_url: str, inputs: Path, run: Path, cache: Path, concurrency: int, *extra: str) -> list[str]:
    """``prist build all`` arguments for the openai provider against ``base_url``."""
    options = ("--cache-dir", cache, "--concurrency", concurrency, "--no-fsync", *extra)
    return openai_build_args(base_url, inputs, run, *options, api_key=API_KEY)


def run_cli(args: list[str]) -> None:
    """Run one ``prist`` command in this process (raises on a non-zero exit). The CLI is
    imported before any timing starts (:func:`run`), as the bare client is."""
    from prist_builder.cli import app

    try:
        app(args, standalone_mode=False)
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise RuntimeError(f"prist {' '.join(args[:2])} exited with {exc.code}") from None


def _requests_sent(run: Path) -> int:
    lines = (run / "requests.jsonl").read_text().splitlines()
    return sum(json.loads(line).get("attempts", 0) for line in lines)


def _children_cpu_s() -> float:
    """CPU seconds of this process's ended (waited-for) children: the build's reader
    processes, joined when step 1 ends (the server process ends only after all runs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure_prist(
    base_url: str, inputs: Path, work: Path, concurrency: int, attempt: int = 0
) -> tuple[float, float, int]:
    """``(requests/s, CPU ms per request, requests)`` of one whole build (a fresh run folder
    and response cache per ``attempt``); the CPU counts this process and the reader
    processes step 1 starts."""
    run, cache = work / f"run-{concurrency}-{attempt}", work / f"cache-{concurrency}-{attempt}"
    cpu, wall = time.process_time() + _children_cpu_s(), time.perf_counter()
    run_cli(build_args(base_url, inputs, run, cache, concurrency))
    wall, cpu = time.perf_counter() - wall, time.process_time() + _children_cpu_s() - cpu
    sent = _requests_sent(run)
    return sent / wall, 1000 * cpu / sent, sent


def warm_up(base_url: str, work: Path) -> None:
    """One small build and one bare request before anything is timed, so that neither side
    pays for first-use costs (lazy imports, the TLS trust store) in its figures."""
    inputs = make_inputs(work / "warm-inputs", WARM_UP_IMAGES, seed=WARM_UP_SEED)
    measure_prist(base_url, inputs, work, WARM_UP_IMAGES)
    measure_bare(base_url, recorded_bodies(base_url, inputs, work, WARM_UP_IMAGES), WARM_UP_IMAGES)


def recorded_bodies(base_url: str, inputs: Path, work: Path, concurrency: int) -> list[list[dict]]:
    """The request bodies of the build of ``measure_prist``, per step, replayed from its cache."""
    from prist_builder.llm.asking import OnlineAsker
    from prist_builder.pipeline.build import build
    from prist_builder.pipeline.manifest import BuildConfig, read_manifest
    from prist_builder.providers.openai.provider import OpenAIProvider
    from prist_builder.records.steps import STEPS

    run = work / f"run-{concurrency}-0"
    config = BuildConfig.from_dict(read_manifest(run)["config"])
    provider = OpenAIProvider(seed=config.seed, **{**config.provider_options, "api_key": API_KEY})
    steps: dict[str, list[dict]] = {}

    class Recorder(OnlineAsker):
        async def ask(
            self, body: dict, extra: dict, estimated_tokens: int, key: str | None = None
        ) -> tuple[dict, bool]:
            steps.setdefault(body["response_format"]["json_schema"]["name"], []).append(body)
            return await super().ask(body, extra, estimated_tokens, key=key)

    provider.client.asker = Recorder(provider.client.transport)
    asyncio.run(build(work / f"replay-{concurrency}", config, STEPS, provider=provider, fsync=False))
    if sum(map(len, steps.values())) != _requests_sent(run):
        raise RuntimeError("the replay did not send the same requests as the build")
    return list(steps.values())


async def _send_bare(base_url: str, bodies: list[list[dict]], concurrency: int) -> None:
    gate = asyncio.Semaphore(concurrency)
    limits = httpx2.Limits(max_connections=concurrency + 8, max_keepalive_connections=concurrency + 8)
    client = openai.AsyncOpenAI(
        base_url=base_url, api_key=API_KEY, max_retries=0, http_client=openai.DefaultAsyncHttpxClient(limits=limits)
    )

    async def one(body: dict) -> None:
        async with gate:
            await client.chat.completions.create(**body)

    try:
        for step in bodies:  # steps one after the other, like the build
            await asyncio.gather(*(one(body) for body in step))
    finally:
        await client.close()


def measure_bare(base_url: str, bodies: list[list[dict]], concurrency: int) -> tuple[float, float]:
    """``(requests/s, CPU ms per request)`` of the bare client sending ``bodies``."""
    count = sum(len(step) for step in bodies)
    cpu, wall = time.process_time(), time.perf_counter()
    asyncio.run(_send_bare(base_url, bodies, concurrency))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return count / wall, 1000 * cpu / count


def _concurrencies() -> tuple[int, ...]:
    given = os.environ.get("PRIST_BENCH_CONCURRENCIES")
    return tuple(int(v) for v in given.split(",")) if given else CONCURRENCIES


def run() -> list[dict[str, str]]:
    """One row per concurrency: requests/s and CPU ms/request of both sides (each side's
    fastest of :data:`REPEATS` runs), their ratio."""
    per_slot = int(os.environ.get("PRIST_BENCH_IMAGES_PER_SLOT", IMAGES_PER_SLOT))
    repeats = max(1, int(os.environ.get("PRIST_BENCH_REPEATS", REPEATS)))
    import prist_builder.cli  # noqa: F401  (imports are not part of either side's time)

    rows = []
    with tempfile.TemporaryDirectory(prefix="prist-bench-") as tmp, ServerProcess(LATENCY_S) as base_url:
        work = Path(tmp)
        warm_up(base_url, work)
        for concurrency in _concurrencies():
            count = max(MIN_IMAGES, per_slot * concurrency)
            inputs = make_inputs(work / f"inputs-{concurrency}", count)
            prists, bares = [], []
            for attempt in range(repeats):  # in turns, so a slow spell of the machine hits both
                prists.append(measure_prist(base_url, inputs, work, concurrency, attempt))
                if not bares:
                    bodies = recorded_bodies(base_url, inputs, work, concurrency)
                bares.append(measure_bare(base_url, bodies, concurrency))
            (prist, prist_cpu, sent), (bare, bare_cpu) = max(prists), max(bares)
            size = sum(len(json.dumps(b)) for b in bodies[0]) / max(1, len(bodies[0]))
            ratio = prist / bare
            rows.append(
                {
                    "concurrency": str(concurrency),
                    "images": str(count),
                    "requests": str(sent),
                    "runs": str(repeats),
                    "body KiB": f"{size / 1024:.0f}",
                    "bare req/s": f"{bare:.1f}",
                    "prist req/s": f"{prist:.1f}",
                    "ratio": f"{ratio:.3f}",
                    "bare CPU ms/req": f"{bare_cpu:.2f}",
                    "prist CPU ms/req": f"{prist_cpu:.2f}",
                    "target": f">= {TARGET_RATIO}" + (" ok" if ratio >= TARGET_RATIO else " MISSED"),
                }
            )
    return rows
