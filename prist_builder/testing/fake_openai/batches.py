"""In-memory Files and Batch API state for the fake server."""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prist_builder.testing.fake_openai.chat import prompt_tokens
from prist_builder.testing.fake_openai.faults import BatchFaultRule, FaultBook
from prist_builder.testing.fake_openai.reply import error_body, new_id

BATCH_WINDOW_S = 24 * 3600
EXPIRED_MESSAGE = "This request could not be executed before the completion window expired."
SUPPORTED_ENDPOINT = "/v1/chat/completions"

LineAnswer = Callable[[dict[str, Any]], "tuple[int, dict[str, Any]]"]
"""Answers one batch line's request body with (HTTP status, response body)."""


class FileStore:
    """Thread-safe store of uploaded and generated files (metadata plus bytes)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._meta: dict[str, dict[str, Any]] = {}
        self._data: dict[str, bytes] = {}

    def add(self, filename: str, purpose: str, data: bytes) -> dict[str, Any]:
        """Store `data` and return its file object (a copy)."""
        meta = {
            "id": new_id("file-"),
            "object": "file",
            "bytes": len(data),
            "created_at": int(time.time()),
            "filename": filename,
            "purpose": purpose,
            "status": "processed",
            "status_details": None,
            "expires_at": None,
        }
        with self._lock:
            self._meta[meta["id"]] = meta
            self._data[meta["id"]] = data
        return dict(meta)

    def get(self, file_id: str) -> dict[str, Any] | None:
        """The file object, or None when unknown."""
        with self._lock:
            meta = self._meta.get(file_id)
            return dict(meta) if meta else None

    def content(self, file_id: str) -> bytes | None:
        """The stored bytes, or None when unknown."""
        with self._lock:
            return self._data.get(file_id)

    def delete(self, file_id: str) -> bool:
        """Forget a file; False when it was unknown."""
        with self._lock:
            self._data.pop(file_id, None)
            return self._meta.pop(file_id, None) is not None

    def all(self) -> list[dict[str, Any]]:
        """Every file object, newest first."""
        with self._lock:
            return [dict(m) for m in reversed(self._meta.values())]


@dataclass(frozen=True)
class FakeBatchLimits:
    """OpenAI's Batch API limits, scaled down for tests.

    Attributes:
        max_bytes: bytes of one input file (real: 200 MB).
        max_requests: lines of one input file (real: 50,000).
        enqueued_tokens: tokens of the batches in progress together, per organisation and
            model (real: per usage tier); each line counts its prompt estimate
            (:func:`.chat.prompt_tokens`) plus its ``max_tokens``. A batch over it fails with
            ``token_limit_exceeded``, as the real API's does. None: no limit.
    """

    max_bytes: int | None = None
    max_requests: int | None = None
    enqueued_tokens: int | None = None


TOKEN_LIMIT_MESSAGE = (
    "Enqueued token limit reached for {model} in organization org-fake. Limit: {limit:,} enqueued tokens."
    " Please try again once some in_progress batches have been completed."
)


@dataclass
class _BatchState:
    obj: dict[str, Any]
    polls: int = 0
    tokens: int = 0


class BatchStore:
    """Batches that finish after a set number of `retrieve` polls.

    Status goes `validating` (on create) -> `in_progress` (first polls) ->
    `completed`/`expired`/`failed` on poll number `polls_until_done`
    (0 finishes at creation). Finishing runs every input line through
    `answer`, applies the claimed `BatchFaultRule`s and writes the output and
    error files into `files`. `on_line` is called with its custom_id once per line that is run.
    """

    def __init__(
        self,
        files: FileStore,
        faults: FaultBook,
        answer: LineAnswer,
        polls_until_done: int = 1,
        on_line: Callable[[str], None] = lambda custom_id: None,
        limits: FakeBatchLimits | None = None,
    ) -> None:
        if polls_until_done < 0:
            raise ValueError("polls_until_done must be >= 0")
        self._files = files
        self._faults = faults
        self._answer = answer
        self._polls_until_done = polls_until_done
        self._on_line = on_line
        self.limits = limits or FakeBatchLimits()
        self._lock = threading.RLock()
        self._batches: dict[str, _BatchState] = {}

    def create(self, input_file_id: str, endpoint: str, completion_window: str, metadata: Any) -> dict[str, Any]:
        """Create a batch and return its object.

        Raises LookupError for an unknown input file and ValueError for an
        unsupported endpoint, completion window or file purpose.
        """
        meta = self._files.get(input_file_id)
        if meta is None:
            raise LookupError(f"No such File object: {input_file_id}")
        if meta["purpose"] != "batch":
            raise ValueError(f"File {input_file_id} has purpose {meta['purpose']!r}; batches need 'batch'.")
        if endpoint != SUPPORTED_ENDPOINT:
            raise ValueError(f"The fake server only batches {SUPPORTED_ENDPOINT}, not {endpoint!r}.")
        if completion_window != "24h":
            raise ValueError("completion_window must be '24h'.")
        now = int(time.time())
        obj: dict[str, Any] = {
            "id": new_id("batch_"),
            "object": "batch",
            "endpoint": endpoint,
            "errors": None,
            "input_file_id": input_file_id,
            "completion_window": completion_window,
            "status": "validating",
            "output_file_id": None,
            "error_file_id": None,
            "created_at": now,
            "in_progress_at": None,
            "expires_at": now + BATCH_WINDOW_S,
            "finalizing_at": None,
            "completed_at": None,
            "failed_at": None,
            "expired_at": None,
            "cancelling_at": None,
            "cancelled_at": None,
            "request_counts": {"total": 0, "completed": 0, "failed": 0},
            "metadata": metadata,
        }
        state = _BatchState(obj)
        with self._lock:
            self._batches[obj["id"]] = state
            problem = self._over_limits(state)
            if problem is not None:
                obj.update(status="failed", failed_at=now, errors={"object": "list", "data": [problem]})
            elif self._polls_until_done == 0:
                self._finish(state)
            return copy.deepcopy(state.obj)

    def _over_limits(self, state: _BatchState) -> dict[str, Any] | None:
        """The batch-level error of a batch over a limit (None when within them); sets its tokens."""
        limits = self.limits
        data = self._files.content(state.obj["input_file_id"]) or b""
        lines = self._lines(state)
        if limits.max_bytes is not None and len(data) > limits.max_bytes:
            message = f"The input file is {len(data):,} bytes; a batch input file may hold {limits.max_bytes:,}."
            return {"code": "file_too_large", "line": None, "message": message, "param": None}
        if limits.max_requests is not None and len(lines) > limits.max_requests:
            message = f"The input file has {len(lines):,} requests; a batch may hold {limits.max_requests:,}."
            return {"code": "too_many_requests", "line": None, "message": message, "param": None}
        model, tokens = "", 0
        for text in lines:
            try:
                body = json.loads(text).get("body") or {}
            except (json.JSONDecodeError, AttributeError):
                continue  # found again by the validation when the batch runs
            model = model or str(body.get("model", ""))
            cap = body.get("max_completion_tokens") or body.get("max_tokens") or 0
            tokens += prompt_tokens(body) + (cap if isinstance(cap, int) else 0)
        state.tokens = tokens
        if limits.enqueued_tokens is None:
            return None
        running = ("validating", "in_progress")
        enqueued = sum(s.tokens for s in self._batches.values() if s is not state and s.obj["status"] in running)
        if enqueued + tokens > limits.enqueued_tokens:
            message = TOKEN_LIMIT_MESSAGE.format(model=model, limit=limits.enqueued_tokens)
            return {"code": "token_limit_exceeded", "line": None, "message": message, "param": None}
        return None

    def retrieve(self, batch_id: str) -> dict[str, Any] | None:
        """Count one poll, move the batch along, and return it (None when unknown)."""
        with self._lock:
            state = self._batches.get(batch_id)
            if state is None:
                return None
            state.polls += 1
            status = state.obj["status"]
            if status == "cancelling":
                state.obj.update(status="cancelled", cancelled_at=int(time.time()))
            elif status in ("validating", "in_progress"):
                if state.polls >= self._polls_until_done:
                    self._finish(state)
                else:
                    self._start(state)
            return copy.deepcopy(state.obj)

    def cancel(self, batch_id: str) -> dict[str, Any] | None:
        """Start cancelling a running batch (None when unknown).

        Raises ValueError when the batch has already ended.
        """
        with self._lock:
            state = self._batches.get(batch_id)
            if state is None:
                return None
            status = state.obj["status"]
            if status not in ("validating", "in_progress"):
                raise ValueError(f"Cannot cancel a batch with status '{status}'.")
            state.obj.update(status="cancelling", cancelling_at=int(time.time()))
            return copy.deepcopy(state.obj)

    def all(self) -> list[dict[str, Any]]:
        """Every batch object, newest first (listing does not count as a poll)."""
        with self._lock:
            return [copy.deepcopy(s.obj) for s in reversed(self._batches.values())]

    def _lines(self, state: _BatchState) -> list[str]:
        data = self._files.content(state.obj["input_file_id"]) or b""
        return [line for line in data.decode("utf-8", "replace").splitlines() if line.strip()]

    def _start(self, state: _BatchState) -> None:
        if state.obj["status"] == "validating":
            state.obj.update(status="in_progress", in_progress_at=int(time.time()))
            state.obj["request_counts"]["total"] = len(self._lines(state))

    def _finish(self, state: _BatchState) -> None:
        self._start(state)
        lines = self._lines(state)
        requests, problems = _validate(lines)
        now = int(time.time())
        if problems:
            state.obj.update(status="failed", failed_at=now, errors={"object": "list", "data": problems})
            return
        rules = self._faults.take_batch(lines)
        state.obj["finalizing_at"] = now
        outputs: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        expired = False
        for text, request in zip(lines, requests, strict=True):
            rule = next((r for r in rules if r.matches(text)), None)
            if rule is not None and rule.kind == "expire":
                expired = True
                errors.append(_line_result(request, None, {"code": "batch_expired", "message": EXPIRED_MESSAGE}))
                continue
            self._on_line(str(request.get("custom_id")))
            status, body = _fail(rule) if rule is not None else self._answer(request.get("body") or {})
            result = _line_result(request, {"status_code": status, "request_id": new_id("req_"), "body": body}, None)
            (outputs if status == 200 else errors).append(result)
        state.obj["output_file_id"] = self._write(state, "output", outputs)
        state.obj["error_file_id"] = self._write(state, "error", errors)
        failed = sum(1 for e in errors if e["response"] is not None)
        state.obj["request_counts"] = {"total": len(lines), "completed": len(outputs), "failed": failed}
        if expired:
            state.obj.update(status="expired", expired_at=now)
        else:
            state.obj.update(status="completed", completed_at=now)

    def _write(self, state: _BatchState, kind: str, results: list[dict[str, Any]]) -> str | None:
        if not results:
            return None
        data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in results).encode("utf-8")
        return self._files.add(f"{state.obj['id']}_{kind}.jsonl", "batch_output", data)["id"]


def _line_result(request: dict[str, Any], response: dict[str, Any] | None, error: Any) -> dict[str, Any]:
    return {"id": new_id("batch_req_"), "custom_id": request.get("custom_id"), "response": response, "error": error}


def _fail(rule: BatchFaultRule) -> tuple[int, dict[str, Any]]:
    status = int(rule.params.get("status", 500))
    if status >= 500:
        message = rule.params.get("message", "The server had an error while processing your request.")
        return status, error_body(message, "server_error")
    return status, error_body(rule.params.get("message", "Invalid request."), "invalid_request_error")


def _validate(lines: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Parse input lines; return (requests, batch-level errors like the real `errors.data`)."""
    requests: list[dict[str, Any]] = []
    problems: list[dict[str, Any]] = []
    seen: set[str] = set()

    def problem(code: str, line_no: int, message: str) -> None:
        problems.append({"code": code, "line": line_no, "message": message, "param": None})

    if not lines:
        problem("empty_file", 0, "The input file is empty.")
    for line_no, text in enumerate(lines, start=1):
        try:
            request = json.loads(text)
        except json.JSONDecodeError:
            problem("invalid_json_line", line_no, "This line is not parseable as valid JSON.")
            continue
        if not isinstance(request, dict) or not isinstance(request.get("body"), dict):
            problem("invalid_request", line_no, "Each line needs an object with a 'body' object.")
            continue
        if request.get("url") != SUPPORTED_ENDPOINT:
            problem("url_mismatch", line_no, f"The request URL must be {SUPPORTED_ENDPOINT}.")
        custom_id = str(request.get("custom_id"))
        if custom_id in seen:
            problem("duplicate_custom_id", line_no, f"The custom_id {custom_id!r} is used more than once.")
        seen.add(custom_id)
        requests.append(request)
    return requests, problems
