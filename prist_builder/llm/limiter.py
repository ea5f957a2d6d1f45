"""Client-side pacing: request/token budgets per minute and an adaptive in-flight cap.

Both classes are free of event-loop-bound primitives (they create futures from the loop
that is running when they wait), so one transport can serve several ``asyncio.run`` calls.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable
from types import TracebackType

SECONDS_PER_MINUTE = 60.0

REQUEST_BURST_S = 1.0
"""The request bucket holds this many seconds of the rpm budget (OpenAI enforces limits
over windows shorter than a minute, so a full minute's burst at start would be rejected)."""

TOKEN_BURST_S = 60.0
"""The token bucket holds a full minute of the tpm budget, so one large request (an image
prompt) can always go once the bucket is full."""

Clock = Callable[[], float]


class _Bucket:
    """A token bucket that may go into debt: reservations are served first come, first served."""

    def __init__(self, per_minute: int, burst_s: float, clock: Clock) -> None:
        if per_minute <= 0:
            raise ValueError(f"a rate limit must be positive, got {per_minute}")
        self.rate = per_minute / SECONDS_PER_MINUTE  # units per second
        self.capacity = max(1.0, self.rate * burst_s)
        self.level = self.capacity
        self._clock = clock
        self._stamp = clock()

    def reserve(self, amount: float) -> tuple[float, float]:
        """Take ``amount`` (capped at the capacity); return (seconds to wait, amount taken)."""
        now = self._clock()
        self.level = min(self.capacity, self.level + (now - self._stamp) * self.rate)
        self._stamp = now
        taken = min(float(amount), self.capacity)
        self.level -= taken
        return (max(0.0, -self.level / self.rate), taken)

    def refund(self, amount: float) -> None:
        """Give back a reservation that was not used (its waiter was cancelled)."""
        self.level = min(self.capacity, self.level + amount)


class RateLimiter:
    """Requests/min and tokens/min budgets, as token buckets refilling continuously.

    ``None`` for either budget means unlimited. The request bucket holds
    :data:`REQUEST_BURST_S` seconds of requests, the token bucket a minute of tokens.

    Raises:
        ValueError: a budget is zero or negative.
    """

    def __init__(self, rpm: int | None, tpm: int | None, *, clock: Clock = time.monotonic) -> None:
        self.rpm = rpm
        self.tpm = tpm
        self._requests = _Bucket(rpm, REQUEST_BURST_S, clock) if rpm is not None else None
        self._tokens = _Bucket(tpm, TOKEN_BURST_S, clock) if tpm is not None else None

    async def acquire(self, tokens: int) -> None:
        """Wait until one request and ``tokens`` tokens are available, then spend them.

        A request of more tokens than the whole tpm budget waits for a full bucket and then
        goes. Callers are served in the order they called. Cancelling the wait refunds it.
        """
        if self._requests is None and self._tokens is None:
            return
        reservations: list[tuple[_Bucket, float]] = []
        delay = 0.0
        for bucket, amount in ((self._requests, 1), (self._tokens, max(0, tokens))):
            if bucket is not None:
                wait, taken = bucket.reserve(amount)
                reservations.append((bucket, taken))
                delay = max(delay, wait)
        if delay <= 0:
            return
        try:
            await asyncio.sleep(delay)
        except asyncio.CancelledError:
            for bucket, taken in reservations:
                bucket.refund(taken)
            raise


class AdaptiveConcurrency:
    """At most :attr:`current` requests in flight; the cap reacts to rate limits.

    ``current`` starts at ``maximum``; it halves (not below ``minimum``) on a 429, at most
    once per ``cooldown_s`` seconds (a burst of 429s from one overload counts once), and
    grows back by one after every ``grow_after`` consecutive successes, up to ``maximum``.
    Use ``async with limiter:`` around one request.

    Raises:
        ValueError: ``maximum < minimum``, ``minimum < 1`` or ``grow_after < 1``.
    """

    def __init__(
        self,
        maximum: int,
        minimum: int = 1,
        grow_after: int = 10,
        cooldown_s: float = 1.0,
        *,
        clock: Clock = time.monotonic,
    ) -> None:
        if minimum < 1 or maximum < minimum or grow_after < 1:
            raise ValueError(
                f"need 1 <= minimum <= maximum and grow_after >= 1 (got {minimum}, {maximum}, {grow_after})"
            )
        self.maximum = maximum
        self.minimum = minimum
        self.grow_after = grow_after
        self.cooldown_s = cooldown_s
        self.current = maximum
        self.in_flight = 0
        self._clock = clock
        self._streak = 0
        self._last_cut: float | None = None
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    async def __aenter__(self) -> AdaptiveConcurrency:
        if self.in_flight < self.current and not self._waiters:
            self.in_flight += 1
            return self
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter  # resolved by _wake, which has already counted us in
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release()  # the slot arrived together with the cancellation
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._release()

    def _release(self) -> None:
        self.in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        """Hand free slots to waiters, oldest first."""
        while self._waiters and self.in_flight < self.current:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.in_flight += 1
                waiter.set_result(None)

    def on_rate_limited(self) -> None:
        """A request got a 429: halve the cap unless it was cut less than ``cooldown_s`` ago."""
        self._streak = 0
        now = self._clock()
        if self._last_cut is not None and now - self._last_cut < self.cooldown_s:
            return
        self._last_cut = now
        self.current = max(self.minimum, self.current // 2)

    def on_success(self) -> None:
        """A request succeeded: after ``grow_after`` in a row, raise the cap by one."""
        self._streak += 1
        if self._streak >= self.grow_after:
            self._streak = 0
            if self.current < self.maximum:
                self.current += 1
                self._wake()
