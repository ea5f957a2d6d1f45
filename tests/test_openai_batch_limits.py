"""The Batch API within OpenAI's limits (issue 20): a step's missing requests split into
batches under --batch-max-bytes / --batch-max-requests, the enqueued-token limit kept, a
batch failing with ``token_limit_exceeded`` sent again once the others drain (never a
failed round), and a kill during a multi-batch step resumed by polling the recorded batches."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import check_run, read_jsonl, run_cli
from openai_helpers import openai_args, tagged_inputs

from prist_builder.testing import FakeOpenAIServer
from prist_builder.testing.fake_openai import FakeBatchLimits
from prist_builder.testing.fake_openai.prist_model import prist_responder

pytestmark = pytest.mark.usefixtures("private_cache")

LIMITS = FakeBatchLimits(max_bytes=700_000, max_requests=5, enqueued_tokens=12_000)
LIMIT_ARGS = ("--batch-max-bytes", 700_000, "--batch-max-requests", 5, "--batch-max-enqueued-tokens", 12_000)
FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"


def _failures(server: FakeOpenAIServer) -> list[str]:
    """The batch-level error codes of every batch the server failed."""
    return [e["code"] for b in server.batches() if b["status"] == "failed" for e in (b["errors"] or {})["data"]]


def _per_step(run: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for entry in read_jsonl(run / "batches.jsonl"):
        if entry["event"] == "submitted":
            counts[entry["step"]] = counts.get(entry["step"], 0) + 1
    return counts


def test_a_multi_batch_step_under_all_three_limits_finishes(tmp_path: Path) -> None:
    inputs, run = tagged_inputs(tmp_path / "in", 8), tmp_path / "run"
    with FakeOpenAIServer(responder=prist_responder, batch_polls_until_done=2, batch_limits=LIMITS) as server:
        result = run_cli(*openai_args(server, run, inputs, "--batch", "--batch-poll", 0, *LIMIT_ARGS))
        assert result.exit_code == 0, result.output
        assert server.request_count("chat") == 0
        assert _failures(server) == []  # no batch failed for its size, request count or tokens
        assert all(b["request_counts"]["total"] <= 5 for b in server.batches())
    records = check_run(run)
    assert len({r.image_id for r in records["dialogues"]}) == 8 and not records["rejects"]
    assert _per_step(run)["elements"] >= 2  # the step went as several batches
    assert "batches done" in result.output


def test_a_token_limited_batch_waits_for_the_others_and_costs_no_round(tmp_path: Path) -> None:
    """The user did not give the organisation's limit: batches past it fail with
    token_limit_exceeded and are sent again as the others complete, even with one round."""
    inputs, run = tagged_inputs(tmp_path / "in", 8), tmp_path / "run"
    limits = FakeBatchLimits(enqueued_tokens=12_000)
    with FakeOpenAIServer(responder=prist_responder, batch_polls_until_done=2, batch_limits=limits) as server:
        args = openai_args(server, run, inputs, "--batch", "--batch-poll", 0, "--batch-max-requests", 2)
        result = run_cli(*args, "--batch-rounds", 1, "--max-reasks", 0)
        assert result.exit_code == 0, result.output
        assert server.request_count("chat") == 0
        assert "token_limit_exceeded" in _failures(server)
    joined = [e for e in read_jsonl(run / "batches.jsonl") if e["event"] == "joined"]
    assert any(e["token_limited"] for e in joined)
    assert len({r.image_id for r in check_run(run)["dialogues"]}) == 8


def test_a_kill_during_a_multi_batch_step_resumes_by_polling_the_recorded_batches(tmp_path: Path) -> None:
    inputs, run = tagged_inputs(tmp_path / "in", 8), tmp_path / "run"
    with FakeOpenAIServer(responder=prist_responder, batch_polls_until_done=40, batch_limits=LIMITS) as server:
        args = openai_args(server, run, inputs, "--batch", "--batch-poll", 0.05, *LIMIT_ARGS)
        process = subprocess.Popen(
            [sys.executable, "-m", "prist_builder", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            if (run / "batches.jsonl").exists() and _per_step(run).get("elements", 0) >= 2:
                break
            time.sleep(0.01)
        assert process.poll() is None, "the build ended before it could be killed"
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        before = [e["batch_id"] for e in read_jsonl(run / "batches.jsonl") if e["event"] == "submitted"]
        assert len(before) >= 2
        result = run_cli(*args)
        assert result.exit_code == 0, result.output
        assert server.request_count("chat") == 0
        ran = server.batch_custom_ids()
        assert server.stored_files() == []  # every joined batch's files were deleted on the server
    joined = {e["batch_id"] for e in read_jsonl(run / "batches.jsonl") if e["event"] == "joined"}
    assert set(before) <= joined  # the recorded batches were polled and joined
    assert ran and max(ran.values()) == 1  # no request was paid twice
    assert len({r.image_id for r in check_run(run)["dialogues"]}) == 8


@pytest.mark.skipif(not FIXTURES.is_dir(), reason="shared fixtures absent")
@pytest.mark.parametrize(
    ("kind", "folder"), [("--labelme", "labelme_voc"), ("--labelme", "labelme_tutorial"), ("--images", "photos")]
)
def test_the_fixtures_build_in_batches_within_the_limits(kind: str, folder: str, tmp_path: Path) -> None:
    run = tmp_path / "run"
    with FakeOpenAIServer(responder=prist_responder, batch_polls_until_done=2, batch_limits=LIMITS) as server:
        args = openai_args(server, run, tmp_path, "--batch", "--batch-poll", 0, *LIMIT_ARGS)
        at = args.index("--labelme")
        args[at : at + 2] = [kind, str(FIXTURES / folder)]
        result = run_cli(*args)
        assert result.exit_code == 0, result.output
        assert server.request_count("chat") == 0  # no online request
        assert _failures(server) == []
    if kind == "--labelme":
        check_run(run)  # photos have no masks yet: dialogues carry mask null
    images = [p for p in (FIXTURES / folder).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")]
    assert not read_jsonl(run / "rejects.jsonl")
    for step in ("elements", "trees", "dialogues"):  # every input finished every step
        assert len({r["image_id"] for r in read_jsonl(run / f"{step}.jsonl")}) == len(images), step
