"""Reliability of the run folder and its processes (issue: reliability 1-3): no orphan
workers after SIGKILL, every contract file exists, a dry run touches nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import run_cli, run_prist

from prist_builder.testing.synthetic import write_synthetic

CONTRACT_FILES = ("elements.jsonl", "trees.jsonl", "dialogues.jsonl", "rejects.jsonl", "manifest.json")
KILL_GRACE_S = 2.0
"""Workers must be gone this many seconds after their parent was killed (the issue's bound)."""


def _children(pid: int) -> set[int]:
    """Pids whose parent is ``pid`` (read from /proc)."""
    out = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.add(int(entry.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to list child processes")
def test_sigkill_of_the_build_leaves_no_worker_alive(tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    write_synthetic(inputs, 60)
    args = [
        sys.executable,
        "-m",
        "prist_builder",
        "build",
        "all",
        "--labelme",
        str(inputs),
        "--run",
        str(tmp_path / "run"),
        "--workers",
        "2",
        "--no-fsync",
    ]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        workers: set[int] = set()
        while time.monotonic() < deadline and process.poll() is None:
            workers = _children(process.pid)
            if len(workers) >= 2:
                break
            time.sleep(0.01)
        assert process.poll() is None and len(workers) >= 2, "the pool never started"
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        gone_by = time.monotonic() + KILL_GRACE_S
        while time.monotonic() < gone_by and any(_alive(p) for p in workers):
            time.sleep(0.05)
        assert not [p for p in workers if _alive(p)], "worker processes outlived their killed parent"
    finally:
        if process.poll() is None:
            process.kill()
        for pid in _children(process.pid):
            os.kill(pid, signal.SIGKILL)


def test_every_contract_file_exists_even_when_empty(tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    write_synthetic(inputs, 2)
    run = tmp_path / "run"
    assert run_cli("build", "all", "--labelme", inputs, "--run", run).exit_code == 0
    for name in CONTRACT_FILES:
        assert (run / name).is_file(), name
    assert (run / "rejects.jsonl").read_bytes() == b""  # nothing rejected, the file is still there
    step_only = tmp_path / "step"
    assert run_cli("build", "elements", "--labelme", inputs, "--run", step_only).exit_code == 0
    assert (step_only / "dialogues.jsonl").read_bytes() == b""


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()
    }


def test_dry_run_on_a_busy_run_reads_only(tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    write_synthetic(inputs, 3)
    run = tmp_path / "run"
    assert run_cli("build", "elements", "--labelme", inputs, "--run", run, "--limit", 1).exit_code == 0
    with open(run / "elements.jsonl", "ab") as handle:  # a torn tail that a writer's recovery would cut
        handle.write(b'{"image_id": "half')
    before = _snapshot(run)
    args = (
        "build",
        "all",
        "--provider",
        "openai",
        "--labelme",
        inputs,
        "--run",
        run,
        "--base-url",
        "http://127.0.0.1:9/v1",
        "--dry-run",
    )
    with _held_lock(run):
        busy = run_prist(*args, env={"OPENAI_API_KEY": "sk-test"})
    assert busy.returncode == 0, busy.stderr
    assert "Traceback" not in busy.stdout + busy.stderr
    assert "being built by another prist process" in busy.stdout
    assert "dry run: 2 image(s)" in busy.stdout  # the finished input costs nothing more
    assert _snapshot(run) == before  # no lock file rewritten, no repair, nothing new
    fresh = tmp_path / "never"
    assert run_prist(*args[:7], fresh, *args[8:], env={"OPENAI_API_KEY": "sk-test"}).returncode == 0
    assert not fresh.exists()


class _held_lock:  # noqa: N801 (a context manager named for what it does)
    """Hold a run's write lock from another process, as a running build does."""

    def __init__(self, run: Path) -> None:
        self.run = run
        self.process: subprocess.Popen[str] | None = None

    def __enter__(self) -> _held_lock:
        code = (
            "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR); fcntl.flock(fd, fcntl.LOCK_EX);"
            " print('locked', flush=True); sys.stdin.read()"
        )
        self.process = subprocess.Popen(
            [sys.executable, "-c", code, str(self.run / ".lock")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None and self.process.stdout.readline().strip() == "locked"
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.process is not None
        self.process.communicate(input="", timeout=10)
