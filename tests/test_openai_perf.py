"""Performance machinery of the openai path, tested for behaviour (no wall-time assertions):
the limiter following the server's headers, the ``max_tokens`` rule, the enforced limit of
the fake server, and images prepared once."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
from pathlib import Path

import pytest
from PIL import Image
from pydantic import BaseModel

from prist_builder.llm import images as images_module
from prist_builder.llm.cache import ResponseCache
from prist_builder.llm.client import LLMClient, StructuredRequest
from prist_builder.llm.images import PreparedImages, prepare_image
from prist_builder.llm.limiter import RateLimiter
from prist_builder.llm.max_tokens import FLOOR, MIN_SAMPLES, MaxTokens
from prist_builder.llm.settings import LLMSettings
from prist_builder.llm.strict_schema import response_format
from prist_builder.providers.openai.config import OpenAIProviderConfig
from prist_builder.testing import EnforcedLimit, FakeOpenAIServer, FaultRule
from prist_builder.testing.fake_openai.limits import SlidingWindow


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """A virtual clock: ``asyncio.sleep`` in the limiter advances it (and yields once)."""
    now = [0.0]
    real_sleep = asyncio.sleep

    async def virtual_sleep(seconds: float) -> None:
        now[0] += seconds
        await real_sleep(0)

    monkeypatch.setattr("prist_builder.llm.limiter.asyncio.sleep", virtual_sleep)
    return now


def limiter(now: list[float], rpm: int | None = None, tpm: int | None = None) -> RateLimiter:
    return RateLimiter(rpm, tpm, clock=lambda: now[0])


def headers(kind: str, remaining: int, reset: str) -> dict[str, str]:
    return {f"x-ratelimit-remaining-{kind}": str(remaining), f"x-ratelimit-reset-{kind}": reset}


def test_unbilled_tokens_go_back_to_the_bucket(clock: list[float]) -> None:
    paced = limiter(clock, tpm=6000)  # 100 tokens/s, a bucket of 6000

    async def go() -> float:
        await paced.acquire(3000)
        await paced.acquire(3000)  # the bucket is empty now
        paced.release(3000, billed=1000)
        paced.release(3000, billed=1000)  # 4000 reserved but not billed
        await paced.acquire(3000)
        return clock[0]

    assert asyncio.run(go()) == 0.0  # without the refund it would wait 30 s


def test_the_servers_remaining_caps_the_bucket_and_its_reset_holds_it(clock: list[float]) -> None:
    paced = limiter(clock, tpm=6000)

    async def go() -> float:
        await paced.acquire(1000)
        paced.release(1000, headers("tokens", 500, "10s"), billed=1000)  # less than a request remains
        await paced.acquire(1000)
        return clock[0]

    # held 10 s (nothing refills), then 500 tokens short at 100/s: 5 s more
    assert asyncio.run(go()) == pytest.approx(15.0)


def test_a_429_syncs_the_level_but_holds_nothing(clock: list[float]) -> None:
    paced = limiter(clock, tpm=6000)

    async def go() -> float:
        await paced.acquire(1000)
        paced.release(1000, headers("tokens", 1500, "50s"), answered=False)
        await paced.acquire(1000)
        return clock[0]

    assert asyncio.run(go()) == 0.0


def test_without_a_budget_an_exhausted_server_holds_new_requests(clock: list[float]) -> None:
    free = limiter(clock)

    async def go() -> list[float]:
        await free.acquire(100)
        free.release(100, headers("requests", 0, "2s"))
        await free.acquire(100)
        stamps = [clock[0]]
        free.release(100, headers("requests", 0, "30m0s"))  # a reset beyond a minute is capped
        await free.acquire(100)
        return stamps + [clock[0]]

    assert asyncio.run(go()) == [pytest.approx(2.0), pytest.approx(62.0)]


def test_a_waiter_rechecks_when_the_server_corrects_the_bucket(clock: list[float]) -> None:
    paced = limiter(clock, tpm=6000)
    went: dict[str, float] = {}

    async def first() -> None:
        await paced.acquire(6000)
        went["first"] = clock[0]

    async def waiter() -> None:
        await paced.acquire(600)  # 600 short: 6 s, unless the server says otherwise meanwhile
        went["waiter"] = clock[0]

    async def server_answers() -> None:  # runs while the waiter sleeps
        paced.sync(headers("tokens", -3000, "1ms"))  # 3000 over: the bucket drops to -3000

    async def go() -> None:
        await first()
        await asyncio.gather(waiter(), server_answers())

    asyncio.run(go())
    assert went["first"] == 0.0 and went["waiter"] > 6.0


def test_max_tokens_follow_the_answers_of_each_step(tmp_path: Path) -> None:
    rule = MaxTokens()
    assert rule.cap("tree@1", 2500) == 2500  # nothing seen yet: the step's ceiling
    for tokens in [100] * MIN_SAMPLES:
        rule.observe("tree@1", tokens)
    assert rule.cap("tree@1", 2500) == FLOOR  # 125 rounds up to 128, under the floor
    for tokens in [1000] * 200:
        rule.observe("dialogues@1", tokens)
    assert rule.cap("dialogues@1", 4000) == 1280  # 1000 * 1.25, in steps of 64
    assert rule.cap("dialogues@1", 1000) == 1000  # never above the ceiling
    assert rule.cap("elements@1", 1500) == 1500  # steps do not mix
    assert MaxTokens(fixed=700).cap("tree@1", 2500) == 700
    assert MaxTokens(fixed=7000).cap("tree@1", 2500) == 2500
    log = tmp_path / "requests.jsonl"
    lines = [{"kind": "chat", "prompt": "tree@1", "completion_tokens": 1000, "cached": False}] * MIN_SAMPLES
    lines += [{"kind": "chat", "prompt": "tree@1", "cached": True}, {"kind": "api", "attempts": 1}]
    log.write_text("".join(json.dumps(line) + "\n" for line in lines) + '{"torn')
    resumed = MaxTokens()
    resumed.load(log)
    assert resumed.cap("tree@1", 2500) == 1280


def test_max_tokens_is_a_cli_option() -> None:
    field = OpenAIProviderConfig.model_fields["max_tokens"]
    assert field.json_schema_extra["flag"] == "--max-tokens" and field.default is None
    with pytest.raises(ValueError):
        OpenAIProviderConfig(max_tokens=0)


class Echo(BaseModel):
    word: str


async def ask_once(client: LLMClient, request: StructuredRequest[Echo]) -> str:
    try:
        return await client.ask(request, lambda a: a.word)
    finally:
        await client.aclose()


def test_a_cut_answer_under_a_lowered_cap_is_asked_again_at_the_ceiling(tmp_path: Path) -> None:
    request = StructuredRequest([{"role": "user", "content": "say a word"}], Echo, 2000, "echo@1", 10)
    with FakeOpenAIServer(keep_bodies=True) as server:
        settings = LLMSettings(base_url=server.base_url, api_key="sk-test", cache_dir=tmp_path / "cache")
        client = LLMClient(settings)
        for _ in range(MIN_SAMPLES):
            client.max_tokens.observe("echo@1", 10)
        server.add_fault(FaultRule("content", content='{"word": "lo', finish_reason="length"))
        answer = asyncio.run(ask_once(client, request))
        first, second = (entry["body"] for route, entry in server.log if route == "chat")
        assert (first["max_tokens"], second["max_tokens"]) == (FLOOR, 2000)
        assert second["messages"] == first["messages"]  # the same request, no "be briefer" re-ask
        assert client.max_tokens.cap("echo@1", 2000) > FLOOR  # the cut answer raised the percentile
        # the answer is cached under the ceiling's key: a client that sends the ceiling finds it
        fresh = LLMClient(settings)
        assert asyncio.run(ask_once(fresh, request)) == answer
        assert server.request_count("chat") == 2
    body = {"model": settings.model, "messages": request.messages, "max_tokens": 2000}
    body["response_format"] = response_format(Echo, "json_schema")
    key = ResponseCache.key(server.base_url, body, {"prompt_version": "echo@1"})
    assert ResponseCache(tmp_path / "cache").get(key) is not None


def test_the_fake_server_counts_a_sliding_window_by_its_rule() -> None:
    now = [0.0]
    billed = SlidingWindow(EnforcedLimit(tpm=1000, rpm=10, rule="billed"), clock=lambda: now[0])
    assert billed.admit(300, 900)[0]
    assert billed.answered(600)["x-ratelimit-remaining-tokens"] == "400"
    admitted, refused = billed.admit(500, None)  # 600 + 500 > 1000
    assert not admitted and refused["retry-after-ms"] == "60000" and refused["x-ratelimit-reset-tokens"] == "1m0s"
    now[0] = 60.0  # the first answer leaves the window
    assert billed.admit(500, None)[0]
    admission = SlidingWindow(EnforcedLimit(tpm=1000, rpm=2, rule="admission"), clock=lambda: now[0])
    assert admission.admit(100, 900)[0]  # counts max(max_tokens, prompt) = 900 now
    assert admission.answered(150)["x-ratelimit-remaining-tokens"] == "100"
    assert not admission.admit(200, None)[0]
    assert admission.stats()["counted"] == [(60.0, 900)] and admission.stats()["billed"] == [(60.0, 150)]
    with pytest.raises(ValueError):
        EnforcedLimit(tpm=0, rpm=1)


def test_the_fake_server_enforces_its_limit_over_http() -> None:
    import openai

    with FakeOpenAIServer(rate_limit=EnforcedLimit(tpm=100_000, rpm=2)) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
        answers = [client.chat.completions.with_raw_response.create(**body) for _ in range(2)]
        assert [a.headers["x-ratelimit-remaining-requests"] for a in answers] == ["1", "0"]
        with pytest.raises(openai.RateLimitError) as refused:
            client.chat.completions.create(**body)
        assert refused.value.response.headers["x-ratelimit-limit-requests"] == "2"
        stats = server.limit_stats()
        assert (stats["admitted"], stats["refused"]) == (2, 1)
    with FakeOpenAIServer() as plain:  # no limit: the old behaviour
        assert plain.limit_stats() is None


def _jpeg(size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.effect_noise(size, 30).convert("RGB").save(buffer, format="JPEG")
    return buffer.getvalue()


@pytest.mark.parametrize("size", [(300, 200), (900, 600)])
def test_images_are_prepared_once_and_the_same_as_before(
    size: tuple[int, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _jpeg(size)
    sha = hashlib.sha256(data).hexdigest()
    expected = prepare_image(data, "image/jpeg", 512)
    store = PreparedImages(tmp_path)
    assert store.get(sha, data, "image/jpeg", 512) == expected
    assert expected.as_is == (size == (300, 200))
    sent = base64.b64decode(expected.url.partition(",")[2])
    assert expected.sha256 == hashlib.sha256(sent).hexdigest()  # the digest the cache key uses
    stored = store.path(sha, 512)
    if expected.as_is:  # sent as it is: nothing to keep on disk, preparing it again is cheap
        assert not stored.exists()
        return

    def no_work(*args: object) -> None:
        raise AssertionError("prepared twice")

    monkeypatch.setattr(images_module, "prepare_image", no_work)
    assert PreparedImages(tmp_path).get(sha, data, "image/jpeg", 512) == expected  # from disk
    monkeypatch.undo()
    stored.write_bytes(stored.read_bytes()[:10])  # torn: prepared again, never served broken
    assert PreparedImages(tmp_path).get(sha, data, "image/jpeg", 512) == expected
    assert not list(tmp_path.rglob("*.tmp"))
