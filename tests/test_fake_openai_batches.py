"""The fake OpenAI server's files, batches, latency and shutdown, driven by the real `openai` client."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletion
from test_fake_openai import MODEL, ask

from prist_builder.testing import BatchFaultRule, FakeOpenAIServer

# ---- files and batches -----------------------------------------------------------------------


def test_file_upload_and_download(server: FakeOpenAIServer, client: openai.OpenAI) -> None:
    data = '{"a": "ünï"}\r\n{"b": 2}\n'.encode()
    uploaded = client.files.create(file=("input.jsonl", data), purpose="batch")
    assert (uploaded.object, uploaded.bytes, uploaded.filename) == ("file", len(data), "input.jsonl")
    assert (uploaded.purpose, uploaded.status) == ("batch", "processed")
    assert uploaded.id.startswith("file-")
    assert client.files.retrieve(uploaded.id).bytes == len(data)
    assert client.files.content(uploaded.id).content == data
    assert server.request_count("files") == 3 and server.request_count("chat") == 0
    assert server.log[0][1]["filename"] == "input.jsonl"
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve("file-missing")


def batch_file(custom_ids: list[str]) -> bytes:
    lines = [
        {
            "custom_id": cid,
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": MODEL, "messages": [{"role": "user", "content": f"text of {cid}"}]},
        }
        for cid in custom_ids
    ]
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def read_jsonl(client: openai.OpenAI, file_id: str | None) -> dict[str, dict[str, Any]]:
    assert file_id is not None
    rows = [json.loads(line) for line in client.files.content(file_id).text.splitlines()]
    return {row["custom_id"]: row for row in rows}


def test_batch_round_trip_with_failed_and_expired_lines() -> None:
    with (
        FakeOpenAIServer(batch_polls_until_done=2) as fake,
        openai.OpenAI(base_url=fake.base_url, api_key="sk-test", max_retries=0) as sync_client,
    ):
        fake.add_fault(BatchFaultRule("fail", match="req-2"))
        fake.add_fault(BatchFaultRule("expire", match="req-3"))
        ids = ["req-1", "req-2", "req-3", "req-4"]
        input_file = sync_client.files.create(file=("in.jsonl", batch_file(ids)), purpose="batch")
        batch = sync_client.batches.create(
            input_file_id=input_file.id,
            endpoint="/v1/chat/completions",
            completion_window="24h",
            metadata={"job": "test"},
        )
        assert (batch.status, batch.metadata) == ("validating", {"job": "test"})
        assert sync_client.batches.retrieve(batch.id).status == "in_progress"
        done = sync_client.batches.retrieve(batch.id)
        assert done.status == "expired" and done.expired_at is not None and done.completed_at is None
        assert done.request_counts is not None
        assert (done.request_counts.total, done.request_counts.completed, done.request_counts.failed) == (4, 2, 1)

        outputs = read_jsonl(sync_client, done.output_file_id)
        assert sorted(outputs) == ["req-1", "req-4"]
        for row in outputs.values():
            assert row["response"]["status_code"] == 200 and row["error"] is None
            reply = ChatCompletion.model_validate(row["response"]["body"])
            assert reply.choices[0].message.content == f"Echo: text of {row['custom_id']}"
        errors = read_jsonl(sync_client, done.error_file_id)
        assert errors["req-2"]["response"]["status_code"] == 500 and errors["req-2"]["error"] is None
        assert errors["req-2"]["response"]["body"]["error"]["type"] == "server_error"
        assert errors["req-3"]["response"] is None
        assert errors["req-3"]["error"]["code"] == "batch_expired"
        assert fake.request_count("chat") == 0 and fake.request_count("batch_lines") == 3

        # Each rule was for one batch only: the same lines now all succeed.
        again = sync_client.batches.create(
            input_file_id=input_file.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        sync_client.batches.retrieve(again.id)
        finished = sync_client.batches.retrieve(again.id)
        assert finished.status == "completed" and finished.error_file_id is None
        assert sorted(read_jsonl(sync_client, finished.output_file_id)) == ids


def test_batch_cancel_invalid_lines_and_unknown_ids(client: openai.OpenAI) -> None:
    good = client.files.create(file=("in.jsonl", batch_file(["a"])), purpose="batch")
    batch = client.batches.create(input_file_id=good.id, endpoint="/v1/chat/completions", completion_window="24h")
    assert client.batches.cancel(batch.id).status == "cancelling"
    assert client.batches.retrieve(batch.id).status == "cancelled"
    with pytest.raises(openai.BadRequestError):
        client.batches.cancel(batch.id)

    broken = client.files.create(file=("bad.jsonl", b'{"custom_id": "a"\n'), purpose="batch")
    failed = client.batches.create(input_file_id=broken.id, endpoint="/v1/chat/completions", completion_window="24h")
    failed = client.batches.retrieve(failed.id)
    assert failed.status == "failed" and failed.errors is not None and failed.errors.data
    assert failed.errors.data[0].code == "invalid_json_line" and failed.errors.data[0].line == 1

    with pytest.raises(openai.NotFoundError):
        client.batches.retrieve("batch_missing")
    with pytest.raises(openai.NotFoundError):
        client.batches.create(input_file_id="file-missing", endpoint="/v1/chat/completions", completion_window="24h")


# ---- throughput and lifecycle -----------------------------------------------------------------


def test_requests_are_served_concurrently() -> None:
    """The server answers requests in parallel: 16 requests meet at a barrier that only opens
    when all 16 are being served at once (a server that serialised them would break it)."""
    parties = 16
    barrier = threading.Barrier(parties, timeout=10)

    def responder(body: dict) -> str:
        barrier.wait()
        return "met"

    async def run(base_url: str) -> list[str]:
        async with openai.AsyncOpenAI(base_url=base_url, api_key="sk-test", max_retries=0, timeout=30) as aclient:

            async def one(i: int) -> str:
                answer = await aclient.chat.completions.create(
                    model=MODEL, messages=[{"role": "user", "content": str(i)}]
                )
                return answer.choices[0].message.content or ""

            return await asyncio.gather(*(one(i) for i in range(parties)))

    with FakeOpenAIServer(responder=responder) as fake:
        assert asyncio.run(run(fake.base_url)) == ["met"] * parties
        assert fake.request_count("chat") == parties


def test_stop_closes_the_server() -> None:
    fake = FakeOpenAIServer(latency_s=5).start()
    with openai.OpenAI(base_url=fake.base_url, api_key="sk-test", max_retries=0, timeout=10) as sync_client:
        threading.Timer(0.2, fake.stop).start()
        with pytest.raises(openai.APIConnectionError):
            ask(sync_client)
        # the request failed instead of being answered after the 5 s latency: stop() cut it short
        with pytest.raises(openai.APIConnectionError):
            ask(sync_client)
    with pytest.raises(RuntimeError):
        fake.start()
