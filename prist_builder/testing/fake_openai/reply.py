"""HTTP reply values and helpers shared by the fake server's routes."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Reply:
    """One HTTP answer: status, extra headers and the raw body.

    `drop=True` means "send nothing and close the TCP connection".
    """

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    drop: bool = False
    trickle_s: float = 0.0
    """Seconds between two body bytes (0: the body goes in one write)."""


DROP = Reply(drop=True)


def new_id(prefix: str, length: int = 24) -> str:
    """Return a random id such as `chatcmpl-3fa9...` (`prefix` includes its separator)."""
    return prefix + secrets.token_hex(length // 2 + 1)[:length]


def to_json_bytes(obj: Any) -> bytes:
    """Serialise `obj` as compact UTF-8 JSON."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def json_reply(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    """A JSON reply with the given status and extra headers."""
    return Reply(status=status, body=to_json_bytes(obj), headers=dict(headers or {}))


def error_body(message: str, type_: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    """The `{"error": {...}}` envelope the real API uses for every failure."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def error_reply(
    status: int,
    message: str,
    type_: str = "invalid_request_error",
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    """A JSON error reply in the real API's error format."""
    return json_reply(error_body(message, type_, code), status=status, headers=headers)


def duration_text(seconds: float) -> str:
    """Format a duration like the `x-ratelimit-reset-*` headers: `250ms`, `1s`, `1.5s`, `6m0s`."""
    if seconds < 1:
        return f"{max(0, round(seconds * 1000))}ms"
    if seconds < 60:
        return f"{seconds:g}s"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}m{rest:g}s"
