"""Per-request accounting written as each request completes: ``RUN/requests.jsonl``.

One JSON line per call (a chat completion answered, failed or read from the cache; a batch
line joined; a file or batch API call), appended with one ``write`` on an ``O_APPEND``
descriptor the moment the call ends, so a crash or ``kill -9`` loses nothing that was
paid for. ``fsync`` runs at most once a second and at close: after a power cut, at most
the last second of lines is lost. Run totals (the manifest's ``usage``) are always
rebuilt from this file (:func:`totals`), so they survive a kill and a resume.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

FSYNC_INTERVAL_S = 1.0
"""Most seconds between two fsyncs of the accounting log."""
COST_DECIMALS = 6
"""Totals round USD to a millionth of a dollar."""


class AccountingLog:
    """An open ``requests.jsonl``; :meth:`write` appends one line per finished call.

    Args:
        path: the log file (created with its folder if missing).
        fsync: fsync at most once a second and at close (``False``: never).
    """

    def __init__(self, path: Path, fsync: bool = True) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._fsync = fsync
        self._last_sync = time.monotonic()

    def write(self, entry: dict[str, Any]) -> None:
        """Append ``entry`` as one JSON line now (never buffered in the process)."""
        if self._fd is None:
            return
        os.write(self._fd, (json.dumps(entry, sort_keys=True) + "\n").encode("utf-8"))
        if self._fsync and time.monotonic() - self._last_sync >= FSYNC_INTERVAL_S:
            os.fsync(self._fd)
            self._last_sync = time.monotonic()

    def close(self) -> None:
        """fsync and close (safe to call twice)."""
        if self._fd is not None:
            if self._fsync:
                os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def totals(path: Path) -> dict[str, Any]:
    """Run totals over every complete line of ``path`` (a missing file gives zeros).

    Returns:
        ``{"requests": HTTP attempts, "cached": cache answers, "retries", "rate_limited",
        "prompt_tokens", "completion_tokens", "cost_usd": USD, "unknown_usage": answered
        calls whose token counts the server did not give as numbers}``.
    """
    out: dict[str, float] = {
        k: 0
        for k in (
            "requests",
            "cached",
            "retries",
            "rate_limited",
            "prompt_tokens",
            "completion_tokens",
            "cost_usd",
            "unknown_usage",
        )
    }
    path = Path(path)
    if path.exists():
        with open(path, "rb") as handle:
            for line in handle:
                if not line.endswith(b"\n"):
                    break  # torn by a crash
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                out["requests"] += _number(entry.get("attempts"))
                out["cached"] += 1 if entry.get("cached") else 0
                out["retries"] += _number(entry.get("retries"))
                out["rate_limited"] += _number(entry.get("rate_limited"))
                out["prompt_tokens"] += _number(entry.get("prompt_tokens"))
                out["completion_tokens"] += _number(entry.get("completion_tokens"))
                out["cost_usd"] += _number(entry.get("cost_usd"))
                out["unknown_usage"] += 1 if entry.get("usage_unknown") else 0
    result: dict[str, Any] = {k: int(v) for k, v in out.items() if k != "cost_usd"}
    result["cost_usd"] = round(out["cost_usd"], COST_DECIMALS)
    return result
