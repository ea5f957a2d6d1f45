"""Latency of ``prist review`` pages on a run of 10,000 samples (targets: list < 300 ms, sample < 500 ms).

The run: a small offline build of synthetic images, whose records are copied under new
image ids until the run holds ``SAMPLES`` dialogues (a third of them get a review decision).
The app is served by uvicorn on 127.0.0.1 and fetched with httpx, as a browser would
(HTML only; photos and mask layers are separate requests, timed in their own rows).
Baseline: a static file through the same server (the framework's floor).
"""

from __future__ import annotations

import json
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx

from prist_builder import appendlog
from prist_builder.pipeline.store import MANIFEST_FILE
from prist_builder.records.curation import REVIEWS_FILE, ReviewDecision
from prist_builder.review.index import RunIndex

SAMPLES = 10_000
TITLE = f"prist review pages, {SAMPLES:,} samples (targets: list < 300 ms, sample < 500 ms)"
SEED_IMAGES = 40
"""Synthetic images really built; their records are replicated to reach ``SAMPLES``."""
ROUNDS = 15
"""Requests per timed row (median reported)."""
LIST_TARGET_MS = 300.0
SAMPLE_TARGET_MS = 500.0
REVIEWED_FRACTION = 3
"""Every n-th sample gets a decision, so status filters have work to do."""


def _seed_run(root: Path) -> Path:
    import asyncio

    from prist_builder.pipeline.build import build
    from prist_builder.pipeline.manifest import BuildConfig
    from prist_builder.testing.synthetic import write_synthetic

    images = root / "images"
    write_synthetic(images, SEED_IMAGES, seed=5)
    run = root / "seed"
    asyncio.run(build(run, BuildConfig(labelme=str(images), workers=1), ("elements", "trees", "dialogues")))
    return run


