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
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prist_builder.llm.files_api import BATCH_ENDPOINT
from prist_builder.llm.parsing import check_completion, loads_bounded
from prist_builder.llm.retry import INPUT_SPECIFIC_STATUSES, MalformedResponse

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


ProgressFn = Callable[[str, int, int], None]
"""Called with (batch status, lines done, lines total) while polling."""


class BatchDriver:
    """Submits and joins batches for one run.

    Args:
        transport: the provider's :class:`~.transport.Transport` (uploads, batches, downloads).
        cache: the response cache the answers go to.
        run: the run folder (holds ``batches.jsonl``).
        poll_s: seconds between two polls of a batch.
        progress: optional polling callback.
    """

    def __init__(
        self, transport: Any, cache: Any, run: Path, poll_s: float = 30.0, progress: ProgressFn | None = None
    ) -> None:
        self.transport = transport
        self.cache = cache
        self.state = Path(run) / STATE_FILE
        self.poll_s = poll_s
        self.progress = progress

    # -- state -----------------------------------------------------------------------
    def _record(self, entry: dict[str, Any]) -> None:
        with open(self.state, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\n")
            handle.flush()

    def open_batches(self, step: str) -> list[str]:
        """Ids of this step's batches that were submitted but never joined (a crash came between)."""
        if not self.state.exists():
            return []
        submitted: dict[str, str] = {}
        joined: set[str] = set()
        for line in self.state.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn last line: the batch it named is submitted again
            if entry.get("event") == "submitted":
                submitted[entry["batch_id"]] = entry["step"]
            elif entry.get("event") == "joined":
                joined.add(entry["batch_id"])
        return [b for b, s in submitted.items() if s == step and b not in joined]

    # -- rounds ----------------------------------------------------------------------
    async def submit(self, step: str, wanted: dict[str, dict]) -> str:
        """Upload the requests as a batch input file and create the batch; returns its id."""
        lines = [
            json.dumps({"custom_id": key, "method": "POST", "url": BATCH_ENDPOINT, "body": body})
            for key, body in sorted(wanted.items())
        ]
        file_id = await self.transport.upload(("\n".join(lines) + "\n").encode("utf-8"), f"prist-{step}.jsonl")
        batch = await self.transport.create_batch(file_id, metadata={"tool": "prist", "step": step})
        self._record(
            {
                "event": "submitted",
                "step": step,
                "batch_id": batch["id"],
                "input_file_id": file_id,
                "requests": len(lines),
                "at": time.time(),
            }
        )
        return batch["id"]

    async def join(self, batch_id: str) -> BatchResult:
        """Poll until the batch ends, then cache every answered line."""
        while True:
            batch = await self.transport.retrieve_batch(batch_id)
            counts = batch.get("request_counts") or {}
            if self.progress:
                done = int(counts.get("completed", 0)) + int(counts.get("failed", 0))
                self.progress(batch["status"], done, int(counts.get("total", 0)))
            if batch["status"] in TERMINAL:
                break
            await asyncio.sleep(self.poll_s)
        result = BatchResult(batch_id, batch["status"])
        for file_key in ("output_file_id", "error_file_id"):
            if batch.get(file_key):
                self._read_results(await self.transport.download(batch[file_key]), result)
        self._record(
            {
                "event": "joined",
                "batch_id": batch_id,
                "status": result.status,
                "answered": result.answered,
                "failed": result.failed,
                "expired": result.expired,
                "refused": result.refused,
                "at": time.time(),
            }
        )
        return result

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
                # refused for good (an image the API will not take): cache the refusal so the
                # input goes to rejects instead of being re-sent every round
                body = response.get("body") if isinstance(response.get("body"), dict) else {}
                self.cache.put(
                    entry["custom_id"],
                    {"error": body.get("error") or {"message": str(body)}, "status_code": response["status_code"]},
                )
                result.refused += 1
            elif error.get("code") == "batch_expired":
                result.expired += 1
            else:
                result.failed += 1
