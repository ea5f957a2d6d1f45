"""Kill -9 at random points, resume, and get exactly the records of an uninterrupted run."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import check_run, run_cli

from prist_builder.pipeline.store import RunStore
from prist_builder.records import Reject
from prist_builder.testing.synthetic import write_synthetic

FILES = ("elements.jsonl", "trees.jsonl", "dialogues.jsonl", "rejects.jsonl")
POLL_S = 0.001


def _snapshot(run: Path) -> dict[str, bytes]:
    return {name: (run / name).read_bytes() if (run / name).exists() else b"" for name in FILES}


def _journal_lines(run: Path, step: str) -> int:
    path = run / ".journal" / f"{step}.jsonl"
    return path.read_bytes().count(b"\n") if path.exists() else 0


def _start(inputs: Path, run: Path) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "prist_builder",
        "build",
        "all",
        "--labelme",
        str(inputs),
        "--run",
        str(run),
        "--seed",
        "5",
    ]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("kill_inputs")
    write_synthetic(folder, 60, seed=11)
    (folder / "zz_broken.json").write_text("{", encoding="utf-8")  # rejects must survive kills too
    return folder


def test_sigkill_at_random_points_then_resume(inputs: Path, tmp_path: Path) -> None:
    reference = tmp_path / "reference"
    assert run_cli("build", "all", "--labelme", inputs, "--run", reference, "--seed", "5").exit_code == 0
    expected = _snapshot(reference)

    run = tmp_path / "killed"
    rng = random.Random(2024)
    kills = 0
    plan = [("elements", rng.randint(1, 15)) for _ in range(3)] + [("trees", rng.randint(1, 20)) for _ in range(2)]
    plan += [("dialogues", rng.randint(1, 20)), ("time", rng.uniform(0.3, 2.5)), ("time", rng.uniform(0.3, 2.5))]
    for kind, amount in plan:
        process = _start(inputs, run)
        started = time.monotonic()
        target = _journal_lines(run, kind) + amount if kind != "time" else None
        while process.poll() is None:
            if kind == "time" and time.monotonic() - started >= amount:
                break
            if kind != "time" and _journal_lines(run, kind) >= target:
                break
            time.sleep(POLL_S)
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            kills += 1
        process.wait()
    assert kills >= 5, f"only {kills} kills landed while the build was running"

    final = _start(inputs, run)
    assert final.wait(timeout=120) == 0
    assert _snapshot(run) == expected  # byte for byte: none lost, none duplicated, no torn line
    check_run(run)

    before = _snapshot(run)
    journals = {s: _journal_lines(run, s) for s in ("elements", "trees", "dialogues")}
    result = run_cli("build", "all", "--labelme", inputs, "--run", run, "--seed", "5")
    assert result.exit_code == 0
    assert _snapshot(run) == before
    assert {s: _journal_lines(run, s) for s in journals} == journals
    summary = [line.split("│") for line in result.output.splitlines() if line.startswith("│")]
    built = {cells[1].strip(): int(cells[2]) for cells in summary}
    assert built == {"elements": 0, "trees": 0, "dialogues": 0}  # a second run does no work


def test_torn_tails_are_cut_on_open(tmp_path: Path) -> None:
    """A half-written record or journal line (as a crash mid-write leaves) is dropped, not kept."""
    reject = Reject(input_id="a", step="elements", reason="x.json: bad")
    with RunStore(tmp_path, fsync=False) as store:
        store.commit("elements", "a", [], [reject])
    clean = _snapshot(tmp_path)
    with open(tmp_path / "rejects.jsonl", "ab") as handle:
        handle.write(b'{"input_id": "b", "step": "elem')  # torn record, never journalled
    with open(tmp_path / "elements.jsonl", "ab") as handle:
        handle.write(b'{"image_id": "c"}\n')  # whole record whose journal line never came
    with open(tmp_path / ".journal" / "elements.jsonl", "ab") as handle:
        handle.write(b'{"key": "c", "reco')  # torn journal line
    with RunStore(tmp_path, fsync=False) as store:
        assert store.is_done("elements", "a") and not store.is_done("elements", "c")
        assert _snapshot(tmp_path) == clean
        with pytest.raises(ValueError, match="already finished"):
            store.commit("elements", "a", [], [reject])


def test_a_second_writer_is_refused(tmp_path: Path) -> None:
    from prist_builder.pipeline.store import RunLockedError

    with RunStore(tmp_path, fsync=False):
        with pytest.raises(RunLockedError, match="another prist process"):
            RunStore(tmp_path, fsync=False)


def test_a_journal_ahead_of_its_data_is_cut_back(tmp_path: Path) -> None:
    """After a power cut the journal may name data that never reached the disk, or hold zeros."""
    reject = Reject(input_id="a", step="elements", reason="x.json: bad")
    with RunStore(tmp_path, fsync=False) as store:
        store.commit("elements", "a", [], [reject])
        store.commit("elements", "b", [], [reject.model_copy(update={"input_id": "b"})])
    size_after_a = len((tmp_path / "rejects.jsonl").read_bytes()) // 2
    os.truncate(tmp_path / "rejects.jsonl", size_after_a)  # b's data lost, its journal line kept
    with open(tmp_path / ".journal" / "elements.jsonl", "ab") as handle:
        handle.write(b"\x00\x00\x00\x00\n")  # and garbage after it
    with RunStore(tmp_path, fsync=False) as store:
        assert store.is_done("elements", "a") and not store.is_done("elements", "b")
        assert (tmp_path / ".journal" / "elements.jsonl").read_bytes().count(b"\n") == 1
        assert len(list(store.iter_raw("rejects.jsonl"))) == 1
