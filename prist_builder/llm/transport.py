"""Every HTTP call to an OpenAI-compatible server: cache, pacing, retries, accounting.

The provider builds request bodies and reads answers; :class:`Transport` decides whether a
request is sent at all (cache), when (concurrency cap and rate budgets), how often
(retry policy) and what it cost (:class:`~.pricing.Usage`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx2
import openai
import tenacity

from prist_builder.errors import FatalError
from prist_builder.llm import retry
from prist_builder.llm.accounting import AccountingLog
from prist_builder.llm.cache import ResponseCache
from prist_builder.llm.failures import RequestRejected, TransportGaveUp, fatal_error
from prist_builder.llm.files_api import FileAndBatchCalls
from prist_builder.llm.limiter import AdaptiveConcurrency, RateLimiter
from prist_builder.llm.parsing import parse_completion
from prist_builder.llm.pricing import PRICES_PER_MILLION, Usage, cost_usd
from prist_builder.llm.settings import KEY_ENV, OPENAI_HOST, LLMSettings

CHAT_PATH = "/chat/completions"
"""Chat completions route, relative to the base URL. Posted through the client's low-level
``post``: the same client, errors and headers as ``chat.completions.create``, without its
per-call parameter transform (about 1 ms of CPU a request)."""

log = logging.getLogger(__name__)

T = TypeVar("T")

SPARE_CONNECTIONS = 8
"""Keep-alive connections kept beyond the chat concurrency, for files and batch calls."""
MIN_KEEPALIVE = 100
MAX_CONNECTIONS = 1000
LONG_WAIT_S = 30.0
"""A server-imposed wait longer than this (seconds) is announced as it starts."""
SECONDS_PER_MINUTE = 60.0
CONNECTIONS_PER_CLIENT = 16
"""Connections per openai client before requests spread over another one (see ``_get_client``)."""


def _total_tokens(completion: dict[str, Any]) -> int | None:
    """The billed ``usage.total_tokens`` of a completion, None when not a whole number."""
    usage = completion.get("usage")
    total = usage.get("total_tokens") if isinstance(usage, dict) else None
    return total if isinstance(total, int) and not isinstance(total, bool) and total >= 0 else None


class Transport(FileAndBatchCalls):
    """Sends chat completions, file and batch calls with caching, pacing and retries.

    Build it with :meth:`from_settings`; the constructor takes resolved values.

    Args:
        base_url: server root (``.../v1``).
        api_key: the key; ``None`` makes the first real request raise :class:`FatalError`
            (cache hits and dry runs need none).
        organization: OpenAI organization id sent with every request, if any.
        headers: extra HTTP headers sent with every request (their values count as secrets).
        concurrency: most chat requests in flight (adapts down on 429s, see
            :class:`AdaptiveConcurrency`).
        rpm, tpm: client-side requests/min and tokens/min budgets; None = unlimited.
        timeout_s: seconds one HTTP attempt may take.
        max_attempts, max_wait_s: retry budget per call (attempts; seconds since the first).
        cache: response cache for chat calls; None disables it.
        prices: model -> (USD per 1M input, output tokens); defaults to the built-in table.
        backoff_base_s, backoff_cap_s, jitter: backoff shape (tests shrink the times).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        organization: str | None = None,
        headers: dict[str, str] | None = None,
        concurrency: int = 8,
        rpm: int | None = None,
        tpm: int | None = None,
        timeout_s: float = 120.0,
        max_attempts: int = 6,
        max_wait_s: float = 600.0,
        cache: ResponseCache | None = None,
        prices: dict[str, tuple[float, float]] | None = None,
        backoff_base_s: float = retry.BACKOFF_BASE_S,
        backoff_cap_s: float = retry.BACKOFF_CAP_S,
        jitter: retry.Jitter = "full",
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.is_openai = urlsplit(self.base_url).hostname == OPENAI_HOST
        self._api_key = api_key
        self._organization = organization
        self._headers = dict(headers or {})
        self._secrets = [api_key] if api_key else []
        self.timeout_s, self.max_attempts, self.max_wait_s = timeout_s, max_attempts, max_wait_s
        self.cache = cache
        self.prices = prices if prices is not None else dict(PRICES_PER_MILLION)
        self.concurrency = AdaptiveConcurrency(concurrency)
        self.limiter = RateLimiter(rpm, tpm)
        self.usage = Usage()
        self._backoff = {"base_s": backoff_base_s, "cap_s": backoff_cap_s, "jitter": jitter}
        self._keepalive = max(MIN_KEEPALIVE, concurrency + SPARE_CONNECTIONS)
        self.accounting: AccountingLog | None = None
        """Where each finished call's accounting line goes (``RUN/requests.jsonl``), if anywhere."""
        self._clients: list[openai.AsyncOpenAI] = []
        self._client_loop: asyncio.AbstractEventLoop | None = None
        self._next_client = 0
        self._resume_at = 0.0  # monotonic time before which no attempt starts (server asked us to wait)
        self._announced_until = 0.0  # the latest wait already announced
        self._unpriced: set[str] = set()
        self._stopped: FatalError | None = None  # the key, quota or access was refused: send nothing more

    @classmethod
    def from_settings(
        cls,
        settings: LLMSettings,
        cache: ResponseCache | None = None,
        prices: dict[str, tuple[float, float]] | None = None,
        **tuning: Any,
    ) -> Transport:
        """A transport configured by ``settings`` (environment variables resolved there).

        ``tuning`` passes test-only knobs (``max_wait_s``, backoff shape)."""
        transport = cls(
            settings.resolved_base_url(),
            settings.resolved_api_key(),
            organization=settings.resolved_organization(),
            headers=settings.resolved_headers(),
            concurrency=settings.concurrency,
            rpm=settings.rpm,
            tpm=settings.tpm,
            timeout_s=settings.timeout_s,
            max_attempts=settings.max_attempts,
            cache=cache,
            prices=prices,
            **tuning,
        )
        transport._secrets = sorted(set(transport._secrets + settings.secrets()))
        return transport

    def __repr__(self) -> str:
        return f"Transport(base_url={self.base_url!r}, concurrency={self.concurrency.maximum})"

    # ---- chat ----------------------------------------------------------------------------

    async def chat(
        self,
        body: dict[str, Any],
        extra: dict[str, Any],
        estimated_tokens: int,
        *,
        store: bool = True,
        key: str | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """One chat completion: ``(completion as a JSON dict, True if it came from the cache)``.

        ``body`` is the request as sent (``model``, ``messages``, ``response_format``...; every
        key must be a keyword of ``chat.completions.create``); ``extra`` joins the cache key
        only; ``estimated_tokens`` is spent from the tpm budget per attempt. ``store=False``
        leaves caching to the caller (:class:`~.client.LLMClient` caches an answer only once
        it passed validation); ``key`` is the cache key when the caller computed it already.
        Each attempt must end within ``timeout_s`` seconds, connect to last byte; a 200
        whose body is not a well-formed chat completion is retried like a 5xx. Each answer's
        ``x-ratelimit-*`` headers sync the rate limiter (:meth:`.RateLimiter.release`).

        Raises:
            FatalError: no API key, or the server refused the key, quota or access.
            RequestRejected: the server refused this request (400/404/422...).
            TransportGaveUp: rate limits or transient failures outlasted the retry budget.
        """
        if key is None and self.cache is not None:
            key = ResponseCache.key(self.base_url, body, extra)
        entry = {"kind": "chat", "key": key, "prompt": extra.get("prompt_version"), "model": body.get("model")}
        if self.cache is not None and key is not None:
            hit = self.cache.get(key)
            if hit is not None:
                self.usage.cached += 1
                self.accounting_line({**entry, "cached": True, "attempts": 0})
                return hit, True
        client = self._get_client()
        counts = {"attempts": 0, "rate_limited": 0}

        async def attempt() -> dict[str, Any]:
            await self._wait_if_told()
            async with self.concurrency:
                if self._stopped is not None:  # a request queued behind one that found the run cannot go on
                    raise self._stopped
                await self.limiter.acquire(estimated_tokens)
                self.usage.requests += 1
                counts["attempts"] += 1
                headers, billed, answered = None, None, False
                try:
                    async with asyncio.timeout(self.timeout_s):
                        raw = await client.post(CHAT_PATH, body=body, cast_to=httpx2.Response)
                        headers, answered = raw.headers, True
                        data = await raw.aread()
                    completion = parse_completion(data)
                    billed = _total_tokens(completion)
                except TimeoutError:
                    raise retry.DeadlineExceeded(f"no complete answer within {self.timeout_s:g} s") from None
                except openai.APIStatusError as exc:
                    headers = exc.response.headers
                    if isinstance(exc, openai.RateLimitError) and retry.classify(exc) == retry.RATE_LIMITED:
                        self.usage.rate_limited += 1
                        counts["rate_limited"] += 1
                        self.concurrency.on_rate_limited()
                    raise
                finally:
                    self.limiter.release(estimated_tokens, headers, answered, billed)
            self.concurrency.on_success()
            return completion

        try:
            completion = await self._call("chat completion", attempt)
        except Exception:
            self.accounting_line(
                {**entry, "cached": False, **counts, "retries": max(0, counts["attempts"] - 1), "failed": True}
            )
            raise
        if store and self.cache is not None and key is not None:
            self.cache.put(key, completion)
        cost, tokens = self.account(str(body.get("model", "")), completion)
        self.accounting_line(
            {**entry, "cached": False, **counts, "retries": counts["attempts"] - 1, **tokens, "cost_usd": cost}
        )
        return completion, False

    def accounting_line(self, entry: dict[str, Any]) -> None:
        """Write one finished call's accounting line, if an accounting log is open."""
        if self.accounting is not None:
            self.accounting.write(entry)

    def account(
        self, model: str, completion: dict[str, Any], batch: bool = False
    ) -> tuple[float | None, dict[str, Any]]:
        """Add the tokens and cost (USD) of one answered request to :attr:`usage`.

        Returns ``(cost or None when unpriced or unknown, token fields for the accounting
        line)``. Token counts that are not whole numbers leave the usage unknown (counted
        in ``usage_unknown``) instead of failing the answer. ``batch`` prices it at the
        Batch API discount (the batch driver accounts its lines here).
        """
        usage = completion.get("usage")
        prompt = usage.get("prompt_tokens") if isinstance(usage, dict) else None
        output = usage.get("completion_tokens") if isinstance(usage, dict) else None
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (prompt, output)):
            return None, {"usage_unknown": True}
        self.usage.prompt_tokens += prompt
        self.usage.completion_tokens += output
        tokens = {"prompt_tokens": prompt, "completion_tokens": output}
        cost = cost_usd(model, prompt, output, self.prices, batch=batch)
        if cost is None and isinstance(completion.get("model"), str):
            cost = cost_usd(completion["model"], prompt, output, self.prices, batch=batch)
        if cost is None:
            if model not in self._unpriced:
                self._unpriced.add(model)
                log.warning("no price for model %r: its cost is counted as 0 USD", model)
            return None, tokens
        self.usage.cost_usd += cost
        return cost, tokens

    # ---- shared machinery -------------------------------------------------------------------

    async def _call(self, what: str, attempt: Callable[[], Awaitable[T]]) -> T:
        """Run ``attempt`` under the retry policy; translate final failures (see :meth:`chat`)."""
        policy = retry.make_retrying(
            self.max_attempts, self.max_wait_s, before_sleep=self._before_sleep, **self._backoff
        )  # type: ignore[arg-type]
        started = time.monotonic()
        try:
            return await policy(attempt)
        except tenacity.RetryError as err:
            last = err.last_attempt.exception()
            tries = err.last_attempt.attempt_number
            asked = retry.server_wait_s(last) if last else None
            spent = time.monotonic() - started
            why = ""
            if asked is not None and spent + asked > self.max_wait_s:
                why = (
                    f" (the server asked to wait {asked:.0f} s, beyond the {self.max_wait_s:.0f} s a request may wait)"
                )
            elif asked:
                why = f" (the server asked to wait {asked:.1f} s)"
            message = (
                f"{what} failed after {tries} attempt{'s' if tries != 1 else ''} in "
                f"{spent:.1f} s; last error: {retry.describe(last) if last else '?'}{why}"
            )
            malformed = isinstance(last, retry.MalformedResponse)
            raise TransportGaveUp(self._scrub(message), malformed=malformed) from None
        except openai.APIStatusError as exc:
            if retry.classify(exc) != retry.FATAL:
                raise
            fatal = self._fatal(exc)
            if not isinstance(fatal, RequestRejected):  # about the account, not this request
                self._stopped = fatal
            raise fatal from None

    async def _before_sleep(self, state: tenacity.RetryCallState) -> None:
        """Count a retry; after a 429 that names a wait, hold every new attempt until it passes."""
        self.usage.retries += 1
        exc = state.outcome.exception() if state.outcome is not None else None
        if exc is not None and retry.classify(exc) == retry.RATE_LIMITED:
            wait = retry.server_wait_s(exc)
            if wait is not None:
                self._resume_at = max(self._resume_at, time.monotonic() + wait)
                self._announce_wait(wait)
        log.debug("retry in %.2f s after %s", state.upcoming_sleep, self._scrub(retry.describe(exc)) if exc else "?")

    def _announce_wait(self, wait_s: float) -> None:
        """Say so (a log line at WARNING, shown by the CLI as it happens) when the server's
        rate limit holds every request for more than :data:`LONG_WAIT_S` seconds."""
        if wait_s <= LONG_WAIT_S or self._resume_at <= self._announced_until:
            return
        self._announced_until = self._resume_at
        until = time.strftime("%H:%M:%S", time.localtime(time.time() + wait_s))
        minutes = f"{wait_s / SECONDS_PER_MINUTE:.0f} min" if wait_s >= SECONDS_PER_MINUTE else f"{wait_s:.0f} s"
        log.warning("waiting %s for the rate limit to reset, until %s", minutes, until)

    async def _wait_if_told(self) -> None:
        delay = self._resume_at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)

    def _fatal(self, exc: openai.APIStatusError) -> FatalError:
        """A clear, key-free error for a response that retrying cannot fix."""
        server = "OpenAI" if self.is_openai else f"the server at {self.base_url}"
        return fatal_error(exc, server, self._secrets)

    def _scrub(self, text: str) -> str:
        return retry.scrub(text, self._secrets)

    def _get_client(self) -> openai.AsyncOpenAI:
        """An openai client of the running event loop (made on first use, again on a new loop).

        Requests are spread round-robin over several clients of at most
        :data:`CONNECTIONS_PER_CLIENT` connections each: httpcore scans its whole pool on
        every request, so one pool of 64 connections costs several times the CPU of four
        pools of 16 at the same concurrency.

        Raises:
            FatalError: api.openai.com and no API key.
        """
        if self._api_key is None:
            raise FatalError(f"no API key: set {KEY_ENV} or pass --api-key")
        loop = asyncio.get_running_loop()
        if not self._clients or self._client_loop is not loop:
            shards = max(1, math.ceil(self.concurrency.maximum / CONNECTIONS_PER_CLIENT))
            per_client = math.ceil(self._keepalive / shards)
            self._clients = []
            tls = httpx2.create_ssl_context()  # one for all shards: loading the CA store takes ~0.1 s
            for _ in range(shards):
                limits = httpx2.Limits(
                    max_connections=max(MAX_CONNECTIONS // shards, per_client), max_keepalive_connections=per_client
                )
                http = openai.DefaultAsyncHttpxClient(limits=limits, verify=tls)
                self._clients.append(
                    openai.AsyncOpenAI(
                        base_url=self.base_url,
                        api_key=self._api_key,
                        max_retries=0,
                        organization=self._organization,
                        default_headers=self._headers or None,
                        timeout=self.timeout_s,
                        http_client=http,
                    )
                )
            self._client_loop = loop
        self._next_client = (self._next_client + 1) % len(self._clients)
        return self._clients[self._next_client]

    async def aclose(self) -> None:
        """Close the HTTP connections (safe to call twice)."""
        clients, self._clients, self._client_loop = self._clients, [], None
        for client in clients:
            await client.close()
