"""How a request reaches the model: online through the transport, or gathered for a batch.

The provider only calls :meth:`Asker.ask`. Online, that sends the request (or reads the
response cache). In batch mode, a cached response is returned and a missing one raises
:class:`Deferred`, which leaves the input unfinished; the batch driver then sends all
gathered requests through the Batch API, caches the answers, and runs the step again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from prist_builder.errors import Deferred


class Asker(Protocol):
    """Something that answers chat completion request bodies."""

    async def ask(self, body: dict, extra: dict, estimated_tokens: int, key: str | None = None) -> tuple[dict, bool]:
        """``(chat completion as a dict, True if it came from the cache)`` for ``body``;
        ``extra`` enters the cache key; ``key``, when given, is the cache key (computed once
        by the caller, see :meth:`~.cache.ResponseCache.key`)."""
        ...


@dataclass
class OnlineAsker:
    """Sends each request through the transport (which also reads and fills the cache)."""

    transport: object

    async def ask(self, body: dict, extra: dict, estimated_tokens: int, key: str | None = None) -> tuple[dict, bool]:
        return await self.transport.chat(body, extra, estimated_tokens, store=False, key=key)  # type: ignore[attr-defined]


@dataclass
class GatheringAsker:
    """Answers from the cache only; records every missing request for the next batch.

    Attributes:
        cache: the response cache.
        base_url: part of every cache key.
        wanted: missing requests by cache key: ``{key: body}``.
        refusals: requests a batch of this run refused, by cache key (answered with the refusal).
        estimates: each missing request's estimated tokens (prompt + completion cap, the rule
            of ``--dry-run`` and the rate limiter) by cache key, for batch sharding.
    """

    cache: object
    base_url: str
    refusals: dict[str, dict] = field(default_factory=dict)
    wanted: dict[str, dict] = field(default_factory=dict)
    estimates: dict[str, int] = field(default_factory=dict)

    async def ask(self, body: dict, extra: dict, estimated_tokens: int, key: str | None = None) -> tuple[dict, bool]:
        key = key or self.cache.key(self.base_url, body, extra)  # type: ignore[attr-defined]
        found = self.refusals.get(key) or self.cache.get(key)  # type: ignore[attr-defined]
        if found is not None and ("choices" in found or key in self.refusals):  # an older cache's refusal: ask again
            return found, True
        self.wanted[key] = body
        self.estimates[key] = estimated_tokens
        raise Deferred(f"waiting for batch answer {key[:12]}", quiet=True)
