"""The OpenAI transport (cache, pacing, retries, accounting), driven through the real ``openai``
client against ``FakeOpenAIServer`` on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest
import tenacity

from prist_builder.errors import FatalError
from prist_builder.llm.cache import ResponseCache
from prist_builder.llm.failures import RequestRejected, TransportGaveUp
from prist_builder.llm.limiter import AdaptiveConcurrency, RateLimiter
from prist_builder.llm.pricing import BATCH_DISCOUNT, Usage, cost_usd, load_prices
from prist_builder.llm.retry import BackoffWait, classify, parse_duration, server_wait_s
from prist_builder.llm.settings import DEFAULT_BASE_URL, LLMSettings
from prist_builder.llm.transport import Transport
from prist_builder.testing import FakeOpenAIServer, FaultRule

MODEL = "gpt-4o-mini"
SECRET = "sk-SECRET-123"
FAST = {"backoff_base_s": 0.001, "backoff_cap_s": 0.01}


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as fake:
        yield fake


def body(text: str = "hello", model: str = MODEL) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}]}


def transport(server: FakeOpenAIServer, **kwargs: Any) -> Transport:
    return Transport(server.base_url, kwargs.pop("api_key", "sk-test"), **{**FAST, **kwargs})


def run_chats(tx: Transport, bodies: list[dict[str, Any]], extra: dict[str, Any] | None = None) -> list[Any]:
    """Send ``bodies`` concurrently in one event loop; returns (completion, cached) pairs or exceptions."""

    async def go() -> list[Any]:
        results = await asyncio.gather(*(tx.chat(b, extra or {}, 10) for b in bodies), return_exceptions=True)
        await tx.aclose()
        return results

    return asyncio.run(go())


def chat_once(tx: Transport, request: dict[str, Any] | None = None) -> dict[str, Any]:
    (result,) = run_chats(tx, [request or body()])
    if isinstance(result, BaseException):
        raise result
    return result[0]


def test_second_identical_call_is_served_from_the_cache(server: FakeOpenAIServer, tmp_path: Path) -> None:
    cache, version = ResponseCache(tmp_path), {"prompt_version": "elements/1"}
    first = run_chats(transport(server, cache=cache), [body()], version)[0]
    tx = transport(server, cache=cache)
    assert first[1] is False and run_chats(tx, [body()], version)[0] == (first[0], True)
    counts = (server.request_count("chat"), tx.usage.cached, tx.usage.requests, cache.hits, cache.misses)
    assert counts == (1, 1, 0, 1, 1)
    assert len(list(cache.entries())) == 1 and not list(tmp_path.glob("??/*.json"))  # no file per answer
    assert run_chats(tx, [body()], {"prompt_version": "elements/2"})[0][1] is False  # a new prompt version
    assert server.request_count("chat") == 2
    key = ResponseCache.key(server.base_url, body(), version)
    assert cache.discard(key) and not cache.discard(key) and cache.get(key) is None
    cache.path(key).parent.mkdir()
    cache.path(key).write_text(json.dumps(first[0]), encoding="utf-8")  # the older file-per-answer layout
    assert ResponseCache(tmp_path).get(key) == first[0]
    cache.path(key).write_text("{trunc", encoding="utf-8")  # a torn file is a miss, not a crash
    assert cache.get(key) is None and cache.discard(key) and not cache.discard(key)


def test_the_cache_survives_kill_9_mid_write_and_is_shared_by_processes(tmp_path: Path) -> None:
    writer = (
        "import sys\n"
        "from prist_builder.llm.cache import ResponseCache\n"
        "cache = ResponseCache(sys.argv[1])\n"
        "for i in range(10**9):\n"
        "    cache.put(f'{sys.argv[2]}{i:08d}', {'n': i, 'pad': 'x' * 2000})\n"
        "    print(i, flush=True) if i == 50 else None\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", writer, str(tmp_path), tag], stdout=subprocess.PIPE)
        for tag in ("a", "b")
    ]
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"50"  # both write at once
    for proc in procs:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    entries = dict(ResponseCache(tmp_path).entries())
    for tag in ("a", "b"):
        numbers = sorted(v["n"] for k, v in entries.items() if k.startswith(tag))
        assert len(numbers) > 50 and numbers == list(range(len(numbers)))  # every committed answer, whole


def image_body(data: bytes, prompt: str = "list", model: str = MODEL, schema: Any = None) -> dict[str, Any]:
    url = "data:image/png;base64," + base64.b64encode(data).decode()
    request: dict[str, Any] = {
        "model": model,
        "messages": [
            {
                "role": "user",
                "content": [{"type": "text", "text": prompt}, {"type": "image_url", "image_url": {"url": url}}],
            }
        ],
    }
    if schema is not None:
        request["response_format"] = {"type": "json_schema", "json_schema": {"name": "a", "schema": schema}}
    return request


def test_cache_key_hashes_image_bytes_not_their_encoding() -> None:
    base, extra = "http://x/v1", {"prompt_version": "elements/1"}
    image = bytes(range(256)) * 4000  # 1 MB of pixels, 1.4 MB of base64
    key = ResponseCache.key(base, image_body(image), extra)
    assert len(key) == 64 and key == ResponseCache.key(base + "/", image_body(image), dict(extra))
    by_digest = image_body(b"")
    by_digest["messages"][0]["content"][1]["image_url"]["url"] = "sha256:" + hashlib.sha256(image).hexdigest()
    assert ResponseCache.key(base, by_digest, extra) == key  # the payload is reduced to its digest
    changed = {
        ResponseCache.key(*variant)
        for variant in [
            (base, image_body(image[:-1] + b"\x00"), extra),
            (base, image_body(image), {"prompt_version": "elements/2"}),
            (base, image_body(image, model="gpt-4o"), extra),
            (base, image_body(image, schema={"type": "object"}), extra),
            (base, image_body(image, prompt="list!"), extra),
            ("http://y/v1", image_body(image), extra),
        ]
    }
    assert len(changed | {key}) == 7


def test_rate_limit_waits_at_least_retry_after(server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []
    decide = BackoffWait.__call__

    def recorded(self: BackoffWait, state: tenacity.RetryCallState) -> float:
        waits.append(decide(self, state))
        return waits[-1]

    monkeypatch.setattr(BackoffWait, "__call__", recorded)
    server.add_fault(FaultRule("rate_limit", retry_after=0.3))
    tx = transport(server)
    chat_once(tx)
    assert len(waits) == 1 and waits[0] >= 0.3  # the retry slept at least what the server asked
    assert server.request_count("chat") == 2
    assert (tx.usage.requests, tx.usage.retries, tx.usage.rate_limited, tx.concurrency.current) == (2, 1, 1, 4)


def test_durations_and_server_waits() -> None:
    cases = {"1s": 1.0, "250ms": 0.25, "6m0s": 360.0, "1h2m3.5s": 3723.5, "0.5": 0.5, "1m": 60.0}
    assert {text: parse_duration(text) for text in cases} == pytest.approx(cases)
    assert [parse_duration(bad) for bad in ("", "soon", "1x", "s", "-1", "1s2")] == [None] * 6
    assert server_wait_s(status_error(429, {"retry-after-ms": "1500", "retry-after": "1"})) == 1.5
    assert server_wait_s(status_error(500, {"retry-after": "2"})) == 2.0
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    assert 28 <= (server_wait_s(status_error(429, {"retry-after": date})) or 0) <= 31
    spent = {
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "2s",
        "x-ratelimit-remaining-tokens": "5000",
        "x-ratelimit-reset-tokens": "6m0s",
    }
    assert server_wait_s(status_error(429, spent)) == 2.0  # the budget that is not exhausted is ignored
    assert server_wait_s(status_error(429, {"x-ratelimit-reset-tokens": "1m30s", "retry-after": "3"})) == 90.0
    fresh = {
        "x-ratelimit-reset-requests": "1s",
        "x-ratelimit-reset-tokens": "250ms",
        "x-ratelimit-remaining-requests": "3",
        "x-ratelimit-remaining-tokens": "9",
    }
    assert server_wait_s(status_error(429, fresh)) == 1.0  # nothing else said: the largest reset
    assert (server_wait_s(status_error(429, {})), server_wait_s(status_error(400, {"retry-after": "5"}))) == (None,) * 2
    quota = status_error(429, {}, {"code": "insufficient_quota", "type": "insufficient_quota"})
    assert [
        classify(e) for e in (quota, status_error(429, {}), status_error(500, {}), status_error(400, {}), ValueError())
    ] == ["fatal", "rate_limited", "transient", "fatal", "other"]
    full, decorrelated = BackoffWait(0.5, 30.0, "full"), BackoffWait(0.5, 4.0, "decorrelated")
    waits = [max(full(retry_state(n, ValueError())) for _ in range(200)) for n in (1, 3, 12)]
    assert waits[0] <= 0.5 and 1.0 < waits[1] <= 2.0 and 20 < waits[2] <= 30.0
    assert all(0.5 <= decorrelated(retry_state(n, ValueError())) <= 4.0 for n in range(1, 30))
    asked = status_error(429, {"retry-after": "45"})
    assert 45.0 <= full(retry_state(1, asked)) <= 45.0 * 1.1  # above the cap: the server's word wins


def retry_state(attempt: int, exc: BaseException) -> tenacity.RetryCallState:
    state = tenacity.RetryCallState(tenacity.AsyncRetrying(), None, (), {})
    state.attempt_number = attempt
    state.set_exception((type(exc), exc, None))
    return state


def status_error(status: int, headers: dict[str, str], error: dict[str, Any] | None = None) -> openai.APIStatusError:
    request = httpx2.Request("POST", "http://127.0.0.1/v1/chat/completions")
    cls = {429: openai.RateLimitError, 500: openai.InternalServerError, 400: openai.BadRequestError}[status]
    return cls(
        "Error",
        response=httpx2.Response(status, headers=headers, request=request),
        body={"message": "m", "type": "requests", "code": "rate_limit_exceeded", **(error or {})},
    )


@pytest.mark.parametrize(
    ("faults", "options"),
    [
        ([FaultRule("server_error", times=2), FaultRule("server_error", status=503)], {}),
        ([FaultRule("drop")], {}),
        ([FaultRule("slow", seconds=1.0)], {"timeout_s": 0.25}),  # the client times out and tries again
    ],
)
def test_transient_failures_are_retried(server: FakeOpenAIServer, faults: list[FaultRule], options: dict) -> None:
    for rule in faults:
        server.add_fault(rule)
    tx = transport(server, **options)
    assert chat_once(tx)["choices"][0]["message"]["content"] == "Echo: hello"
    attempts = sum(rule.times for rule in faults) + 1
    assert server.request_count("chat") == tx.usage.requests == attempts
    assert (tx.usage.retries, tx.usage.rate_limited) == (attempts - 1, 0)


@pytest.mark.parametrize(
    ("fault", "sent", "error", "words"),
    [
        ("insufficient_quota", body(), FatalError, "no quota left (429 insufficient_quota)"),
        ("unauthorized", body(), FatalError, "rejected the API key (401 invalid_api_key)"),
        (
            None,
            {"model": MODEL, "messages": []},
            RequestRejected,
            "rejected the request (400 invalid_request_error): Mi",
        ),
    ],
)
def test_fatal_errors_stop_at_once_without_the_key(server: Any, fault: Any, sent: Any, error: Any, words: str) -> None:
    if fault:
        server.add_fault(FaultRule(fault, times=5))
    tx = transport(server, api_key=SECRET)
    with pytest.raises(error, match=re.escape(words)) as caught:
        chat_once(tx, sent)
    assert server.request_count("chat") == 1 and tx.usage.retries == 0 and caught.value.__cause__ is None
    assert isinstance(caught.value, FatalError)
    assert "SECRET" not in str(caught.value) + repr(caught.value) + repr(tx)


def test_gives_up_after_max_attempts_naming_the_last_error_without_the_key() -> None:
    def responder(request: dict[str, Any]) -> str:
        raise RuntimeError(f"cannot use key {SECRET} or sk-OTHERKEY99 here")

    with FakeOpenAIServer(responder=responder) as fake, pytest.raises(TransportGaveUp) as caught:
        tx = transport(fake, api_key=SECRET, max_attempts=3)
        chat_once(tx)
    assert re.search(r"after 3 attempts.*500 server_error: responder raised.*cannot use key", str(caught.value))
    assert fake.request_count("chat") == 3 and tx.usage.retries == 2 and caught.value.__cause__ is None
    assert "SECRET" not in str(caught.value) + repr(caught.value) and "OTHERKEY" not in str(caught.value)


def test_missing_key_fails_only_when_a_request_is_needed(tmp_path: Path, monkeypatch: Any, server: Any) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    tx = Transport.from_settings(LLMSettings(), cache=(cache := ResponseCache(tmp_path)))
    assert tx.base_url == DEFAULT_BASE_URL  # the public API when nothing else is set
    cache.put(ResponseCache.key(tx.base_url, body(), {}), {"choices": [], "usage": {}})
    assert run_chats(tx, [body()])[0] == ({"choices": [], "usage": {}}, True)
    with pytest.raises(FatalError, match="no API key: set OPENAI_API_KEY"):
        chat_once(tx, body("not cached"))
    chat_once(Transport.from_settings(LLMSettings(base_url=server.base_url)))  # another server needs no key
    assert server.request_count("chat") == 1


def test_burst_of_rate_limits_under_concurrency_all_succeeds(server: FakeOpenAIServer) -> None:
    server.add_fault(FaultRule("rate_limit", times=12, retry_after=0.05))
    tx = transport(server, concurrency=8)
    results = run_chats(tx, [body(f"q{i}") for i in range(24)])
    assert all(not isinstance(r, BaseException) for r in results)
    assert tx.usage.rate_limited == 12 and server.request_count("chat") == 36 and tx.concurrency.current < 8


def test_adaptive_concurrency_halves_on_429_and_grows_back() -> None:
    clock = [100.0]
    cap = AdaptiveConcurrency(8, minimum=1, grow_after=3, cooldown_s=1.0, clock=lambda: clock[0])
    cap.on_rate_limited()
    cap.on_rate_limited()  # the same overload: within the cooldown
    currents = [cap.current]
    for _ in range(3):
        clock[0] += 1.5
        cap.on_rate_limited()
        currents.append(cap.current)
    for _ in range(3 * 7 + 5):
        cap.on_success()
    assert currents == [4, 2, 1, 1] and cap.current == 8
    cap.current, peaks = 2, []

    async def job() -> None:
        async with cap:
            peaks.append(cap.in_flight)
            await asyncio.sleep(0.01)

    async def jobs() -> None:
        await asyncio.gather(*(job() for _ in range(10)))

    asyncio.run(jobs())
    assert (max(peaks), len(peaks), cap.in_flight) == (2, 10, 0)


def test_rate_limiter_paces_requests_and_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    """Paced on a virtual clock: ``asyncio.sleep`` in the limiter advances it (no wall time)."""
    now = [0.0]

    async def virtual_sleep(seconds: float) -> None:
        now[0] += seconds

    monkeypatch.setattr("prist_builder.llm.limiter.asyncio.sleep", virtual_sleep)

    async def times(limiter: RateLimiter, sizes: list[int]) -> list[float]:
        stamps = []
        for size in sizes:
            await limiter.acquire(size)
            stamps.append(now[0])
        return stamps

    def clock() -> float:
        return now[0]

    by_requests = asyncio.run(times(RateLimiter(rpm=1200, tpm=None, clock=clock), [1] * 32))  # 20/s, a burst of 20
    assert by_requests[19] == 0.0 and by_requests[31] == pytest.approx(0.6)
    now[0] = 0.0
    by_tokens = asyncio.run(times(RateLimiter(rpm=None, tpm=6000, clock=clock), [10_000, 50]))  # 100/s, bucket 6000
    assert by_tokens[0] == 0.0 and by_tokens[1] >= 0.5  # more than the bucket: goes once it is full
    now[0] = 0.0
    assert asyncio.run(times(RateLimiter(None, None, clock=clock), [10**9] * 100))[-1] == 0.0


def test_usage_cost_and_prices(server: FakeOpenAIServer, tmp_path: Path) -> None:
    tx = transport(server)
    results = [r[0] for r in run_chats(tx, [body("a" * 400), body("b" * 40), body("c", "gpt-4o-2024-08-06")])]
    tokens = [(r["usage"]["prompt_tokens"], r["usage"]["completion_tokens"]) for r in results]
    assert (tx.usage.prompt_tokens, tx.usage.completion_tokens) == tuple(map(sum, zip(*tokens, strict=True)))
    expected = sum(cost_usd(r["model"], p, c, tx.prices) or 0 for r, (p, c) in zip(results, tokens, strict=True))
    assert expected > 0 and tx.usage.cost_usd == pytest.approx(expected) and tx.usage.requests == 3
    (total := Usage(requests=1, cost_usd=0.5)).add(tx.usage)
    assert (total.as_dict()["requests"], total.as_dict()["cost_usd"]) == (4, round(expected + 0.5, 6))
    prices = load_prices(None)
    assert cost_usd("gpt-4o", 1_000_000, 1_000_000, prices) == pytest.approx(12.5)
    assert cost_usd("gpt-4.1-mini-2025-04-14", 1_000_000, 0, prices) == pytest.approx(0.40)
    assert cost_usd("gpt-4o", 1_000_000, 0, prices, batch=True) == pytest.approx(2.5 * BATCH_DISCOUNT)
    assert cost_usd("llava-local", 10, 10, prices) is None
    custom = tmp_path / "prices.json"
    custom.write_text(json.dumps({"llava-local": [0, 0], "gpt-4o": [5, 20]}))
    assert load_prices(custom)["gpt-4o"] == (5.0, 20.0) and cost_usd("llava-local", 9, 9, load_prices(custom)) == 0
    custom.write_text(json.dumps({"gpt-4o": [5]}))
    with pytest.raises(ValueError, match=r"prices\.json.*'gpt-4o'"):
        load_prices(custom)


def test_files_and_batches_round_trip() -> None:
    lines = [
        {"custom_id": f"req-{i}", "method": "POST", "url": "/v1/chat/completions", "body": body(f"line {i}")}
        for i in range(3)
    ]
    data = "".join(json.dumps(line) + "\n" for line in lines).encode()

    async def go(tx: Transport) -> tuple[dict[str, Any], bytes, bytes]:
        file_id = await tx.upload(data, "input.jsonl")
        batch = await tx.create_batch(file_id, {"job": "t"})
        while batch["status"] not in ("completed", "failed", "expired", "cancelled"):
            batch = await tx.retrieve_batch(batch["id"])
        result = batch, await tx.download(file_id), await tx.download(batch["output_file_id"])
        await tx.aclose()
        return result

    with FakeOpenAIServer(batch_polls_until_done=2) as fake:
        batch, echoed, output = asyncio.run(go(tx := transport(fake)))
        assert fake.request_count("chat") == 0 and fake.request_count("files") == 3
    assert batch["status"] == "completed" and batch["metadata"] == {"job": "t"} and echoed == data
    rows = {row["custom_id"]: row for row in map(json.loads, output.decode().splitlines())}
    assert rows["req-2"]["response"]["body"]["choices"][0]["message"]["content"] == "Echo: line 2"
    assert tx.usage.requests == 6 and tx.usage.cost_usd == 0
