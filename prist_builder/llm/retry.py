"""Which failures are worth another attempt, how long to wait, and the tenacity policy.

Categories returned by :func:`classify`:

- ``"fatal"``: retrying cannot help (bad key, no quota, a request the server rejects).
- ``"rate_limited"``: a 429 that is not about quota; wait (at least what the server asks) and retry.
- ``"transient"``: 5xx, 408/409, timeouts, dropped connections, a malformed 200 body; retry.
- ``"other"``: anything else (a bug, a cancelled task); never retried, propagated as is.
"""

from __future__ import annotations

import email.utils
import math
import random
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import openai
import tenacity

FATAL = "fatal"
RATE_LIMITED = "rate_limited"
TRANSIENT = "transient"
OTHER = "other"
RETRYABLE = frozenset({RATE_LIMITED, TRANSIENT})

QUOTA_CODE = "insufficient_quota"
INPUT_SPECIFIC_STATUSES = frozenset({400, 413, 422})
"""Refusals that concern one request (an image the API will not take, a context too long):
that input fails and the run goes on. Others (404 model not found, ...) stop the run."""
TRANSIENT_STATUSES = frozenset({408, 409})
"""Client-error statuses that mean "try again" (request timeout, conflict/lock timeout)."""
SERVER_ERROR_MIN = 500
CLIENT_ERROR_MIN = 400
RATE_LIMIT_STATUS = 429

BACKOFF_BASE_S = 0.5
"""First backoff ceiling, in seconds."""
BACKOFF_FACTOR = 2.0
"""The ceiling multiplies by this after each failed attempt."""
BACKOFF_CAP_S = 30.0
"""No backoff sleeps longer than this many seconds (a server-requested wait may)."""
DECORRELATED_SPREAD = 3.0
"""Decorrelated jitter draws the next sleep from [base, previous sleep x this]."""
SERVER_WAIT_SPREAD = 0.1
"""A server-requested wait is stretched by up to this fraction, so clients do not retry in lockstep."""
MS_PER_S = 1000.0
MAX_MESSAGE_CHARS = 500
"""Server messages quoted in errors are cut to this many characters."""
MIN_SECRET_CHARS = 8
"""API keys shorter than this are not masked (see :func:`scrub`)."""

Jitter = Literal["full", "decorrelated"]

_UNITS_S = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|us|µs|ns|h|m|s)")
_KEY_LIKE = re.compile(r"\bsk-[A-Za-z0-9_\-*]{4,}")


class MalformedResponse(Exception):
    """A 200 answer whose body is not a well-formed chat completion (an HTML page from a
    proxy, ``choices: [1]``, ``content`` that is a list, JSON nested too deep, a body too big)."""


class DeadlineExceeded(Exception):
    """An attempt did not end (connect, send and the whole body) within its time limit."""


def error_code(exc: BaseException) -> str | None:
    """The API's ``error.code`` (else ``error.type``) of a status error, or None."""
    code = getattr(exc, "code", None) or getattr(exc, "type", None)
    return str(code) if code else None


def classify(exc: BaseException) -> str:
    """Sort an exception raised by the openai client into a retry category (module docstring)."""
    if isinstance(exc, (openai.APIConnectionError, MalformedResponse, DeadlineExceeded)):  # + APITimeoutError
        return TRANSIENT
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        if status == RATE_LIMIT_STATUS:
            quota = QUOTA_CODE in (getattr(exc, "code", None), getattr(exc, "type", None))
            return FATAL if quota else RATE_LIMITED
        if status in TRANSIENT_STATUSES or status >= SERVER_ERROR_MIN:
            return TRANSIENT
        if status >= CLIENT_ERROR_MIN:
            return FATAL
    return OTHER


def parse_duration(text: str) -> float | None:
    """Seconds in a rate-limit reset value: ``"1s"``, ``"250ms"``, ``"6m0s"``, ``"1h2m3.5s"``, ``"2"``.

    Returns None for text that is not a duration.
    """
    text = text.strip()
    if not text:
        return None
    try:
        plain = float(text)
    except ValueError:
        pass
    else:
        return plain if math.isfinite(plain) and plain >= 0 else None
    total, position = 0.0, 0
    for match in _DURATION_PART.finditer(text):
        if match.start() != position:
            return None
        total += float(match.group(1)) * _UNITS_S[match.group(2)]
        position = match.end()
    return total if position == len(text) else None


