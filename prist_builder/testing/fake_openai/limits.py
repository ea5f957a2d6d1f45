"""An enforced rate limit for the fake server: a sliding window of tokens and requests.

Two counting rules, as real servers differ:

- ``billed``: a request counts its billed ``total_tokens`` (prompt + completion) once it is
  answered; it is admitted while its prompt estimate fits in what remains.
- ``admission``: OpenAI's rule: at admission a request counts
  ``max(max_tokens, prompt estimate)`` and is refused unless that fits in what remains.

Every request counts 1 against the request budget at admission. A refused request gets a
429 ``rate_limit_exceeded``; every chat answer carries ``x-ratelimit-limit-*``,
``x-ratelimit-remaining-*`` (budget minus what the window holds, at the time of the
answer) and ``x-ratelimit-reset-*`` (time until the oldest entry leaves the window, i.e.
until some budget returns; ``0ms`` when the window is empty).
"""

from __future__ import annotations

import collections
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from prist_builder.testing.fake_openai.reply import duration_text

Rule = Literal["billed", "admission"]
WINDOW_S = 60.0
"""The window over which budgets are counted (seconds)."""


@dataclass(frozen=True)
class EnforcedLimit:
    """Budgets per window: ``tpm`` tokens and ``rpm`` requests, counted by ``rule``."""

    tpm: int
    rpm: int
    rule: Rule = "billed"
    window_s: float = WINDOW_S

    def __post_init__(self) -> None:
        if self.tpm <= 0 or self.rpm <= 0 or self.window_s <= 0:
            raise ValueError("tpm, rpm and window_s must be positive")
        if self.rule not in ("billed", "admission"):
            raise ValueError(f"unknown counting rule {self.rule!r}; use billed or admission")


class SlidingWindow:
    """The counters of one :class:`EnforcedLimit` (thread-safe).

    Attributes:
        admitted, refused: requests let in and answered 429.
        counted: ``(time, tokens)`` of every token charge, by the limit's rule (for utilisation).
        billed: ``(time, total_tokens)`` of every answered request.
    """

    def __init__(self, limit: EnforcedLimit, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens: collections.deque[tuple[float, int]] = collections.deque()
        self._requests: collections.deque[float] = collections.deque()
        self.admitted = 0
        self.refused = 0
        self.counted: list[tuple[float, int]] = []
        self.billed: list[tuple[float, int]] = []

    def _expire(self, now: float) -> None:
        horizon = now - self.limit.window_s
        while self._tokens and self._tokens[0][0] <= horizon:
            self._tokens.popleft()
        while self._requests and self._requests[0] <= horizon:
            self._requests.popleft()

    def _headers(self, now: float) -> dict[str, str]:
        used_tokens = sum(amount for _, amount in self._tokens)

        def reset(oldest: float | None) -> str:
            return duration_text(0.0 if oldest is None else max(0.0, oldest + self.limit.window_s - now))

        return {
            "x-ratelimit-limit-requests": str(self.limit.rpm),
            "x-ratelimit-limit-tokens": str(self.limit.tpm),
            "x-ratelimit-remaining-requests": str(max(0, self.limit.rpm - len(self._requests))),
            "x-ratelimit-remaining-tokens": str(max(0, self.limit.tpm - used_tokens)),
            "x-ratelimit-reset-requests": reset(self._requests[0] if self._requests else None),
            "x-ratelimit-reset-tokens": reset(self._tokens[0][0] if self._tokens else None),
        }

    def admit(self, prompt_tokens: int, max_tokens: int | None) -> tuple[bool, dict[str, str]]:
        """Let one request in or refuse it: ``(admitted, headers for a 429)``; a 429's
        ``retry-after-ms`` is the time until enough of the window expires for this request."""
        with self._lock:
            now = self._clock()
            self._expire(now)
            used = sum(amount for _, amount in self._tokens)
            charge = max(max_tokens or 0, prompt_tokens) if self.limit.rule == "admission" else prompt_tokens
            charge = min(charge, self.limit.tpm)  # a request larger than the budget goes on an empty window
            token_excess = used + charge - self.limit.tpm
            request_excess = len(self._requests) + 1 - self.limit.rpm
            if token_excess > 0 or request_excess > 0:
                self.refused += 1
                wait = 0.0
                if request_excess > 0:
                    wait = self._requests[request_excess - 1] + self.limit.window_s - now
                freed = 0
                for stamp, amount in self._tokens if token_excess > 0 else ():
                    freed += amount
                    if freed >= token_excess:
                        wait = max(wait, stamp + self.limit.window_s - now)
                        break
                headers = self._headers(now)
                headers["retry-after-ms"] = str(max(1, math.ceil(1000 * wait)))
                return False, headers
            self.admitted += 1
            self._requests.append(now)
            if self.limit.rule == "admission":
                self._tokens.append((now, charge))
                self.counted.append((now, charge))
            return True, {}

    def answered(self, total_tokens: int) -> dict[str, str]:
        """Count one answered request's billed tokens; the answer's headers."""
        with self._lock:
            now = self._clock()
            self.billed.append((now, total_tokens))
            if self.limit.rule == "billed":
                self._tokens.append((now, total_tokens))
                self.counted.append((now, total_tokens))
            self._expire(now)
            return self._headers(now)

    def stats(self) -> dict[str, Any]:
        """Counters so far: ``admitted``, ``refused``, and the ``counted`` and ``billed``
        ``(monotonic time, tokens)`` lists."""
        with self._lock:
            return {
                "admitted": self.admitted,
                "refused": self.refused,
                "billed": list(self.billed),
                "counted": list(self.counted),
            }
