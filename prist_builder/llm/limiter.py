"""Client-side pacing: request/token budgets per minute and an adaptive in-flight cap.

Both classes are free of event-loop-bound primitives (they create futures from the loop
that is running when they wait), so one transport can serve several ``asyncio.run`` calls.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable, Mapping
from types import TracebackType

from prist_builder.llm.retry import parse_duration

SECONDS_PER_MINUTE = 60.0

REQUEST_BURST_S = 1.0
"""The request bucket holds this many seconds of the rpm budget (OpenAI enforces limits
over windows shorter than a minute, so a full minute's burst at start would be rejected)."""

TOKEN_BURST_S = 60.0
"""The token bucket holds a full minute of the tpm budget, so one large request (an image
prompt) can always go once the bucket is full."""

Clock = Callable[[], float]

TYPICAL_WEIGHT = 0.1
"""Weight of the newest request in the running mean of a request's token estimate."""
MAX_HOLD_S = 60.0
"""A server's reset time holds new requests at most this long (seconds): rate limits are
per minute, and longer waits a server asks for (a 429 with ``Retry-After``) are the retry
policy's to honour, request by request."""


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    try:
        return int(float(value)) if value is not None else None
    except ValueError:
        return None


class _Bucket:
    """A token bucket that may go into debt: reservations are served first come, first served.

    ``generation`` counts the server's corrections (:meth:`cap` lowering the level or
    holding the refill): a waiter whose delay was computed before one re-checks (:meth:`wait_s`).
    """

    def __init__(self, per_minute: int, burst_s: float, clock: Clock) -> None:
        if per_minute <= 0:
            raise ValueError(f"a rate limit must be positive, got {per_minute}")
        self.rate = per_minute / SECONDS_PER_MINUTE  # units per second
        self.capacity = max(1.0, self.rate * burst_s)
        self.level = self.capacity
        self.generation = 0
        self._clock = clock
        self._stamp = clock()  # refill runs from here (in the future while the server holds us)

    def _refill(self) -> float:
        now = self._clock()
        self.level = min(self.capacity, self.level + max(0.0, now - self._stamp) * self.rate)
        self._stamp = max(now, self._stamp)
        return now

    def wait_s(self) -> float:
        """Seconds until the level is back to zero (every reservation covered) and no hold."""
        now = self._refill()
        return max(0.0, self._stamp - now) + max(0.0, -self.level) / self.rate

    def reserve(self, amount: float) -> tuple[float, float]:
        """Take ``amount`` (capped at the capacity); return (seconds to wait, amount taken)."""
        now = self._refill()
        taken = min(float(amount), self.capacity)
        self.level -= taken
        return (max(0.0, self._stamp - now) + max(0.0, -self.level / self.rate), taken)

    def refund(self, amount: float) -> None:
        """Give back a reservation that was not used (its waiter was cancelled, or it was billed less)."""
        self.level = min(self.capacity, self.level + amount)

    def cap(self, available: float, hold_s: float | None) -> None:
        """Take the server's word: ``available`` units (at most the capacity; may be
        negative) may be spent now; with ``hold_s``, nothing refills for that many seconds
        (its reset time)."""
        now = self._refill()
        if available < self.level:
            self.generation += 1  # waiters computed their delays on a higher level: re-check
        self.level = min(self.capacity, float(available))
        if hold_s and now + hold_s > self._stamp:
            self._stamp = now + hold_s
            self.generation += 1


class RateLimiter:
    """Requests/min and tokens/min budgets, as token buckets refilling continuously, kept in
    step with the server's own count.

    ``None`` for either budget means unlimited on the client side. The request bucket holds
    :data:`REQUEST_BURST_S` seconds of requests, the token bucket a minute of tokens. A
    request reserves its estimate (prompt + ``max_tokens``) when it starts.

    When a request ends (:meth:`release`):

    1. the part of its reservation it was not billed for (estimate - ``total_tokens``)
       goes back to the token bucket, so the client paces by what is really spent;
    2. the answer's ``x-ratelimit-remaining-<kind>`` (429s included) sets each bucket to
       what the server says remains, less what this client has in flight (its estimates),
       up to the bucket's capacity: whatever the server counts (billed tokens, or
       ``max_tokens`` at admission), the client spends what the server has left and no more;
    3. when that leaves less than one typical request (the mean of the last estimates),
       the bucket stops refilling until ``x-ratelimit-reset-<kind>`` has passed (at most
       :data:`MAX_HOLD_S`; only on answered requests: the retry policy honours a 429's wait),
       so the client does not probe a full window with requests bound to be refused.

    Without a client budget, a kind that falls to what is in flight holds new requests
    until its reset, the same way.

    Raises:
        ValueError: a budget is zero or negative.
    """

    def __init__(self, rpm: int | None, tpm: int | None, *, clock: Clock = time.monotonic) -> None:
        self.rpm = rpm
        self.tpm = tpm
        self._clock = clock
        self._requests = _Bucket(rpm, REQUEST_BURST_S, clock) if rpm is not None else None
        self._tokens = _Bucket(tpm, TOKEN_BURST_S, clock) if tpm is not None else None
        self.outstanding = {"requests": 0, "tokens": 0}
        """Requests and estimated tokens sent and not answered yet."""
        self._typical = {"requests": 1.0, "tokens": 0.0}  # running mean of one request's reservation
        self._hold_until = 0.0  # clock time before which no request starts (no client budget, server exhausted)

    async def acquire(self, tokens: int) -> None:
        """Wait until one request and ``tokens`` tokens are available, then spend them.

        A request of more tokens than the whole tpm budget waits for a full bucket and then
        goes. Callers are served in the order they called. Cancelling the wait refunds it.
        Pair each acquire with one :meth:`release` when the request ends.
        """
        held = self._hold_until - self._clock()
        if held > 0:
            await asyncio.sleep(held)
        tokens = max(0, tokens)
        reservations: list[tuple[_Bucket, float]] = []
        delay = 0.0
        for bucket, amount in ((self._requests, 1), (self._tokens, tokens)):
            if bucket is not None:
                wait, taken = bucket.reserve(amount)
                reservations.append((bucket, taken))
                delay = max(delay, wait)
        generations = [bucket.generation for bucket, _ in reservations]
        try:
            if delay > 0:
                await asyncio.sleep(delay)
            for (bucket, _), generation in zip(reservations, generations, strict=True):
                # the server corrected the bucket while we waited: go once it is covered again
                while bucket.generation != generation and (wait := bucket.wait_s()) > 0:
                    await asyncio.sleep(wait)
        except asyncio.CancelledError:
            for bucket, taken in reservations:
                bucket.refund(taken)
            raise
        self.outstanding["requests"] += 1
        self.outstanding["tokens"] += tokens
        typical = self._typical["tokens"]
        self._typical["tokens"] = tokens if typical == 0 else typical + TYPICAL_WEIGHT * (tokens - typical)

    def release(
        self, tokens: int, headers: Mapping[str, str] | None = None, answered: bool = True, billed: int | None = None
    ) -> None:
        """A request that reserved ``tokens`` ended (see the class for what follows).

        Args:
            tokens: its estimate, as given to :meth:`acquire`.
            headers: its answer's headers (any status), or None (no answer).
            answered: False for an error status: sync the levels but hold nothing.
            billed: the answer's ``usage.total_tokens``, when known.
        """
        tokens = max(0, tokens)
        self.outstanding["requests"] = max(0, self.outstanding["requests"] - 1)
        self.outstanding["tokens"] = max(0, self.outstanding["tokens"] - tokens)
        if billed is not None and self._tokens is not None and billed < tokens:
            self._tokens.refund(tokens - billed)
        if headers is not None:
            self.sync(headers, hold=answered)

    def sync(self, headers: Mapping[str, str], hold: bool = True) -> None:
        """Set the buckets to the server's ``x-ratelimit-remaining-*`` (less what is in
        flight); with ``hold``, stop refilling until ``x-ratelimit-reset-*`` when less than
        a typical request remains."""
        for kind, bucket in (("requests", self._requests), ("tokens", self._tokens)):
            remaining = _int_header(headers, f"x-ratelimit-remaining-{kind}")
            if remaining is None:
                continue
            available = remaining - self.outstanding[kind]
            reset_text = headers.get(f"x-ratelimit-reset-{kind}")
            reset = parse_duration(reset_text) if reset_text else None
            reset = min(reset, MAX_HOLD_S) if reset is not None else None
            exhausted = hold and reset is not None and available < max(1.0, self._typical[kind])
            if bucket is not None:
                bucket.cap(available, reset if exhausted else None)
            elif exhausted and reset is not None:
                self._hold_until = max(self._hold_until, self._clock() + reset)


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
