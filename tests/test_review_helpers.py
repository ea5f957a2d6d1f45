"""Shared helpers of the review tests: a demo run per session, copies to write into, a live server."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn

from prist_builder.review.app import create_app

SERVER_START_S = 10.0
"""Longest wait for the live server to accept connections, seconds."""


def copy_run(demo: Path, dest: Path) -> Path:
    """A private copy of the demo run folder (its images stay where the demo put them)."""
    run = dest / "run"
    shutil.copytree(demo / "run", run)
    return run


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
