"""``prist build --provider openai`` through the real openai client against a fake server on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import check_run, read_jsonl, run_cli
from openai_helpers import (
    DIALOGUES_PROMPT,
    FOUR_CHILDREN_TREE,
    SCHEMA_VIOLATING,
    TREE_PROMPT,
    openai_args,
    tagged_inputs,
)

from prist_builder.llm.cache import ResponseCache
from prist_builder.testing import BatchFaultRule, FakeOpenAIServer, FaultRule
from prist_builder.testing.fake_openai.prist_model import prist_responder

pytestmark = pytest.mark.usefixtures("private_cache")  # every test gets its own response cache


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    return tagged_inputs(tmp_path / "inputs", 6)


def bodies(server: FakeOpenAIServer) -> list[str]:
    return [json.dumps(entry[1].get("body", {})) for entry in server.log if entry[0] == "chat"]


def test_every_fault_class_ends_built_or_rejected(inputs: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    with FakeOpenAIServer(responder=prist_responder, keep_bodies=True) as server:
        transient = [
            FaultRule("rate_limit", match="-img0'", retry_after=0.05),
            FaultRule("rate_limit", match="-img1'", retry_after=0.05),
            FaultRule("server_error", match="-img1'", status=500),
            FaultRule("server_error", match="-img2'", status=503),
            FaultRule("slow", match="-img3'", seconds=3.0),
            FaultRule("drop", match="-img4'"),
        ]
        answers = [
            FaultRule("truncated", match=TREE_PROMPT),
            FaultRule("non_json", match=DIALOGUES_PROMPT),
            FaultRule("content", match="-img2'", content=SCHEMA_VIOLATING),
            FaultRule("content", match=TREE_PROMPT, content=FOUR_CHILDREN_TREE),
            FaultRule("content", match=DIALOGUES_PROMPT, content="Sure! ```json\n" + "{}" + "\n``` hope it helps"),
        ]
        hopeless = FaultRule("non_json", match="-img5'", times=3)  # every attempt of one image fails
        for rule in transient + answers + [hopeless]:
            server.add_fault(rule)
        result = run_cli(*openai_args(server, run, inputs, "--timeout", "1", "--concurrency", "4"))
        assert result.exit_code == 0, result.output
        assert server.pending_faults() == 0  # every scripted fault was met
        sent = bodies(server)
    records = check_run(run)
    assert sorted({e.image_id for e in records["elements"]}) == [f"img_{i:04d}" for i in range(5)]
    assert len(records["dialogues"]) == sum(len(t.paths) for t in records["trees"])
    rejects = records["rejects"]
    assert [r.image_id for r in rejects] == ["img_0005"]
    assert "elements: no valid answer in 3 attempts" in rejects[0].reason and "not JSON" in rejects[0].reason
    assert rejects[0].reason.startswith(str(inputs / "img_0005.json"))
    # the model is shown its answer and the exact validation errors
    assert any("target_element_id: Input should be" in body for body in sent)
    assert any("cut off at the token limit" in body for body in sent)
    assert any("elements.0.description" in body and "Field required" in body for body in sent)
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["usage"]["retries"] >= 6 and manifest["usage"]["rate_limited"] >= 2
    assert "SECRET" not in (run / "manifest.json").read_text() + (run / "rejects.jsonl").read_text()


def test_a_finished_build_sends_nothing_again(inputs: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    with FakeOpenAIServer(responder=prist_responder) as server:
        assert run_cli(*openai_args(server, run, inputs)).exit_code == 0
        first = server.request_count("chat")
        assert first == 18  # 6 images x 3 steps
        again = run_cli(*openai_args(server, run, inputs))
        assert again.exit_code == 0
        assert server.request_count("chat") == first
        # a new run folder over the same inputs is answered from the response cache
        assert run_cli(*openai_args(server, tmp_path / "copy", inputs)).exit_code == 0
        assert server.request_count("chat") == first
    assert (tmp_path / "copy" / "dialogues.jsonl").read_bytes() == (run / "dialogues.jsonl").read_bytes()


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (FaultRule("insufficient_quota"), "no quota"),
        (FaultRule("unauthorized"), "API key"),
    ],
)
def test_fatal_errors_stop_the_run_without_leaking_the_key(
    inputs: Path, tmp_path: Path, fault: FaultRule, message: str
) -> None:
    with FakeOpenAIServer(responder=prist_responder) as server:
        server.add_fault(fault)
        result = run_cli(*openai_args(server, tmp_path / "run", inputs, "--concurrency", "1"))
        assert server.request_count("chat") == 1  # not retried
    assert result.exit_code == 1
    assert message in result.output and "SECRET" not in result.output


def test_json_mode_and_tolerant_parsing(inputs: Path, tmp_path: Path) -> None:
    """Servers without structured outputs: JSON mode, schema in the prompt, fenced answers."""

    def fenced(body: dict) -> str:
        assert body["response_format"] == {"type": "json_object"}
        assert "follows this JSON Schema" in body["messages"][1]["content"][0]["text"]
        return "Here you go:\n```json\n" + json.dumps(prist_responder(body)) + "\n```"

    with FakeOpenAIServer(responder=fenced) as server:
        result = run_cli(*openai_args(server, tmp_path / "run", inputs, "--response-format", "json_object"))
    assert result.exit_code == 0, result.output
    assert len(check_run(tmp_path / "run")["elements"]) == 6


def test_dry_run_estimates_without_requests(inputs: Path, tmp_path: Path) -> None:
    with FakeOpenAIServer(responder=prist_responder) as server:
        result = run_cli(*openai_args(server, tmp_path / "run", inputs, "--dry-run"))
        assert server.request_count() == 0
    assert result.exit_code == 0, result.output
    assert "no request sent" in result.output and "USD batch" in result.output
    total = [line for line in result.output.splitlines() if "total" in line][0]
    assert "18" in total  # 6 images x 3 steps
    assert not (tmp_path / "run" / "elements.jsonl").exists()


def test_batch_mode_resubmits_failed_and_expired_lines(inputs: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    with FakeOpenAIServer(responder=prist_responder, batch_polls_until_done=1) as server:
        server.add_fault(BatchFaultRule("fail", match="-img1'"))
        server.add_fault(BatchFaultRule("expire", match="-img3'"))
        result = run_cli(*openai_args(server, run, inputs, "--batch", "--batch-poll", "0"))
        assert result.exit_code == 0, result.output
        assert server.request_count("chat") == 0  # everything went through batches
    records = check_run(run)
    assert len(records["elements"]) == 6 and records["rejects"] == []
    events = read_jsonl(run / "batches.jsonl")
    elements_batches = [e for e in events if e["event"] == "submitted" and e["step"] == "elements"]
    assert [e["requests"] for e in elements_batches][:2] == [6, 2]  # round 2 re-sends only the failed + expired
    joined = [e for e in events if e["event"] == "joined"]
    assert joined[0]["failed"] == 1 and joined[0]["expired"] >= 1
    assert {e["step"] for e in events if e["event"] == "submitted"} == {"elements", "trees", "dialogues"}


def _journal_lines(run: Path, step: str) -> int:
    path = run / ".journal" / f"{step}.jsonl"
    return path.read_bytes().count(b"\n") if path.exists() else 0


def test_sigkill_during_an_online_build_resends_at_most_the_concurrency(tmp_path: Path, private_cache: Path) -> None:
    inputs = tagged_inputs(tmp_path / "many", 24)
    concurrency = 4
    reference = tmp_path / "reference"
    run = tmp_path / "run"
    with FakeOpenAIServer(responder=prist_responder) as server:
        env = {**os.environ, "PRIST_CACHE_DIR": str(tmp_path / "reference-cache")}
        subprocess.run(
            [sys.executable, "-m", "prist_builder", *openai_args(server, reference, inputs)],
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
    with FakeOpenAIServer(responder=prist_responder, latency_s=0.1) as server:
        env = {**os.environ, "PRIST_CACHE_DIR": str(private_cache)}
        args = [sys.executable, "-m", "prist_builder", *openai_args(server, run, inputs, "--concurrency", concurrency)]
        process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while _journal_lines(run, "trees") < 5 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.005)
        assert process.poll() is None, "the build ended before it could be killed"
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        before = server.request_count("chat")
        subprocess.run(args, env=env, check=True, capture_output=True, timeout=120)
        sent = server.request_count("chat")
    unique = sum(1 for _ in ResponseCache(private_cache).entries())
    assert unique == 24 * 3
    assert 0 <= sent - unique <= concurrency, (before, sent, unique)
    for name in ("elements.jsonl", "trees.jsonl", "dialogues.jsonl"):  # none lost, none duplicated
        assert (run / name).read_bytes() == (reference / name).read_bytes()
    assert (run / "rejects.jsonl").read_bytes() == (reference / "rejects.jsonl").read_bytes() == b""
    check_run(run)


def test_a_request_the_server_refuses_rejects_only_that_input(inputs: Path, tmp_path: Path) -> None:
    with FakeOpenAIServer(responder=prist_responder) as server:
        server.add_fault(FaultRule("bad_request", match="-img2'", message="The image is not supported."))
        result = run_cli(*openai_args(server, tmp_path / "run", inputs))
    assert result.exit_code == 0, result.output
    records = check_run(tmp_path / "run")
    assert len(records["elements"]) == 5
    assert [r.image_id for r in records["rejects"]] == ["img_0002"]
    assert "the server refused the request" in records["rejects"][0].reason
    assert "not supported" in records["rejects"][0].reason


def test_batch_ids_are_persisted_and_resumed_not_resubmitted(
    inputs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch submitted by a run that then died is polled and joined by the next run."""
    import asyncio

    from prist_builder.llm.batch import BatchDriver
    from prist_builder.pipeline.build import build
    from prist_builder.pipeline.manifest import BuildConfig
    from prist_builder.providers.openai.provider import OpenAIProvider

    async def die(self: BatchDriver, batch_id: str) -> None:  # the process dies at its first poll
        raise KeyboardInterrupt

    run = tmp_path / "run"
    config = BuildConfig(provider="openai", labelme=str(inputs))
    with FakeOpenAIServer(responder=prist_responder, batch_polls_until_done=2) as server:

        def provider() -> OpenAIProvider:
            return OpenAIProvider(base_url=server.base_url, api_key="sk-test", batch=True, batch_poll_s=0)

        with monkeypatch.context() as patch:
            patch.setattr(BatchDriver, "poll", die)
            with pytest.raises(KeyboardInterrupt):
                asyncio.run(build(run, config, ("elements",), provider=provider()))
        submitted = [e for e in read_jsonl(run / "batches.jsonl") if e["event"] == "submitted"]
        assert len(submitted) == 1 and (run / "elements.jsonl").read_bytes() == b""
        asyncio.run(build(run, config, ("elements",), provider=provider()))
        assert server.request_count("chat") == 0
    events = read_jsonl(run / "batches.jsonl")
    assert [e["event"] for e in events] == ["submitted", "joined"]  # joined, never submitted again
    assert events[1]["batch_id"] == submitted[0]["batch_id"] and events[1]["answered"] == 6
    assert len(read_jsonl(run / "elements.jsonl")) == 6