def make_run(root: Path) -> Path:
    """A run folder of exactly :data:`SAMPLES` dialogues (replicated records, real images)."""
    seed = _seed_run(root)
    run = root / "run"
    run.mkdir()
    elements = [json.loads(x) for x in (seed / "elements.jsonl").read_text(encoding="utf-8").splitlines()]
    trees = {json.loads(x)["image_id"]: x for x in (seed / "trees.jsonl").read_text(encoding="utf-8").splitlines()}
    dialogues: dict[str, list[dict]] = {}
    for line in (seed / "dialogues.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        dialogues.setdefault(record["image_id"], []).append(record)
    out = {"elements": [], "trees": [], "dialogues": []}
    written, copy = 0, 0
    while written < SAMPLES:
        for element in elements:
            image_id = element["image_id"]
            new_id = f"{image_id}_c{copy:04d}"
            out["elements"].append(
                json.dumps({**element, "image_id": new_id, "image": {**element["image"], "image_id": new_id}})
            )
            out["trees"].append(json.dumps({**json.loads(trees[image_id]), "image_id": new_id}))
            for dialogue in dialogues.get(image_id, []):
                if written == SAMPLES:
                    break
                element_id = dialogue["target_element_id"]
                out["dialogues"].append(
                    json.dumps({**dialogue, "image_id": new_id, "sample_id": f"{new_id}-{element_id}"})
                )
                written += 1
        copy += 1
    for name, lines in out.items():
        (run / f"{name}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (run / MANIFEST_FILE).write_text((seed / MANIFEST_FILE).read_text(encoding="utf-8"), encoding="utf-8")
    ids = [json.loads(x)["sample_id"] for x in out["dialogues"][::REVIEWED_FRACTION]]
    appendlog.append(
        run / REVIEWS_FILE,
        [ReviewDecision(sample_id=i, reviewer="bench", time="2026-01-01T00:00:00Z", action="accept") for i in ids],
    )
    return run


def _time(client: httpx.Client, url: str) -> float:
    """Median milliseconds of ``ROUNDS`` GETs of ``url`` (after one warm-up)."""
    assert client.get(url).status_code == 200, url
    times = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        answer = client.get(url)
        times.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200, url
    return statistics.median(times)


def _time_each(client: httpx.Client, urls: list[str], method: str = "GET", data: dict | None = None) -> float:
    """Median milliseconds of one request to each of ``urls`` (each answer uncached on the server)."""
    times = []
    for url in urls:
        started = time.perf_counter()
        answer = client.request(method, url, data=data)
        times.append((time.perf_counter() - started) * 1000)
        assert answer.status_code in (200, 303), (url, answer.status_code)
    return statistics.median(times)


def run() -> list[dict[str, str]]:
    """Build the run, serve it, time the pages; one row per page kind."""
    import uvicorn

    from prist_builder.review.app import create_app
    from prist_builder.review.index import Filters

    with tempfile.TemporaryDirectory() as tmp:
        run_dir = make_run(Path(tmp))
        started = time.perf_counter()
        index = RunIndex.load(run_dir)
        load_s = time.perf_counter() - started
        assert len(index.samples) == SAMPLES
        middle = index.rows[SAMPLES // 2].sample_id
        last = index.rows[-1].sample_id
        pages = len(index.select(Filters())) // Filters().size
        web = create_app(run_dir, "bench", index=index)
        config = uvicorn.Config(web, host="127.0.0.1", port=0, log_level="warning")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        base = f"http://127.0.0.1:{port}"
        try:
            with httpx.Client(base_url=base) as client:
                floor = _time(client, "/static/style.css")
                cases = [
                    ("list, first page", "/", LIST_TARGET_MS),
                    (f"list, last page ({pages})", f"/?page={pages}", LIST_TARGET_MS),
                    ("list, focus text + status filter", "/?q=ball&status=unreviewed", LIST_TARGET_MS),
                    ("list, 500 rows a page", "/?size=500&page=3", LIST_TARGET_MS),
                    ("list, target kind filter", "/?kind=single&status=unreviewed", LIST_TARGET_MS),
                    ("sample page (middle)", f"/sample/{middle}", SAMPLE_TARGET_MS),
                    ("sample page, filtered (last)", f"/sample/{last}?q=ball&granularity=medium", SAMPLE_TARGET_MS),
                    ("photo (cached)", f"/image/{index.rows[0].image_id}", None),
                    ("mask layer (cached)", f"/mask/{middle}", None),
                ]
                rows = []
                for name, url, target in cases:
                    ms = _time(client, url)
                    rows.append(_row(name, ms, floor, target))
                fresh = [r.sample_id for r in index.rows[1 : SAMPLES : SAMPLES // ROUNDS]][:ROUNDS]
                images = [f"/image/{i}" for i in list(index.images)[1 : ROUNDS + 1]]
                reviewed = len(index.samples) // REVIEWED_FRACTION
                for name, ms in (
                    ("mask layer, first request", _time_each(client, [f"/mask/{i}" for i in fresh])),
                    ("photo, first request", _time_each(client, images)),
                    (
                        f"accept (append + refold {reviewed:,}+ decisions)",
                        _time_each(
                            client, [f"/sample/{i}/accept" for i in fresh], "POST", {"csrf": web.state.review.csrf}
                        ),
                    ),
                ):
                    rows.append(_row(name, ms, floor, None))
                rows.append(
                    {
                        "request": f"start-up: join {SAMPLES:,} samples",
                        "median ms": f"{load_s * 1000:.0f}",
                        "x static floor": "",
                        "target ms": "",
                    }
                )
                rows.append(
                    {
                        "request": "static file (baseline)",
                        "median ms": f"{floor:.1f}",
                        "x static floor": "1.0",
                        "target ms": "",
                    }
                )
        finally:
            server.should_exit = True
            thread.join(timeout=10)
        return rows


def _row(name: str, ms: float, floor: float, target: float | None) -> dict[str, str]:
    verdict = "" if target is None else f"< {target:.0f} {'ok' if ms < target else 'MISSED'}"
    return {"request": name, "median ms": f"{ms:.1f}", "x static floor": f"{ms / floor:.1f}", "target ms": verdict}


if __name__ == "__main__":
    for row in run():
        print(row)
