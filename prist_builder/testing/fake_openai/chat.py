"""Chat completion bodies: the default responder, token estimates and the reply object."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from typing import Any

from prist_builder.testing.fake_openai.reply import new_id
from prist_builder.testing.fake_openai.schema_instance import minimal_instance

Responder = Callable[[dict[str, Any]], str | dict[str, Any]]
"""Gets the parsed chat request body; returns the assistant content (str) or a dict sent as JSON."""

IMAGE_PART_TOKENS = 85
"""Fixed prompt-token charge for each `image_url` content part."""

ECHO_LIMIT = 200


def text_tokens(text: str) -> int:
    """Token estimate for `text`: ceil(characters / 4)."""
    return math.ceil(len(text) / 4)


def message_text(message: Any) -> str:
    """Concatenate the text parts of one chat message (string or list-of-parts content)."""
    if not isinstance(message, dict):
        return ""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part.get("text", "") for part in content if isinstance(part, dict) and part.get("type") == "text"
        )
    return ""


def prompt_tokens(body: dict[str, Any]) -> int:
    """Prompt-token estimate: ceil(text chars / 4) over all messages plus 85 per image part."""
    messages = body.get("messages") or []
    chars = sum(len(message_text(m)) for m in messages)
    images = 0
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            images += sum(1 for p in content if isinstance(p, dict) and p.get("type") == "image_url")
    return math.ceil(chars / 4) + IMAGE_PART_TOKENS * images


def default_responder(body: dict[str, Any]) -> str | dict[str, Any]:
    """Answer like a cooperative model.

    With `response_format={"type": "json_schema", ...}` it returns a minimal instance of
    the schema; with `{"type": "json_object"}` a small JSON object; otherwise a short
    echo of the last user message.
    """
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema") or {}
        return json.dumps(minimal_instance(schema), ensure_ascii=False)
    last_user = next(
        (m for m in reversed(body.get("messages") or []) if isinstance(m, dict) and m.get("role") == "user"),
        None,
    )
    echo = message_text(last_user)[:ECHO_LIMIT]
    if isinstance(fmt, dict) and fmt.get("type") == "json_object":
        return {"echo": echo}
    return f"Echo: {echo}"


def render_content(value: str | dict[str, Any] | list[Any]) -> str:
    """Turn a responder result into message content: strings pass through, the rest is JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def chat_completion(body: dict[str, Any], content: str, finish_reason: str = "stop") -> dict[str, Any]:
    """A `chat.completion` object for `body` answering with `content`."""
    prompt = prompt_tokens(body)
    completion = text_tokens(content)
    return {
        "id": new_id("chatcmpl-"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "fake-model"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "finish_reason": finish_reason,
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
        "system_fingerprint": "fp_fake",
    }


def validate_chat_body(body: Any) -> str | None:
    """Return an error message when `body` is not a usable chat request, else None."""
    if not isinstance(body, dict):
        return "The request body must be a JSON object."
    if not body.get("model"):
        return "you must provide a model parameter"
    if not isinstance(body.get("messages"), list) or not body["messages"]:
        return "Missing required parameter: 'messages'."
    return None
