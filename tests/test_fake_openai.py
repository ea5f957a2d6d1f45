"""The fake OpenAI server, driven by the real `openai` client over 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any, Literal

import openai
import pytest
from openai.types.chat import ChatCompletion
from pydantic import BaseModel

from prist_builder.testing import BatchFaultRule, FakeOpenAIServer, FaultRule
from prist_builder.testing.fake_openai import minimal_instance

MODEL = "gpt-test"


def ask(client: openai.OpenAI, text: str = "hello", **kwargs: Any) -> ChatCompletion:
    return client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": text}], **kwargs)


# ---- plain replies ---------------------------------------------------------------------


def test_reply_looks_like_the_real_api(server: FakeOpenAIServer, client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=[{"role": "user", "content": "hello"}])
    assert raw.status_code == 200
    assert raw.headers["x-request-id"].startswith("req_")
    assert raw.headers["x-ratelimit-limit-requests"] == "10000"
    assert int(raw.headers["x-ratelimit-remaining-requests"]) < 10000
    assert raw.headers["x-ratelimit-reset-requests"] == "1s"
    assert raw.headers["x-ratelimit-reset-tokens"] == "250ms"
    completion = raw.parse()
    assert completion.id.startswith("chatcmpl-")
    assert completion.model == MODEL
    choice = completion.choices[0]
    assert (choice.finish_reason, choice.message.role, choice.message.refusal) == ("stop", "assistant", None)
    assert choice.message.content == "Echo: hello"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == math.ceil(len("hello") / 4)
    assert completion.usage.completion_tokens == math.ceil(len("Echo: hello") / 4)
    assert server.request_count("chat") == server.request_count() == 1
    route, summary = server.log[0]
    assert route == "chat" and summary["body"]["model"] == MODEL and summary["fault"] is None


def test_usage_counts_text_parts_and_images(client: openai.OpenAI) -> None:
    messages: list[Any] = [
        {"role": "system", "content": "x" * 10},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "y" * 7},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,BBBB"}},
            ],
        },
    ]
    completion = client.chat.completions.create(model=MODEL, messages=messages)
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == math.ceil(17 / 4) + 2 * 85


def test_keep_alive_reuses_one_connection(server: FakeOpenAIServer, client: openai.OpenAI) -> None:
    for i in range(5):
        ask(client, f"turn {i}")
    assert server.connections_accepted() == 1


def test_custom_responder_dict_and_failure() -> None:
    def responder(body: dict[str, Any]) -> dict[str, Any]:
        if "boom" in body["messages"][-1]["content"]:
            raise RuntimeError("scripted failure")
        return {"label": "cup", "n": len(body["messages"])}

    with (
        FakeOpenAIServer(responder=responder) as fake,
        openai.OpenAI(base_url=fake.base_url, api_key="sk-test", max_retries=0) as sync_client,
    ):
        assert json.loads(ask(sync_client).choices[0].message.content or "") == {"label": "cup", "n": 1}
        with pytest.raises(openai.InternalServerError, match="scripted failure"):
            ask(sync_client, "boom")


def test_unknown_route_is_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        client.models.list()


# ---- structured outputs ------------------------------------------------------------------


class Part(BaseModel):
    name: str
    kind: Literal["object", "region"]
    score: float


class Node(BaseModel):
    question: str
    children: list[Node]


class Answer(BaseModel):
    title: str
    count: int
    ok: bool
    parts: list[Part]
    note: str | None
    tree: Node


def test_strict_json_schema_round_trip_with_parse(server: FakeOpenAIServer, client: openai.OpenAI) -> None:
    completion = client.chat.completions.parse(
        model=MODEL, messages=[{"role": "user", "content": "describe"}], response_format=Answer
    )
    parsed = completion.choices[0].message.parsed
    assert isinstance(parsed, Answer)
    assert parsed.tree.children == [] and parsed.parts == [] and parsed.note == ""
    sent = server.log[-1][1]["body"]["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["strict"] is True


def test_json_schema_dict_with_refs_enums_and_bounds(client: openai.OpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {
            "label": {"enum": ["cup", "mug"]},
            "boxes": {"type": "array", "minItems": 2, "items": {"$ref": "#/$defs/box"}},
            "maybe": {"anyOf": [{"type": "null"}, {"type": "integer", "minimum": 3}]},
        },
        "required": ["label", "boxes", "maybe"],
        "additionalProperties": False,
        "$defs": {
            "box": {
                "type": "object",
                "properties": {
                    "x": {"type": "number", "exclusiveMinimum": 0},
                    "tag": {"type": "string", "minLength": 2},
                },
                "required": ["x", "tag"],
                "additionalProperties": False,
            }
        },
    }
    completion = ask(
        client,
        response_format={"type": "json_schema", "json_schema": {"name": "boxes", "schema": schema, "strict": True}},
    )
    value = json.loads(completion.choices[0].message.content or "")
    assert value["label"] == "cup" and value["maybe"] == 3
    assert len(value["boxes"]) == 2 and all(b["x"] > 0 and len(b["tag"]) == 2 for b in value["boxes"])


def test_minimal_instance_cases() -> None:
    assert minimal_instance({"type": ["null", "string"], "minLength": 1}) == "x"
    assert minimal_instance({"const": 7}) == 7
    assert minimal_instance({"type": "integer", "minimum": 2.5, "maximum": 9}) == 3
    assert minimal_instance({"type": "string", "format": "date"}) == "1970-01-01"
    assert minimal_instance({"allOf": [{"properties": {"a": {"type": "boolean"}}}, {"properties": {"b": {}}}]}) == {
        "a": False,
        "b": None,
    }
    loop = {"$defs": {"n": {"type": "object", "properties": {"next": {"$ref": "#/$defs/n"}}}}, "$ref": "#/$defs/n"}
    value = minimal_instance(loop)
    depth = 0
    while isinstance(value, dict):
        value, depth = value["next"], depth + 1
    assert value is None and depth > 10
    with pytest.raises(ValueError):
        minimal_instance({"$ref": "#/$defs/missing"})


# ---- chat faults -------------------------------------------------------------------------

ERROR_FAULTS = [
    ("rate_limit", {}, openai.RateLimitError, 429, "rate_limit_exceeded"),
    ("insufficient_quota", {}, openai.RateLimitError, 429, "insufficient_quota"),
    ("unauthorized", {}, openai.AuthenticationError, 401, "invalid_api_key"),
    ("server_error", {}, openai.InternalServerError, 500, None),
    ("server_error", {"status": 503}, openai.InternalServerError, 503, None),
]


@pytest.mark.parametrize(("kind", "params", "error", "status", "code"), ERROR_FAULTS)
def test_error_faults_raise_the_right_exception(
    server: FakeOpenAIServer,
    client: openai.OpenAI,
    kind: str,
    params: dict[str, Any],
    error: type[openai.APIStatusError],
    status: int,
    code: str | None,
) -> None:
    server.add_fault(FaultRule(kind, **params))
    with pytest.raises(error) as caught:
        ask(client)
    assert caught.value.status_code == status
    assert caught.value.code == code
    assert caught.value.request_id is not None
    assert ask(client).choices[0].message.content == "Echo: hello"  # one use only
    assert server.pending_faults() == 0


def test_rate_limit_headers_are_readable(server: FakeOpenAIServer, client: openai.OpenAI) -> None:
    server.add_fault(FaultRule("rate_limit", retry_after=1.5))
    with pytest.raises(openai.RateLimitError) as caught:
        ask(client)
    headers = caught.value.response.headers
    assert headers["retry-after"] == "1.5"
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert headers["x-ratelimit-reset-requests"] == "1.5s"
    assert caught.value.type == "requests"


def test_slow_fault_times_out_the_client(server: FakeOpenAIServer, client: openai.OpenAI) -> None:
    server.add_fault(FaultRule("slow", seconds=0.6))
    with pytest.raises(openai.APITimeoutError):
        ask(client, timeout=0.2)
    assert ask(client).choices[0].finish_reason == "stop"


def test_drop_fault_is_a_connection_error(server: FakeOpenAIServer, client: openai.OpenAI) -> None:
    server.add_fault(FaultRule("drop"))
    with pytest.raises(openai.APIConnectionError) as caught:
        ask(client)
    assert not isinstance(caught.value, openai.APITimeoutError)
    assert ask(client).choices[0].message.content == "Echo: hello"


def test_truncated_fault_cuts_content_and_sets_length(server: FakeOpenAIServer, client: openai.OpenAI) -> None:
    server.add_fault(FaultRule("truncated"))
    choice = ask(client, "abcdefgh").choices[0]
    assert choice.finish_reason == "length"
    assert choice.message.content == "Echo: abcdefgh"[: len("Echo: abcdefgh") // 2]
    server.add_fault(FaultRule("truncated"))
    with pytest.raises(openai.LengthFinishReasonError):
        client.chat.completions.parse(model=MODEL, messages=[{"role": "user", "content": "x"}], response_format=Part)


def test_non_json_and_content_faults(server: FakeOpenAIServer, client: openai.OpenAI) -> None:
    fenced = 'Here you go:\n```json\n{"name": "cup"}\n```'
    server.add_fault(FaultRule("non_json"))
    server.add_fault(FaultRule("content", content=fenced))
    server.add_fault(FaultRule("content", content={"children": [1, 2, 3, 4]}, finish_reason="content_filter"))
    fmt = {"type": "json_schema", "json_schema": {"name": "p", "schema": {"type": "object"}, "strict": True}}
    prose = ask(client, response_format=fmt).choices[0].message.content or ""
    with pytest.raises(json.JSONDecodeError):
        json.loads(prose)
    assert ask(client).choices[0].message.content == fenced
    last = ask(client).choices[0]
    assert json.loads(last.message.content or "") == {"children": [1, 2, 3, 4]}
    assert last.finish_reason == "content_filter"


def test_rules_apply_in_order_added_and_respect_match(server: FakeOpenAIServer, client: openai.OpenAI) -> None:
    server.add_fault(FaultRule("content", match="special", content="A"))
    server.add_fault(FaultRule("rate_limit", times=2))
    server.add_fault(FaultRule("unauthorized"))
    assert ask(client, "special").choices[0].message.content == "A"
    for _ in range(2):
        with pytest.raises(openai.RateLimitError):
            ask(client)
    with pytest.raises(openai.AuthenticationError):
        ask(client)
    assert ask(client).choices[0].message.content == "Echo: hello"
    assert [s["fault"] for _, s in server.log] == ["content", "rate_limit", "rate_limit", "unauthorized", None]


def test_match_sees_non_ascii_text(server: FakeOpenAIServer, client: openai.OpenAI) -> None:
    server.add_fault(FaultRule("server_error", match="Straße"))
    assert ask(client, "Strasse").choices[0].finish_reason == "stop"
    with pytest.raises(openai.InternalServerError):
        ask(client, "die Straße")


def test_match_targets_the_right_requests_under_concurrency(server: FakeOpenAIServer) -> None:
    server.add_fault(FaultRule("rate_limit", match="item-07"))
    server.add_fault(FaultRule("server_error", match="item-13"))
    server.add_fault(FaultRule("content", match="item-21", content="special"))

    async def run() -> dict[int, str]:
        async with openai.AsyncOpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0) as aclient:

            async def one(i: int) -> tuple[int, str]:
                try:
                    completion = await aclient.chat.completions.create(
                        model=MODEL, messages=[{"role": "user", "content": f"item-{i:02d}"}]
                    )
                except openai.APIStatusError as err:
                    return i, f"error {err.status_code}"
                return i, completion.choices[0].message.content or ""

            return dict(await asyncio.gather(*(one(i) for i in range(40))))

    outcome = asyncio.run(run())
    assert outcome.pop(7) == "error 429" and outcome.pop(13) == "error 500" and outcome.pop(21) == "special"
    assert all(text == f"Echo: item-{i:02d}" for i, text in outcome.items())
    assert server.request_count("chat") == 40 and server.pending_faults() == 0


def test_fault_rule_validation() -> None:
    with pytest.raises(ValueError):
        FaultRule("explode")
    with pytest.raises(ValueError):
        FaultRule("rate_limit", seconds=1)
    with pytest.raises(ValueError):
        FaultRule("content")
    with pytest.raises(ValueError):
        FaultRule("drop", times=0)
    with pytest.raises(ValueError):
        BatchFaultRule("vanish", match="x")


def test_the_log_keeps_digests_not_bodies_unless_asked() -> None:
    """A PRIST-sized build sends ~1 MB a request: by default the log holds its size and digest only."""
    import hashlib

    with FakeOpenAIServer() as fake:
        sync = openai.OpenAI(base_url=fake.base_url, api_key="sk-test", max_retries=0)
        sync.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x" * 10_000}])
        ((route, summary),) = fake.log
    assert route == "chat" and "body" not in summary
    assert summary["bytes"] > 10_000 and len(summary["sha256"]) == len(hashlib.sha256().hexdigest())