def parse_retry_after(text: str, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` value: a number of seconds or an HTTP date (None if neither)."""
    seconds = parse_duration(text)
    if seconds is not None:
        return seconds
    try:
        when = email.utils.parsedate_to_datetime(text.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def server_wait_s(exc: BaseException) -> float | None:
    """Seconds the server asked us to wait before retrying, from a 429 or 5xx; None if it said nothing.

    Reads ``retry-after-ms``, ``retry-after`` (seconds or HTTP date) and, on a 429,
    ``x-ratelimit-reset-requests`` / ``x-ratelimit-reset-tokens`` (e.g. ``"6m0s"``) and
    returns the largest. A reset header counts only when its ``x-ratelimit-remaining-*``
    partner is 0 or absent, or when nothing else was given: the reset time of a budget that
    is not exhausted (often minutes for tokens) says nothing about when to retry.
    """
    if not isinstance(exc, openai.APIStatusError):
        return None
    status = exc.status_code
    if status != RATE_LIMIT_STATUS and status < SERVER_ERROR_MIN:
        return None
    headers = exc.response.headers
    waits: list[float] = []
    millis = headers.get("retry-after-ms")
    if millis is not None and (value := parse_duration(millis)) is not None:
        waits.append(value / MS_PER_S)
    after = headers.get("retry-after")
    if after is not None and (value := parse_retry_after(after)) is not None:
        waits.append(value)
    if status == RATE_LIMIT_STATUS:
        resets: list[tuple[float, bool]] = []
        for scope in ("requests", "tokens"):
            reset = headers.get(f"x-ratelimit-reset-{scope}")
            value = parse_duration(reset) if reset is not None else None
            if value is not None:
                remaining = headers.get(f"x-ratelimit-remaining-{scope}")
                resets.append((value, remaining is None or remaining.strip() == "0"))
        exhausted = [value for value, spent in resets if spent]
        waits.extend(exhausted if exhausted or waits else [value for value, _ in resets])
    return max(waits) if waits else None


def describe(exc: BaseException) -> str:
    """A one-line account of a failure, e.g. ``"429 rate_limit_exceeded: Rate limit reached ..."``."""
    if isinstance(exc, openai.APITimeoutError):
        return "the request timed out"
    if isinstance(exc, (MalformedResponse, DeadlineExceeded)):
        return str(exc)
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc.__context__
        return f"connection failed ({cause or exc})"
    if isinstance(exc, openai.APIStatusError):
        message = server_message(exc)
        label = f"{exc.status_code} {error_code(exc) or ''}".rstrip()
        return f"{label}: {message}" if message else label
    return f"{type(exc).__name__}: {exc}"


def server_message(exc: openai.APIStatusError) -> str:
    """The server's ``error.message`` (or raw body) on one line, cut to MAX_MESSAGE_CHARS characters."""
    body: Any = exc.body
    text = str((body.get("message") if isinstance(body, dict) else body) or "")
    return " ".join(text.split())[:MAX_MESSAGE_CHARS]


def scrub(text: str, secrets: list[str]) -> str:
    """``text`` with each of ``secrets`` and anything shaped like an ``sk-...`` key masked.

    Secrets shorter than MIN_SECRET_CHARS are left alone: masking every "k" of a toy key
    would garble the message, and such a key protects nothing.
    """
    for secret in secrets:
        if len(secret) >= MIN_SECRET_CHARS:
            text = text.replace(secret, "***")
    return _KEY_LIKE.sub("sk-***", text)


class BackoffWait(tenacity.wait.wait_base):
    """Exponential backoff with jitter, never shorter than what the server asked for.

    ``full`` jitter sleeps uniformly in ``[0, min(cap_s, base_s * 2**(attempt-1))]``;
    ``decorrelated`` draws from ``[base_s, previous * 3]`` capped at ``cap_s``. A
    server-requested wait (:func:`server_wait_s`) is a floor. One instance serves one call.
    """

    def __init__(
        self,
        base_s: float = BACKOFF_BASE_S,
        cap_s: float = BACKOFF_CAP_S,
        jitter: Jitter = "full",
        rng: random.Random | None = None,
    ) -> None:
        if jitter not in ("full", "decorrelated"):
            raise ValueError(f"jitter must be 'full' or 'decorrelated', got {jitter!r}")
        self.base_s, self.cap_s, self.jitter = base_s, cap_s, jitter
        self._rng = rng or random.Random()
        self._previous = base_s

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        if self.jitter == "full":
            ceiling = min(self.cap_s, self.base_s * BACKOFF_FACTOR ** (retry_state.attempt_number - 1))
            sleep = self._rng.uniform(0.0, ceiling)
        else:
            upper = max(self.base_s, self._previous * DECORRELATED_SPREAD)
            sleep = min(self.cap_s, self._rng.uniform(self.base_s, upper))
            self._previous = sleep
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None and outcome.failed else None
        floor = server_wait_s(exc) if exc is not None else None
        if floor is not None:
            sleep = max(sleep, floor * (1.0 + self._rng.uniform(0.0, SERVER_WAIT_SPREAD)))
        return sleep


def make_retrying(
    max_attempts: int,
    max_wait_s: float,
    *,
    base_s: float = BACKOFF_BASE_S,
    cap_s: float = BACKOFF_CAP_S,
    jitter: Jitter = "full",
    before_sleep: Callable[[tenacity.RetryCallState], Awaitable[None] | None] | None = None,
) -> tenacity.AsyncRetrying:
    """A fresh tenacity policy for one call: retry "rate_limited"/"transient" failures only.

    Stops after ``max_attempts`` attempts, or before a sleep that would end more than
    ``max_wait_s`` seconds after the first attempt began; then raises
    :class:`tenacity.RetryError` holding the last attempt. Non-retryable exceptions
    propagate unchanged at once.
    """
    return tenacity.AsyncRetrying(
        retry=tenacity.retry_if_exception(lambda exc: classify(exc) in RETRYABLE),
        wait=BackoffWait(base_s, cap_s, jitter),
        stop=tenacity.stop_after_attempt(max_attempts) | tenacity.stop_before_delay(max_wait_s),
        before_sleep=before_sleep,
        reraise=False,
    )