def test_bare_images_step_by_step_give_dialogues_awaiting_masks(
    inputs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The paper's case: no regions; the model lists elements; masks come later from annotation."""
    images = tmp_path / "bare"
    images.mkdir()
    for png in sorted(inputs.glob("*.png"))[:3]:
        (images / png.name).write_bytes(png.read_bytes())
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-the-environment")
    run = tmp_path / "run"
    with FakeOpenAIServer(responder=prist_responder) as server:
        url = ["--base-url", server.base_url]
        assert (
            run_cli("build", "elements", "--provider", "openai", *url, "--images", images, "--run", run).exit_code == 0
        )
        assert run_cli("build", "trees", "--run", run, *url).exit_code == 0
        assert run_cli("build", "dialogues", "--run", run, *url).exit_code == 0
        assert (
            run_cli("build", "trees", "--run", run, *url, "--model", "gpt-4.1").exit_code == 2
        )  # model is fixed per run
    dialogues = read_jsonl(run / "dialogues.jsonl")
    assert len(dialogues) >= 6 and all(d["mask"] is None and d["target_region_ids"] == [] for d in dialogues)
    elements = read_jsonl(run / "elements.jsonl")
    assert all(e["region_id"] is None for record in elements for e in record["elements"])
    stats = json.loads(run_cli("stats", run, "--json").output)
    assert stats["unmasked"] == len(dialogues)
    assert "sk-from" not in (run / "manifest.json").read_text()


def test_a_server_that_keeps_failing_leaves_the_input_for_the_next_run(inputs: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    with FakeOpenAIServer(responder=prist_responder) as server:
        server.add_fault(FaultRule("server_error", match="-img3'", status=503, times=2))
        first = run_cli(*openai_args(server, run, inputs, "--max-attempts", "2"))
        assert first.exit_code == 1 and "could not finish yet" in first.output
        assert "img_0003" not in {r["image_id"] for r in read_jsonl(run / "elements.jsonl")}
        assert (run / "rejects.jsonl").read_bytes() == b""  # not rejected: simply not finished
        again = run_cli(*openai_args(server, run, inputs, "--max-attempts", "2"))
        assert again.exit_code == 0, again.output
    assert len(check_run(run)["elements"]) == 6


def test_a_batch_line_the_server_refuses_goes_to_rejects(inputs: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    with FakeOpenAIServer(responder=prist_responder) as server:
        server.add_fault(BatchFaultRule("fail", match="-img1'", status=400, message="Invalid image."))
        result = run_cli(*openai_args(server, run, inputs, "--batch", "--batch-poll", "0"))
    assert result.exit_code == 0, result.output
    records = check_run(run)
    assert [r.image_id for r in records["rejects"]] == ["img_0001"]
    assert "refused the request: Invalid image." in records["rejects"][0].reason
    assert (
        len([e for e in read_jsonl(run / "batches.jsonl") if e["event"] == "submitted" and e["step"] == "elements"])
        == 1
    )


def test_reader_processes_give_the_records_of_a_build_in_one_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Step 1 inputs read in a reader process (batches, image bytes read again here) give
    byte-identical step files and rejects, bad inputs included."""
    from PIL import Image

    from prist_builder.pipeline import build as build_module

    inputs = tagged_inputs(tmp_path / "inputs", build_module.MIN_INPUTS_FOR_POOL + 4)
    files = sorted(inputs.glob("*.json"))
    doc = json.loads(files[3].read_text())  # a truncated JPEG: the reader's decode check rejects it
    png = inputs / doc["imagePath"]
    jpeg = png.with_suffix(".jpg")
    Image.open(png).convert("RGB").save(jpeg, format="JPEG")
    jpeg.write_bytes(jpeg.read_bytes()[:2000])
    png.unlink()
    files[3].write_text(json.dumps({**doc, "imagePath": jpeg.name}))
    doc = json.loads(files[5].read_text())  # one region: rejected before any request
    files[5].write_text(json.dumps({**doc, "shapes": doc["shapes"][:1]}))
    pools = []
    real_pool = build_module._process_pool
    monkeypatch.setattr(build_module, "_process_pool", lambda *a: pools.append(a[0]) or real_pool(*a))
    runs = {}
    with FakeOpenAIServer(responder=prist_responder) as server:
        for workers in (1, 2):
            run = tmp_path / f"run-{workers}"
            result = run_cli(*openai_args(server, run, inputs, "--workers", workers))
            assert result.exit_code == 0, result.output
            runs[workers] = {n: (run / n).read_bytes() for n in ("elements.jsonl", "trees.jsonl", "dialogues.jsonl")}
            runs[workers]["rejects"] = [(r["image_id"], r["reason"]) for r in read_jsonl(run / "rejects.jsonl")]
    assert pools == [build_module.reader_count(2, heavy=True)]  # only the second build read in reader processes
    assert runs[1] == runs[2]
    reasons = dict(runs[1]["rejects"])
    assert "unreadable image" in reasons[files[3].stem] and "usable region" in reasons[files[5].stem]
    assert runs[1]["elements.jsonl"].count(b"\n") == len(files) - 2


def test_no_fsync_reaches_the_accounting_log(inputs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--no-fsync`` holds for every file of the run, ``requests.jsonl`` included: the build
    calls ``os.fsync`` not once (and does by default)."""
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd) or real_fsync(fd))
    with FakeOpenAIServer(responder=prist_responder) as server:
        assert run_cli(*openai_args(server, tmp_path / "quick", inputs, "--no-fsync")).exit_code == 0
        assert synced == []
        assert run_cli(*openai_args(server, tmp_path / "safe", inputs)).exit_code == 0
        assert synced
    assert (tmp_path / "quick" / "requests.jsonl").read_text().count("\n") == 18
