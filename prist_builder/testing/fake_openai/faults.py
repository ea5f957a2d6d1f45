"""Scripted faults: which chat requests or batch lines misbehave, and how."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

CHAT_FAULT_PARAMS: dict[str, frozenset[str]] = {
    "rate_limit": frozenset({"retry_after", "scope"}),
    "insufficient_quota": frozenset(),
    "unauthorized": frozenset(),
    "bad_request": frozenset({"code", "message"}),
    "server_error": frozenset({"status"}),
    "slow": frozenset({"seconds"}),
    "drop": frozenset(),
    "truncated": frozenset(),
    "non_json": frozenset({"content"}),
    "content": frozenset({"content", "finish_reason"}),
    "usage": frozenset({"usage"}),
    "raw": frozenset({"body"}),
    "trickle": frozenset({"seconds_per_byte"}),
}
"""Fault kind -> the keyword parameters it accepts."""

BATCH_FAULT_PARAMS: dict[str, frozenset[str]] = {
    "fail": frozenset({"status", "message"}),
    "expire": frozenset(),
}


def _check(kind: str, times: int, params: dict[str, Any], allowed: dict[str, frozenset[str]]) -> None:
    if kind not in allowed:
        raise ValueError(f"unknown fault kind {kind!r}; expected one of {sorted(allowed)}")
    if times < 1:
        raise ValueError(f"times must be at least 1, got {times}")
    unknown = set(params) - allowed[kind]
    if unknown:
        raise ValueError(f"fault {kind!r} does not take {sorted(unknown)}; allowed: {sorted(allowed[kind])}")


class FaultRule:
    """Make the next `times` chat requests whose body contains `match` misbehave.

    `match=None` matches any request. The body is matched as the client sent it and
    as JSON re-serialised without ASCII escaping, so non-ASCII text can be matched.
    Kinds and their parameters (seconds for all durations):

    - `rate_limit`: 429 `rate_limit_exceeded` with `Retry-After: retry_after` (default 0.05);
      `scope="requests"` (default) or `"tokens"` picks which limit is reported.
    - `insufficient_quota`: 429 with code `insufficient_quota`.
    - `unauthorized`: 401 with code `invalid_api_key`.
    - `bad_request`: 400 with `code` (default `invalid_image`) and `message`.
    - `server_error`: `status` 500 (default), 502 or 503.
    - `slow`: wait `seconds` (default 1.0) before answering normally.
    - `drop`: close the connection without sending a response.
    - `truncated`: 200, content cut in half, `finish_reason="length"`.
    - `non_json`: 200 with prose content (`content` overrides the prose).
    - `content`: 200 with `content` (str, or dict/list sent as JSON) and optional
      `finish_reason` (default "stop").
    - `usage`: the normal answer with its `usage` object replaced by `usage`.
    - `raw`: 200 whose whole body is `body` (dict/list sent as JSON, str/bytes as they are).
    - `trickle`: the normal answer, its body sent one byte every `seconds_per_byte` (0.05).

    Raises ValueError for an unknown kind, an unknown parameter, `times < 1`, or a
    `content` rule without `content`.
    """

    def __init__(self, kind: str, times: int = 1, match: str | None = None, **params: Any) -> None:
        _check(kind, times, params, CHAT_FAULT_PARAMS)
        if kind == "content" and "content" not in params:
            raise ValueError("a 'content' fault needs content=...")
        if kind == "raw" and "body" not in params:
            raise ValueError("a 'raw' fault needs body=...")
        if kind == "server_error" and params.get("status", 500) not in (500, 502, 503):
            raise ValueError("server_error status must be 500, 502 or 503")
        self.kind = kind
        self.times = times
        self.match = match
        self.params = params

    def matches(self, texts: Iterable[str]) -> bool:
        """True when `match` is None or occurs in any of `texts`."""
        return self.match is None or any(self.match in text for text in texts)

    def __repr__(self) -> str:
        return f"FaultRule({self.kind!r}, times={self.times}, match={self.match!r}, params={self.params!r})"


class BatchFaultRule:
    """Make the lines of the next `times` batches that contain `match` fail or expire.

    A rule is spent once per batch that has at least one matching line, and then
    applies to every matching line in that batch. Kinds:

    - `fail`: the line goes to the error file with a non-200 `response`
      (`status`, default 500; optional `message`).
    - `expire`: the batch ends `expired`; matching lines are not run and go to the
      error file with `response: null` and error code `batch_expired`.

    Raises ValueError for an unknown kind or parameter, `times < 1`, or a status outside 400-599.
    """

    def __init__(self, kind: str, match: str, times: int = 1, **params: Any) -> None:
        _check(kind, times, params, BATCH_FAULT_PARAMS)
        if not 400 <= int(params.get("status", 500)) <= 599:
            raise ValueError("a failed batch line needs a 4xx or 5xx status")
        self.kind = kind
        self.match = match
        self.times = times
        self.params = params

    def matches(self, text: str) -> bool:
        """True when `match` occurs in `text` (one serialized input line)."""
        return self.match in text

    def __repr__(self) -> str:
        return f"BatchFaultRule({self.kind!r}, match={self.match!r}, times={self.times}, params={self.params!r})"


class FaultBook:
    """Thread-safe, ordered store of pending rules and how many uses each has left."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[list[Any]] = []  # [rule, remaining uses]

    def add(self, rule: FaultRule | BatchFaultRule) -> None:
        """Queue `rule` after the rules already added."""
        with self._lock:
            self._rules.append([rule, rule.times])

    def clear(self) -> None:
        """Forget every pending rule."""
        with self._lock:
            self._rules.clear()

    def pending(self) -> int:
        """Total uses left over all rules."""
        with self._lock:
            return sum(remaining for _, remaining in self._rules)

    def take_chat(self, texts: Iterable[str]) -> FaultRule | None:
        """Spend one use of the first chat rule matching `texts`; None when no rule matches."""
        texts = tuple(texts)
        with self._lock:
            for entry in self._rules:
                rule = entry[0]
                if isinstance(rule, FaultRule) and rule.matches(texts):
                    self._spend(entry)
                    return rule
        return None

    def take_batch(self, lines: list[str]) -> list[BatchFaultRule]:
        """Spend one use of every batch rule that matches at least one of `lines`."""
        claimed: list[BatchFaultRule] = []
        with self._lock:
            for entry in list(self._rules):
                rule = entry[0]
                if isinstance(rule, BatchFaultRule) and any(rule.matches(line) for line in lines):
                    self._spend(entry)
                    claimed.append(rule)
        return claimed

    def _spend(self, entry: list[Any]) -> None:
        entry[1] -= 1
        if entry[1] <= 0:
            self._rules = [e for e in self._rules if e is not entry]
