"""The Files and Batch API calls of :class:`~.transport.Transport` (upload, create, poll,
download), each under the same retry policy, pacing and accounting as a chat request."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import openai

from prist_builder.llm import retry

BATCH_ENDPOINT = "/v1/chat/completions"
"""The endpoint every batch line targets."""
BATCH_WINDOW = "24h"
"""The completion window asked of every batch."""

T = TypeVar("T")


class FileAndBatchCalls:
    """Mixin of :class:`~.transport.Transport`: it relies on the transport's ``_call``,
    ``_get_client``, ``_wait_if_told``, ``usage`` and ``accounting_line``."""

    async def upload(self, data: bytes, filename: str, purpose: str = "batch") -> str:
        """Upload ``data`` as ``filename``; returns the file id. Raises like :meth:`chat`."""
        client = self._get_client()
        return (
            await self._call(
                "file upload", self._counted(lambda: client.files.create(file=(filename, data), purpose=purpose))
            )
        ).id  # type: ignore[arg-type]

    async def create_batch(self, input_file_id: str, metadata: dict[str, str] | None = None) -> dict[str, Any]:
        """Start a 24 h chat-completions batch over an uploaded JSONL file; returns the batch object.

        A retry after a lost answer can create a second batch (the API takes no idempotency
        key); the caller records the id it gets. Raises like :meth:`chat`.
        """
        client = self._get_client()
        extra = {"metadata": metadata} if metadata is not None else {}
        batch = await self._call(
            "batch creation",
            self._counted(
                lambda: client.batches.create(
                    input_file_id=input_file_id, endpoint=BATCH_ENDPOINT, completion_window=BATCH_WINDOW, **extra
                )
            ),
        )
        return batch.model_dump(mode="json")

    async def retrieve_batch(self, batch_id: str) -> dict[str, Any]:
        """The current state of a batch, as a dict. Raises like :meth:`chat`."""
        client = self._get_client()
        batch = await self._call("batch status", self._counted(lambda: client.batches.retrieve(batch_id)))
        return batch.model_dump(mode="json")

    async def download(self, file_id: str) -> bytes:
        """The full content of a file (held in memory). Raises like :meth:`chat`."""
        client = self._get_client()
        content = await self._call("file download", self._counted(lambda: client.files.content(file_id)))
        return content.content

    async def delete_file(self, file_id: str) -> None:
        """Delete an uploaded or generated file (OpenAI keeps files until deleted, and counts them
        against the organisation's storage). Raises like :meth:`chat`."""
        client = self._get_client()
        await self._call("file deletion", self._counted(lambda: client.files.delete(file_id)))

    def _counted(self, send: Callable[[], Awaitable[T]]) -> Callable[[], Awaitable[T]]:
        """Wrap one non-chat HTTP call so each attempt is counted and honours server waits."""

        async def attempt() -> T:
            await self._wait_if_told()
            self.usage.requests += 1
            self.accounting_line({"kind": "api", "attempts": 1})
            try:
                return await send()
            except openai.RateLimitError as exc:
                if retry.classify(exc) == retry.RATE_LIMITED:
                    self.usage.rate_limited += 1
                raise

        return attempt
