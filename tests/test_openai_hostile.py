"""A hostile OpenAI-compatible server (issue: reliability 4-9): a total deadline per request,
accounting that survives a kill, malformed answers retried and never cached, every wait
explained, every broken dialogue named in one re-ask, and hostile content refused."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import check_run, read_jsonl, run_cli, run_prist
from openai_helpers import DIALOGUES_PROMPT, openai_args, tagged_inputs

from prist_builder.llm.accounting import totals
from prist_builder.llm.cache import ResponseCache
from prist_builder.llm.failures import TransportGaveUp
from prist_builder.llm.transport import Transport
from prist_builder.testing import FakeOpenAIServer, FaultRule
from prist_builder.testing.fake_openai.prist_model import prist_responder

SECRET = "sk-SECRET-123"


pytestmark = pytest.mark.usefixtures("private_cache")  # every test gets its own response cache


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    return tagged_inputs(tmp_path / "inputs", 4)


def _cached_contents(cache: Path) -> list[Any]:
    """The answer text (``choices[0].message.content``) of every cached response."""
    return [value["choices"][0]["message"]["content"] for _, value in ResponseCache(cache).entries()]


def test_the_timeout_bounds_the_whole_request_not_each_read() -> None:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    with FakeOpenAIServer() as server:
        server.add_fault(FaultRule("trickle", seconds_per_byte=0.02))  # a ~600 byte body over ~12 s
        transport = Transport(server.base_url, "sk-test", timeout_s=0.5, max_attempts=1)

        async def go() -> None:
            try:
                await transport.chat(body, {}, 10)
            finally:
                await transport.aclose()

        with pytest.raises(TransportGaveUp, match=r"no complete answer within 0.5 s"):
            asyncio.run(go())


def test_accounting_is_written_as_requests_complete_and_survives_sigkill(inputs: Path, tmp_path: Path) -> None:
    inputs = tagged_inputs(tmp_path / "many", 16)
    run, concurrency = tmp_path / "run", 4
    with FakeOpenAIServer(responder=prist_responder, latency_s=0.1) as server:
        args = openai_args(server, run, inputs, "--concurrency", concurrency)
        process = subprocess.Popen(
            [sys.executable, "-m", "prist_builder", *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=os.environ.copy(),
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            if (run / "requests.jsonl").exists() and len(read_jsonl(run / "requests.jsonl")) >= 12:
                break
            time.sleep(0.01)
        assert process.poll() is None, "the build ended before it could be killed"
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        answered_before = server.request_count("chat")
        paid = [e for e in read_jsonl(run / "requests.jsonl") if e["kind"] == "chat" and not e["cached"]]
        assert answered_before - concurrency <= len(paid) <= answered_before  # only requests in flight are missing
        assert all(e["prompt_tokens"] > 0 and e["cost_usd"] > 0 for e in paid)
        result = run_prist(*args)
        assert result.returncode == 0, result.stderr
        sent = server.request_count("chat")
    usage = json.loads((run / "manifest.json").read_text())["usage"]
    assert usage == totals(run / "requests.jsonl")  # rebuilt from the log, kill included
    assert sent - concurrency <= usage["requests"] <= sent
    check_run(run)


@pytest.mark.parametrize(
    "bad_body",
    [
        {"choices": [1]},
        {"choices": [{"message": {"content": ["not", "text"]}, "finish_reason": "stop"}]},
        "[" * 100_000 + "]" * 100_000,
    ],
    ids=["choices-of-int", "content-list", "deep-json"],
)
def test_a_malformed_200_is_retried_then_deferred_and_never_cached(
    bad_body: Any, inputs: Path, tmp_path: Path, private_cache: Path
) -> None:
    """A server that keeps sending malformed 200s costs no input: it is left unfinished (exit 1,
    'run the same command again', the reason printed) and built by the re-run on a healthy server."""
    run = tmp_path / "run"
    with FakeOpenAIServer(responder=prist_responder) as server:
        server.add_fault(FaultRule("raw", match="-img0'", times=2, body=bad_body))  # transient: retried, then fine
        server.add_fault(FaultRule("raw", match="-img1'", times=50, body=bad_body))  # never good: deferred
        args = openai_args(server, run, inputs, "--max-attempts", 3)
        result = run_cli(*args)
        assert result.exit_code == 1, result.output
        assert "run the same command again" in result.output and "malformed" in result.output
        records = check_run(run)
        built = {r.image_id for r in records["elements"]}
        assert "img_0000" in built and "img_0001" not in built
        assert not records["rejects"]  # the server's fault is not the input's
        contents = _cached_contents(private_cache)
        assert contents and all(isinstance(c, str) for c in contents)  # the malformed answers were never cached
        server.clear_faults()
        again = run_cli(*args)
    assert again.exit_code == 0, again.output
    records = check_run(run)
    assert "img_0001" in {r.image_id for r in records["elements"]} and not records["rejects"]


def test_a_deep_answer_is_reasked_and_only_valid_answers_are_cached(
    inputs: Path, tmp_path: Path, private_cache: Path
) -> None:
    run = tmp_path / "run"
    deep = '{"elements": ' * 10_000
    with FakeOpenAIServer(responder=prist_responder) as server:
        server.add_fault(FaultRule("content", match="-img0'", content=deep))
        result = run_cli(*openai_args(server, run, inputs))
    assert result.exit_code == 0, result.output
    assert {r.image_id for r in check_run(run)["elements"]} >= {"img_0000"}
    contents = _cached_contents(private_cache)
    assert contents and not [c for c in contents if c.startswith('{"elements": {"elements"')]


def test_non_numeric_usage_keeps_the_answer(inputs: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    with FakeOpenAIServer(responder=prist_responder) as server:
        server.add_fault(FaultRule("usage", match="-img0'", usage={"prompt_tokens": "many", "completion_tokens": None}))
        result = run_cli(*openai_args(server, run, inputs))
    assert result.exit_code == 0, result.output
    assert not check_run(run)["rejects"]
    assert totals(run / "requests.jsonl")["unknown_usage"] == 1


def test_a_wait_beyond_the_limit_is_explained_with_its_number(inputs: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    with FakeOpenAIServer(responder=prist_responder) as server:
        server.add_fault(FaultRule("rate_limit", match="-img2'", retry_after=3600, times=20))
        server.add_fault(FaultRule("slow", match="-img3'", seconds=4.0, times=6))
        args = [sys.executable, "-m", "prist_builder", *openai_args(server, run, inputs)]
        process = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env={**os.environ, "COLUMNS": "400"}
        )
        assert process.stderr is not None
        seen, running_when_seen = "", None
        for line in process.stderr:  # not a terminal: the line must come as it happens
            seen += line
            if "asked to wait 3600 s" in line:
                running_when_seen = process.poll() is None
                break
        seen += process.stderr.read()
        assert process.wait(timeout=120) == 1  # the input is left for the next run, not lost
    assert running_when_seen, seen
    assert "img_0002.json: left unfinished for the next run" in seen
    assert "the server asked to wait 3600 s, beyond the 600 s a request may wait" in " ".join(seen.split())


def test_a_long_rate_limit_wait_is_announced(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr("prist_builder.llm.transport.LONG_WAIT_S", 0.5)
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    with FakeOpenAIServer() as server:
        server.add_fault(FaultRule("rate_limit", retry_after=1.0))
        transport = Transport(server.base_url, "sk-test")

        async def go() -> None:
            try:
                await asyncio.gather(*(transport.chat(body, {"n": i}, 10) for i in range(3)))
            finally:
                await transport.aclose()

        with caplog.at_level("WARNING", logger="prist_builder"):
            asyncio.run(go())
    announced = [r.getMessage() for r in caplog.records if "rate limit to reset" in r.getMessage()]
    assert len(announced) == 1 and announced[0].startswith("waiting 1 s for the rate limit to reset, until ")


def test_a_reask_names_every_broken_dialogue(inputs: Path, tmp_path: Path) -> None:
    def broken(body: dict) -> Any:
        answer = prist_responder(body)
        text = json.dumps(body)
        if DIALOGUES_PROMPT in text and "Your answer does not satisfy" not in text:
            data = json.loads(answer) if isinstance(answer, str) else answer
            for dialogue in data["dialogues"]:
                dialogue["turns"] = dialogue["turns"] * 4  # too many turns in every dialogue
            return data
        return answer

    run = tmp_path / "run"
    with FakeOpenAIServer(responder=broken, keep_bodies=True) as server:
        assert run_cli(*openai_args(server, run, tagged_inputs(tmp_path / "one", 1))).exit_code == 0
        reasks = [
            json.dumps(e[1]["body"])
            for e in server.log
            if e[0] == "chat" and "Your answer does not satisfy" in json.dumps(e[1].get("body", {}))
        ]
    assert reasks
    tree = read_jsonl(run / "trees.jsonl")[0]
    for path in tree["paths"]:
        assert f"({path['target_element_id']})" in reasks[0]


def test_hostile_content_is_capped_and_a_leaked_key_is_refused(inputs: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    with FakeOpenAIServer(responder=prist_responder) as server:
        server.add_fault(FaultRule("content", match="-img0'", content="x" * 5000))
        server.add_fault(FaultRule("content", match="-img1'", content=f"my key is {SECRET}"))
        result = run_cli(*openai_args(server, run, inputs, "--max-answer-chars", 4000))
    assert result.exit_code == 0, result.output
    rejects = {r.image_id: r.reason for r in check_run(run)["rejects"]}
    assert "over --max-answer-chars 4000" in rejects["img_0000"]
    assert "contains the configured API key" in rejects["img_0001"]
    for path in run.rglob("*"):
        if path.is_file():
            assert SECRET not in path.read_text(errors="replace"), path
