"""Request routing for the fake server: chat (with faults), files and batches."""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from prist_builder.testing.fake_openai import chat
from prist_builder.testing.fake_openai.batches import BatchStore, FakeBatchLimits, FileStore
from prist_builder.testing.fake_openai.faults import FaultBook, FaultRule
from prist_builder.testing.fake_openai.limits import EnforcedLimit, SlidingWindow
from prist_builder.testing.fake_openai.multipart import parse_form
from prist_builder.testing.fake_openai.reply import (
    DROP,
    Reply,
    duration_text,
    error_body,
    error_reply,
    json_reply,
)

REQUEST_LIMIT = 10_000
TOKEN_LIMIT = 2_000_000
NON_JSON_PROSE = "Sure! Here is what I found in the image: a dog on a sofa, next to a red cushion."

LogEntry = tuple[str, dict[str, Any]]
Handler = Callable[[re.Match[str], bytes, Mapping[str, str], dict[str, Any]], Reply]
"""(path match, raw body, request headers, this request's log summary to add to) -> reply."""


class FakeOpenAIApp:
    """Turns one HTTP request into a `Reply`; holds counters, the log and all state.

    Thread-safe: the HTTP server calls `handle` from one thread per connection.
    `stop` is set when the server shuts down, which cuts every scripted wait short.
    """

    def __init__(
        self,
        responder: chat.Responder | None,
        latency_s: float,
        batch_polls_until_done: int,
        stop: threading.Event,
        rate_limit: EnforcedLimit | None = None,
        batch_limits: FakeBatchLimits | None = None,
        keep_bodies: bool = False,
    ) -> None:
        self.keep_bodies = keep_bodies
        """Keep each chat request's parsed body in the log (else its size and SHA-256 only)."""
        self.responder = responder or chat.default_responder
        self.window = SlidingWindow(rate_limit) if rate_limit is not None else None
        """The enforced rate limit's counters, when one is set."""
        self.latency_s = latency_s
        self.faults = FaultBook()
        self.files = FileStore()
        self.batch_lines_run: Counter[str] = Counter()
        self.batches = BatchStore(
            self.files,
            self.faults,
            self._answer_line,
            batch_polls_until_done,
            self._count_line,
            batch_limits,
        )
        self.log: list[LogEntry] = []
        self._stop = stop
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._second = (0, 0)  # (unix second, chat requests in it) for x-ratelimit-remaining
        self._routes: list[tuple[str, re.Pattern[str], str, Handler]] = [
            ("POST", re.compile(r"/v1/chat/completions"), "chat", self._chat),
            ("POST", re.compile(r"/v1/files"), "files", self._file_upload),
            ("GET", re.compile(r"/v1/files"), "files", self._file_list),
            ("GET", re.compile(r"/v1/files/(?P<id>[^/]+)"), "files", self._file_get),
            ("DELETE", re.compile(r"/v1/files/(?P<id>[^/]+)"), "files", self._file_delete),
            ("GET", re.compile(r"/v1/files/(?P<id>[^/]+)/content"), "files", self._file_content),
            ("POST", re.compile(r"/v1/batches"), "batches", self._batch_create),
            ("GET", re.compile(r"/v1/batches"), "batches", self._batch_list),
            ("GET", re.compile(r"/v1/batches/(?P<id>[^/]+)"), "batches", self._batch_get),
            ("POST", re.compile(r"/v1/batches/(?P<id>[^/]+)/cancel"), "batches", self._batch_cancel),
        ]

    # ---- bookkeeping -------------------------------------------------------------

    def request_count(self, route: str | None = None) -> int:
        """HTTP requests received on `route` ("chat", "files", "batches", "other"), or all.

        `"batch_lines"` counts batch input lines that were run; they are not HTTP
        requests and are not part of the total.
        """
        with self._lock:
            if route is None:
                return sum(n for name, n in self._counts.items() if name != "batch_lines")
            return self._counts[route]

    def _count(self, route: str) -> None:
        with self._lock:
            self._counts[route] += 1

    def _count_line(self, custom_id: str) -> None:
        with self._lock:
            self._counts["batch_lines"] += 1
            self.batch_lines_run[custom_id] += 1

    def batch_custom_ids(self) -> Counter[str]:
        """How many times each batch line (by ``custom_id``) was run: ids only, no bodies."""
        with self._lock:
            return Counter(self.batch_lines_run)

    def _record(self, route: str, summary: dict[str, Any]) -> None:
        with self._lock:
            self._counts[route] += 1
            self.log.append((route, summary))

    # ---- dispatch ----------------------------------------------------------------

    def handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Reply:
        """Route one request; unknown paths get the real API's 404 error body."""
        path = target.split("?", 1)[0].rstrip("/") or "/"
        for verb, pattern, route, handler in self._routes:
            match = pattern.fullmatch(path)
            if verb == method and match:
                summary: dict[str, Any] = {"method": method, "path": path}
                self._record(route, summary)
                return handler(match, body, headers, summary)
        self._record("other", {"method": method, "path": path})
        return error_reply(404, f"Invalid URL ({method} {path})")

    def stopping(self, wait_s: float) -> bool:
        """Wait up to ``wait_s`` seconds; True if the server is stopping (cut the wait short)."""
        return self._stop.wait(wait_s)

    # ---- chat ----------------------------------------------------------------------

    def _chat(self, _m: re.Match[str], raw: bytes, headers: Mapping[str, str], summary: dict[str, Any]) -> Reply:
        body = _loads(raw)
        summary.update(fault=None, headers=dict(headers), bytes=len(raw), sha256=hashlib.sha256(raw).hexdigest())
        if self.keep_bodies:  # a test asked: bodies hold the images (~1 MB a PRIST request)
            summary["body"] = body
        problem = chat.validate_chat_body(body)
        if problem is not None:
            return error_reply(400, problem)
        texts = (raw.decode("utf-8", "replace"), json.dumps(body, ensure_ascii=False))
        rule = self.faults.take_chat(texts)
        summary["fault"] = rule.kind if rule else None
        if rule is not None:
            early = self._early_fault(rule, body)
            if early is not None:
                return early
        if self.window is not None:
            max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
            admitted, limit_headers = self.window.admit(
                chat.prompt_tokens(body), max_tokens if isinstance(max_tokens, int) else None
            )
            if not admitted:
                summary["fault"] = "rate_limited"
                message = f"Rate limit reached for {body.get('model')} in organization org-fake. Please try again."
                return error_reply(429, message, "tokens", "rate_limit_exceeded", limit_headers)
        if self._stop.wait(self.latency_s):
            return DROP  # the server is stopping: in-flight requests get no answer
        kind = rule.kind if rule is not None else None
        if rule is not None and kind == "raw":
            raw_body = rule.params["body"]
            if isinstance(raw_body, (dict, list)):
                return json_reply(raw_body)
            return Reply(body=raw_body.encode("utf-8") if isinstance(raw_body, str) else bytes(raw_body))
        finish_reason = "stop"
        if rule is not None and kind == "content":
            content = chat.render_content(rule.params["content"])
            finish_reason = rule.params.get("finish_reason", "stop")
        elif rule is not None and kind == "non_json":
            content = rule.params.get("content", NON_JSON_PROSE)
        else:
            try:
                content = chat.render_content(self.responder(body))
            except Exception as exc:  # the responder is test code; report its failure as a 500
                return error_reply(500, f"responder raised {type(exc).__name__}: {exc}", "server_error")
            if kind == "truncated":
                content, finish_reason = content[: len(content) // 2], "length"
        completion = chat.chat_completion(body, content, finish_reason)
        if self.window is not None:
            headers = self.window.answered(completion["usage"]["total_tokens"])
        else:
            headers = self._limit_headers(completion["usage"]["prompt_tokens"])
        reply = json_reply(completion, headers=headers)
        if rule is not None and kind == "usage":
            completion["usage"] = rule.params["usage"]
            reply.body = json.dumps(completion).encode("utf-8")
        if rule is not None and kind == "trickle":
            reply.trickle_s = float(rule.params.get("seconds_per_byte", 0.05))
        return reply

    def _early_fault(self, rule: FaultRule, body: dict[str, Any]) -> Reply | None:
        """Faults that replace the answer (errors, drops) or delay it (`slow`)."""
        kind = rule.kind
        if kind == "drop":
            return DROP
        if kind == "slow":
            return DROP if self._stop.wait(float(rule.params.get("seconds", 1.0))) else None
        if kind == "rate_limit":
            return self._rate_limited(rule, body)
        if kind == "insufficient_quota":
            message = (
                "You exceeded your current quota, please check your plan and billing details. For more "
                "information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes."
            )
            return json_reply(error_body(message, "insufficient_quota", "insufficient_quota"), 429)
        if kind == "unauthorized":
            message = "Incorrect API key provided. You can find your API key in your account settings."
            return json_reply(error_body(message, "invalid_request_error", "invalid_api_key"), 401)
        if kind == "bad_request":
            message = str(rule.params.get("message", "The image could not be processed."))
            return json_reply(
                error_body(message, "invalid_request_error", str(rule.params.get("code", "invalid_image"))), 400
            )
        if kind == "server_error":
            status = int(rule.params.get("status", 500))
            message = (
                "The engine is currently overloaded, please try again later."
                if status == 503
                else "The server had an error while processing your request. Sorry about that!"
            )
            return json_reply(error_body(message, "server_error"), status)
        return None

    def _rate_limited(self, rule: FaultRule, body: dict[str, Any]) -> Reply:
        retry_after = float(rule.params.get("retry_after", 0.05))
        scope = rule.params.get("scope", "requests")
        wait = duration_text(retry_after)
        unit, limit = (
            ("requests per min (RPM)", REQUEST_LIMIT) if scope == "requests" else ("tokens per min (TPM)", TOKEN_LIMIT)
        )
        message = (
            f"Rate limit reached for {body.get('model')} in organization org-fake on {unit}: "
            f"Limit {limit}, Used {limit}, Requested 1. Please try again in {wait}."
        )
        headers = {
            "retry-after": f"{retry_after:g}",
            "x-ratelimit-limit-requests": str(REQUEST_LIMIT),
            "x-ratelimit-limit-tokens": str(TOKEN_LIMIT),
            "x-ratelimit-remaining-requests": "0" if scope == "requests" else str(REQUEST_LIMIT - 1),
            "x-ratelimit-remaining-tokens": "0" if scope == "tokens" else str(TOKEN_LIMIT),
            "x-ratelimit-reset-requests": wait if scope == "requests" else "1ms",
            "x-ratelimit-reset-tokens": wait if scope == "tokens" else "1ms",
        }
        return json_reply(error_body(message, scope, "rate_limit_exceeded"), 429, headers)

    def _limit_headers(self, prompt_tokens: int) -> dict[str, str]:
        now = int(time.time())
        with self._lock:
            second, used = self._second
            used = used + 1 if second == now else 1
            self._second = (now, used)
        return {
            "x-ratelimit-limit-requests": str(REQUEST_LIMIT),
            "x-ratelimit-limit-tokens": str(TOKEN_LIMIT),
            "x-ratelimit-remaining-requests": str(max(0, REQUEST_LIMIT - used)),
            "x-ratelimit-remaining-tokens": str(max(0, TOKEN_LIMIT - prompt_tokens)),
            "x-ratelimit-reset-requests": "1s",
            "x-ratelimit-reset-tokens": "250ms",
        }

    def _answer_line(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Answer one batch line with the responder (no latency, no chat faults)."""
        problem = chat.validate_chat_body(body)
        if problem is not None:
            return 400, error_body(problem, "invalid_request_error")
        try:
            content = chat.render_content(self.responder(body))
        except Exception as exc:  # reported per line, like a server error
            return 500, error_body(f"responder raised {type(exc).__name__}: {exc}", "server_error")
        return 200, chat.chat_completion(body, content)

    # ---- files ---------------------------------------------------------------------

    def _file_upload(self, _m: re.Match[str], raw: bytes, headers: Mapping[str, str], summary: dict[str, Any]) -> Reply:
        try:
            form = parse_form(headers.get("content-type", ""), raw)
        except ValueError as exc:
            return error_reply(400, str(exc))
        if "file" not in form or "purpose" not in form:
            return error_reply(400, "Both 'file' and 'purpose' form fields are required.")
        part = form["file"]
        purpose = form["purpose"].data.decode("utf-8")
        meta = self.files.add(part.filename or "upload", purpose, part.data)
        summary.update(filename=meta["filename"], purpose=purpose, bytes=meta["bytes"])
        return json_reply(meta)

    def _file_list(self, _m: re.Match[str], _raw: bytes, _h: Mapping[str, str], _s: dict[str, Any]) -> Reply:
        return json_reply(_page(self.files.all()))

    def _file_get(self, m: re.Match[str], _raw: bytes, _h: Mapping[str, str], _s: dict[str, Any]) -> Reply:
        meta = self.files.get(m["id"])
        return json_reply(meta) if meta else _missing("File", m["id"])

    def _file_delete(self, m: re.Match[str], _raw: bytes, _h: Mapping[str, str], _s: dict[str, Any]) -> Reply:
        if not self.files.delete(m["id"]):
            return _missing("File", m["id"])
        return json_reply({"id": m["id"], "object": "file", "deleted": True})

    def _file_content(self, m: re.Match[str], _raw: bytes, _h: Mapping[str, str], _s: dict[str, Any]) -> Reply:
        data = self.files.content(m["id"])
        if data is None:
            return _missing("File", m["id"])
        return Reply(body=data, content_type="application/octet-stream")

    # ---- batches -------------------------------------------------------------------

    def _batch_create(self, _m: re.Match[str], raw: bytes, _h: Mapping[str, str], summary: dict[str, Any]) -> Reply:
        body = _loads(raw)
        summary["body"] = body
        if not isinstance(body, dict) or not body.get("input_file_id"):
            return error_reply(400, "Missing required parameter: 'input_file_id'.")
        try:
            batch = self.batches.create(
                body["input_file_id"],
                body.get("endpoint", ""),
                body.get("completion_window", ""),
                body.get("metadata"),
            )
        except LookupError as exc:
            return error_reply(404, str(exc))
        except ValueError as exc:
            return error_reply(400, str(exc))
        return json_reply(batch)

    def _batch_list(self, _m: re.Match[str], _raw: bytes, _h: Mapping[str, str], _s: dict[str, Any]) -> Reply:
        return json_reply(_page(self.batches.all()))

    def _batch_get(self, m: re.Match[str], _raw: bytes, _h: Mapping[str, str], _s: dict[str, Any]) -> Reply:
        batch = self.batches.retrieve(m["id"])
        return json_reply(batch) if batch else _missing("Batch", m["id"])

    def _batch_cancel(self, m: re.Match[str], _raw: bytes, _h: Mapping[str, str], _s: dict[str, Any]) -> Reply:
        try:
            batch = self.batches.cancel(m["id"])
        except ValueError as exc:
            return error_reply(400, str(exc))
        return json_reply(batch) if batch else _missing("Batch", m["id"])


def _loads(raw: bytes) -> Any:
    """Parse a JSON body; None when it is empty or not JSON."""
    try:
        return json.loads(raw) if raw else None
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def _page(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "object": "list",
        "data": items,
        "first_id": items[0]["id"] if items else None,
        "last_id": items[-1]["id"] if items else None,
        "has_more": False,
    }


def _missing(kind: str, object_id: str) -> Reply:
    return error_reply(404, f"No such {kind} object: {object_id}")


__all__ = ["FakeOpenAIApp", "LogEntry"]
