"""Shared helpers of the review tests: a demo run per session, copies to write into, a live server."""

from __future__ import annotations

import json
import random
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn

from prist_builder.pipeline.store import run_bounds
from prist_builder.providers.final_turn import empty_final_turn, multi_final_turn
from prist_builder.records import DialogueRecord
from prist_builder.records.dialogue import Target
from prist_builder.review.app import create_app

SERVER_START_S = 10.0
"""Longest wait for the live server to accept connections, seconds."""


def copy_run(demo: Path, dest: Path) -> Path:
    """A private copy of the demo run folder (its images stay where the demo put them)."""
    run = dest / "run"
    shutil.copytree(demo / "run", run)
    return run


def add_target_kinds(run: Path, second_focus: str | None = None, thing: str = "bicycle") -> tuple[str, str]:
    """Append one multi-target and one empty-target dialogue to ``run``'s ``dialogues.jsonl``,
    written by hand as the build writes them (the records contract of issue 22).

    The multi-target sample joins the first two grounded one-target dialogues of one image
    (their foci, element ids, regions and masks, in that order; ``second_focus`` replaces the
    second target's focus); the empty one asks that image for ``thing``. Both reuse the first
    dialogue's opening turns. Returns ``(multi sample id, empty sample id)``.
    """
    import numpy as np

    from prist_builder.annotation.masks import decode, encode

    path = run / "dialogues.jsonl"
    bounds = run_bounds(run)
    records = [DialogueRecord.model_validate_json(line, context=bounds) for line in path.read_text().splitlines()]
    by_image: dict[str, list[DialogueRecord]] = {}
    for record in records:
        if record.kind == "single" and record.mask is not None:
            by_image.setdefault(record.image_id, []).append(record)
    image_id, (first, second) = next((k, v[:2]) for k, v in by_image.items() if len(v) >= 2)
    targets = [
        Target(element_id=d.target_element_id, focus=d.focus, region_ids=d.target_region_ids, mask=d.mask)
        for d in (first, second)
    ]
    if second_focus is not None:
        targets[1].focus = second_focus
    union = np.logical_or(decode(first.mask), decode(second.mask))
    opening = [t.model_dump() for t in first.turns[:-2]]
    request, answer = multi_final_turn([t.focus for t in targets], random.Random(1))
    multi = DialogueRecord.model_validate(
        {
            **first.model_dump(exclude={"targets", "kind"}),
            "sample_id": f"{image_id}-{targets[0].element_id}+{targets[1].element_id}",
            "turns": [*opening, request.model_dump(), answer.model_dump()],
            "focus": f"both: {targets[0].focus} and {targets[1].focus}",
            "target_element_id": f"{targets[0].element_id}+{targets[1].element_id}",
            "target_region_ids": sorted({*first.target_region_ids, *second.target_region_ids}),
            "mask": encode(np.asfortranarray(union)).model_dump(),
            "kind": "multi",
            "targets": [t.model_dump() for t in targets],
        },
        context=bounds,
    )
    request, answer = empty_final_turn(thing, random.Random(2))
    empty = DialogueRecord.model_validate(
        {
            **first.model_dump(exclude={"targets", "kind", "mask", "target_region_ids"}),
            "sample_id": f"{image_id}-none",
            "turns": [*opening, request.model_dump(), answer.model_dump()],
            "focus": thing,
            "target_element_id": "none",
            "kind": "empty",
        },
        context=bounds,
    )
    with open(path, "a", encoding="utf-8") as handle:
        for record in (multi, empty):
            handle.write(json.dumps(record.model_dump(mode="json")) + "\n")
    return multi.sample_id, empty.sample_id


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def live_server(run: Path, reviewer: str = "tester", token: str | None = None) -> Iterator[str]:
    """Serve the review app of ``run`` with uvicorn in a thread; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(create_app(run, reviewer, token=token), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + SERVER_START_S
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the review server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=SERVER_START_S)
