"""Crash-safe append-only JSONL logs for records added after a build (annotations, final
masks, reviews, evaluation caches).

Every append is one ``write`` on an ``O_APPEND`` descriptor under an exclusive ``flock``
(so two processes never interleave lines), followed by ``fsync``. A reader keeps only
newline-terminated lines, so a line torn by ``kill -9`` or a power cut is ignored (and cut
away by the next append). Nothing is ever rewritten in place: a later line for the same
key supersedes an earlier one, and the history stays in the file.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class LogLineError(ValueError):
    """A complete line of a log does not hold a valid record; names the file and line."""


def _cut_torn_tail(fd: int) -> None:
    """Truncate an unterminated last line (left by a crash) before appending."""
    size = os.lseek(fd, 0, os.SEEK_END)
    if size == 0:
        return
    block = 4096
    pos = size
    while pos > 0:
        start = max(0, pos - block)
        chunk = os.pread(fd, pos - start, start)
        if pos == size and chunk.endswith(b"\n"):
            return
        newline = chunk.rfind(b"\n")
        if newline >= 0:
            os.ftruncate(fd, start + newline + 1)
            return
        pos = start
    os.ftruncate(fd, 0)


def append(path: Path, records: Iterable[BaseModel], fsync: bool = True) -> int:
    """Append records to ``path`` as JSON lines in one write; returns how many.

    Creates the file (and its folder) if needed. Safe against concurrent writers and
    against a crash mid-write (see the module docstring).

    Raises:
        OSError: the file cannot be opened or written.
    """
    payload = b"".join(r.model_dump_json().encode("utf-8") + b"\n" for r in records)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        _cut_torn_tail(fd)
        if payload:
            os.write(fd, payload)
            if fsync:
                os.fsync(fd)
    finally:
        os.close(fd)
    return payload.count(b"\n")


def touch(path: Path) -> None:
    """Create ``path`` empty if it does not exist (a contract file exists even when empty)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644))


def read(path: Path, model: type[M]) -> Iterator[M]:
    """Validated records of ``path`` in file order; a missing file reads as empty.

    An unterminated last line is skipped (a write in progress or torn by a crash).

    Raises:
        LogLineError: a complete line is not a valid ``model`` ("<file>:<line>: <error>").
    """
    path = Path(path)
    if not path.exists():
        return
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.endswith(b"\n"):
                return
            if not line.strip():
                continue
            try:
                yield model.model_validate_json(line)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first.get("loc", ())) or "line"
                raise LogLineError(f"{path}:{number}: field {where}: {first.get('msg')}") from None


def latest(records: Iterable[M], key: Callable[[M], str]) -> dict[str, M]:
    """The last record per key, in order of first appearance of the key."""
    out: dict[str, M] = {}
    for record in records:
        out[key(record)] = record
    return out
