"""The OpenAI Batch API path: gather requests, submit them as one batch, wait, cache the answers.

A batch round works on the requests a step still misses (see :class:`.asking.GatheringAsker`):
it writes them as JSONL (``custom_id`` = the request's cache key, so results join back
without any bookkeeping), uploads the file, creates the batch, polls it with a progress
bar, and puts every successful answer in the response cache. Failed and expired lines are
simply still missing, so the next round re-submits only them. Batch ids are recorded in
``RUN/batches.jsonl`` as soon as the batch is created, before polling starts; a re-run
after a crash polls the recorded batch again instead of paying for a new one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prist_builder.llm.files_api import BATCH_ENDPOINT
from prist_builder.llm.parsing import check_completion, loads_bounded
from prist_builder.llm.retry import INPUT_SPECIFIC_STATUSES, MalformedResponse

log = logging.getLogger(__name__)

TERMINAL = frozenset({"completed", "expired", "failed", "cancelled"})
STATE_FILE = "batches.jsonl"


@dataclass
class BatchResult:
    """Outcome of one batch: how many lines came back answered, failed or expired."""

    batch_id: str
    status: str
    answered: int = 0
    failed: int = 0
    expired: int = 0
    refused: int = 0
    token_limited: bool = False


ProgressFn = Callable[[str, int, int], None]
"""Called with (batches done / total, requests answered, requests sent) as batches end."""


@dataclass(frozen=True)
class BatchLimits:
    """What one batch, and the batches in progress together, may hold.

    Attributes:
        max_bytes: bytes of one input file (JSONL, newline included).
        max_requests: lines of one input file.
        enqueued_tokens: estimated tokens of all batches in progress (None: no limit).
    """

    max_bytes: int
    max_requests: int
    enqueued_tokens: int | None = None


@dataclass
class Shard:
    """One batch to be: its JSONL lines and their estimated tokens."""

    lines: list[str]
    tokens: int
    line_tokens: list[int]

    def split(self, at: int) -> list[Shard]:
        """Two shards: lines before ``at`` and from ``at`` on."""
        return [
            Shard(self.lines[:at], sum(self.line_tokens[:at]), self.line_tokens[:at]),
            Shard(self.lines[at:], sum(self.line_tokens[at:]), self.line_tokens[at:]),
        ]


def _line(key: str, body: dict) -> str:
    return json.dumps({"custom_id": key, "method": "POST", "url": BATCH_ENDPOINT, "body": body})


def plan_shards(wanted: dict[str, dict], estimates: dict[str, int], limits: BatchLimits) -> list[Shard]:
    """Split requests (by cache key, in key order) into batches within ``limits``.

    Each batch stays under ``max_bytes`` and ``max_requests`` and, when an enqueued-token
    limit is set, under it too, so every batch can run alone. A single request larger
    than a limit goes alone (and may fail; its input is then left unfinished).
    """
    shards: list[Shard] = []
    lines: list[str] = []
    tokens: list[int] = []
    size = 0
    for key in sorted(wanted):
        line = _line(key, wanted[key])
        cost, length = int(estimates.get(key, 0)), len(line.encode("utf-8")) + 1
        full = (
            size + length > limits.max_bytes
            or len(lines) >= limits.max_requests
            or (limits.enqueued_tokens is not None and sum(tokens) + cost > limits.enqueued_tokens)
        )
        if lines and full:
            shards.append(Shard(lines, sum(tokens), tokens))
            lines, tokens, size = [], [], 0
        lines.append(line)
        tokens.append(cost)
        size += length
    if lines:
        shards.append(Shard(lines, sum(tokens), tokens))
    return shards


def token_limited(batch: dict[str, Any]) -> bool:
    """True when a batch failed for the organisation's enqueued token limit
    (``errors.data[].code == "token_limit_exceeded"``)."""
    errors = (batch.get("errors") or {}).get("data") or []
    return batch.get("status") == "failed" and any(
        isinstance(e, dict) and e.get("code") == "token_limit_exceeded" for e in errors
    )


class BatchDriver:
    """Submits and joins batches for one run.

    Args:
        transport: the provider's :class:`~.transport.Transport` (uploads, batches, downloads).
        cache: the response cache the answers go to.
        run: the run folder (holds ``batches.jsonl``).
        poll_s: seconds between two polls of a batch.
        progress: optional polling callback.
        refusals: where refused lines go, by cache key (kept by this process only, never in
            the shared cache, so a later run, ``--retry-rejected`` above all, asks again).
    """

    def __init__(
        self,
        transport: Any,
        cache: Any,
        run: Path,
        poll_s: float = 30.0,
        progress: ProgressFn | None = None,
        refusals: dict[str, dict] | None = None,
    ) -> None:
        self.transport = transport
        self.cache = cache
        self.refusals = refusals if refusals is not None else {}
        self.state = Path(run) / STATE_FILE
        self.poll_s = poll_s
        self.progress = progress

    # -- state -----------------------------------------------------------------------
    def _record(self, entry: dict[str, Any]) -> None:
        with open(self.state, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\n")
            handle.flush()

    def open_batches(self, step: str) -> dict[str, int]:
        """This step's batches that were submitted but never joined (a crash came between),
        with their estimated tokens (0 when the record predates the estimate)."""
        if not self.state.exists():
            return {}
        submitted: dict[str, tuple[str, int]] = {}
        joined: set[str] = set()
        with open(self.state, encoding="utf-8") as handle:
            for line in handle:
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a torn last line: the batch it named is submitted again
                if entry.get("event") == "submitted":
                    submitted[entry["batch_id"]] = (entry["step"], int(entry.get("tokens") or 0))
                elif entry.get("event") == "joined":
                    joined.add(entry["batch_id"])
        return {b: tokens for b, (s, tokens) in submitted.items() if s == step and b not in joined}

    # -- rounds ----------------------------------------------------------------------
    async def submit(self, step: str, wanted: dict[str, dict], tokens: int = 0) -> str:
        """Upload the requests as one batch input file and create the batch; returns its id.

        ``tokens`` (the requests' estimated tokens) is recorded with the id, before any poll."""
        return await self._submit_lines(step, [_line(key, body) for key, body in sorted(wanted.items())], tokens)

    async def _submit_lines(self, step: str, lines: list[str], tokens: int) -> str:
        file_id = await self.transport.upload(("\n".join(lines) + "\n").encode("utf-8"), f"prist-{step}.jsonl")
        batch = await self.transport.create_batch(file_id, metadata={"tool": "prist", "step": step})
        self._record(
            {
                "event": "submitted",
                "step": step,
                "batch_id": batch["id"],
                "input_file_id": file_id,
                "requests": len(lines),
                "tokens": tokens,
                "at": time.time(),
            }
        )
        return batch["id"]

    async def poll(self, batch_id: str) -> dict[str, Any] | None:
        """One look at a batch: its object once it has ended, else None."""
        batch = await self.transport.retrieve_batch(batch_id)
        return batch if batch["status"] in TERMINAL else None

    async def join(self, batch_id: str) -> BatchResult:
        """Poll until the batch ends, then cache every answered line."""
        while (batch := await self.poll(batch_id)) is None:
            await asyncio.sleep(self.poll_s)
        return await self.finish(batch)

    async def finish(self, batch: dict[str, Any]) -> BatchResult:
        """Cache every answered line of an ended batch and record it as joined."""
        result = BatchResult(batch["id"], batch["status"], token_limited=token_limited(batch))
        for file_key in ("output_file_id", "error_file_id"):
            if batch.get(file_key):
                self._read_results(await self.transport.download(batch[file_key]), result)
        self._record(
            {
                "event": "joined",
                "batch_id": result.batch_id,
                "status": result.status,
                "answered": result.answered,
                "failed": result.failed,
                "expired": result.expired,
                "refused": result.refused,
                "token_limited": result.token_limited,
                "at": time.time(),
            }
        )
        await self._delete_files(batch)
        return result

    async def _delete_files(self, batch: dict[str, Any]) -> None:
        """Delete a joined batch's input, output and error files on the server (its answers are
        cached and the batch recorded as joined first, so nothing is lost). A failure is logged
        and left: the files only cost storage."""
        for file_key in ("input_file_id", "output_file_id", "error_file_id"):
            file_id = batch.get(file_key)
            if not file_id:
                continue
            try:
                await self.transport.delete_file(file_id)
            except Exception as exc:  # noqa: BLE001 (best effort: storage, not data)
                log.warning("batch %s: could not delete %s %s (%s)", batch["id"], file_key, file_id, type(exc).__name__)

    async def run_round(
        self, step: str, wanted: dict[str, dict], estimates: dict[str, int], limits: BatchLimits
    ) -> list[BatchResult]:
        """Send a step's missing requests as batches within ``limits`` and join them all.

        Batches left open by an interrupted run (see :meth:`open_batches`) are polled with
        the new ones. Under an enqueued-token limit the next batch goes when the estimated
        tokens in progress leave room for it; a batch that fails with
        ``token_limit_exceeded`` is submitted again once the batches in progress have
        drained (split in two when it fails alone). Returns every joined batch's result.
        """
        shards = deque(plan_shards(wanted, estimates, limits))
        weight = self.open_batches(step)  # left by an interrupted run: poll them, do not re-pay
        flight: dict[str, Shard | None] = dict.fromkeys(weight)
        batches_total, requests_total = len(shards) + len(flight), len(wanted)
        results: list[BatchResult] = []
        answered = 0
        hold = False  # a token-limited batch waits until nothing is in progress

        def fits(shard: Shard) -> bool:
            if not flight:
                return True
            if hold:
                return False
            return limits.enqueued_tokens is None or sum(weight.values()) + shard.tokens <= limits.enqueued_tokens

        while shards or flight:
            while shards and fits(shards[0]):
                hold, shard = False, shards.popleft()
                batch_id = await self._submit_lines(step, shard.lines, shard.tokens)
                flight[batch_id], weight[batch_id] = shard, shard.tokens
            for batch_id in list(flight):
                batch = await self.poll(batch_id)
                if batch is None:
                    continue
                shard = flight.pop(batch_id)
                weight.pop(batch_id, None)
                result = await self.finish(batch)
                results.append(result)
                answered += result.answered
                if result.token_limited and shard is not None:  # not a failed round: send it again
                    if flight:  # once the batches in progress have drained
                        shards.appendleft(shard)
                        hold, batches_total = True, batches_total + 1
                    elif len(shard.lines) > 1:  # over the limit on its own (a low estimate): halve it
                        shards.extendleft(reversed(shard.split(len(shard.lines) // 2)))
                        batches_total += 2
                    # else one request over the whole limit: it stays missing (left unfinished)
                if self.progress:
                    self.progress(f"{len(results)}/{batches_total} batches done", answered, requests_total)
            if flight:
                await asyncio.sleep(self.poll_s)
        return results

    def _read_results(self, data: bytes, result: BatchResult) -> None:
        for line in data.decode("utf-8").splitlines():
            if not line.strip():
                continue
            try:
                entry = loads_bounded(line)
                response = entry.get("response") or {}
                error = entry.get("error") or {}
                custom_id = str(entry["custom_id"])
            except (ValueError, AttributeError, KeyError, TypeError):
                result.failed += 1  # an unreadable line: its request is simply still missing
                continue
            if response.get("status_code") == 200 and isinstance(response.get("body"), dict):
                body = response["body"]
                cost, tokens = self.transport.account(str(body.get("model", "")), body, batch=True)
                self.transport.accounting_line(
                    {
                        "kind": "batch_line",
                        "key": custom_id,
                        "model": body.get("model"),
                        "cached": False,
                        "batch": result.batch_id,
                        "attempts": 0,
                        **tokens,
                        "cost_usd": cost,
                    }
                )
                try:
                    check_completion(body)
                except MalformedResponse:
                    result.failed += 1  # paid for, but unusable: never cached, sent again next round
                    continue
                self.cache.put(custom_id, body)
                result.answered += 1
            elif response.get("status_code") in INPUT_SPECIFIC_STATUSES:
                # refused (an image the API will not take): kept for this run's next pass so the
                # input goes to rejects instead of being re-sent every round
                body = response.get("body") if isinstance(response.get("body"), dict) else {}
                self.refusals[custom_id] = {
                    "error": body.get("error") or {"message": str(body)},
                    "status_code": response["status_code"],
                }
                result.refused += 1
            elif error.get("code") == "batch_expired":
                result.expired += 1
            else:
                result.failed += 1
