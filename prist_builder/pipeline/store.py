"""The run folder: append-only JSONL per step, a journal of finished inputs, recovery.

Layout of ``RUN/``::

    elements.jsonl  trees.jsonl  dialogues.jsonl   one record per line
    rejects.jsonl                                   inputs set aside, with reasons
    manifest.json                                   config, versions, counts, timings
    .journal/<step>.jsonl                           one line per finished input
    .lock                                           held while a process writes the run

How nothing is lost or duplicated: all records an input produces are appended to the
step file in one ``write``, then its rejects, then one journal line holding the input's
key and the byte size each file had after the write. Only journalled bytes count. On
open, a torn journal tail is cut, and every data file is truncated to the largest size
the journal vouches for, which drops the records of an input that was cut short by a
crash or SIGKILL. Such an input is simply done again. Writes go straight to the kernel
(``os.write``), so a killed process loses nothing it had written. ``fsync`` runs at most
once a second and at close (on by default): after a power cut, at most the last second of
inputs is lost, and recovery drops journal lines whose data did not reach the disk.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from prist_builder.records import DialogueRecord, ElementsRecord, Reject, TreeRecord
from prist_builder.records.steps import STEPS

REJECTS_FILE = "rejects.jsonl"
MANIFEST_FILE = "manifest.json"
RECORD_TYPES: dict[str, type[BaseModel]] = {
    "elements": ElementsRecord,
    "trees": TreeRecord,
    "dialogues": DialogueRecord,
}
CONTRACT_FILES: tuple[str, ...] = (*(f"{s}.jsonl" for s in STEPS), REJECTS_FILE)
"""Data files of a run folder, created (empty) when a run is opened for writing."""
PART_STEPS = ("dialogues",)
"""Steps whose inputs can be partly rejected and then retried part by part (step 3: the
dialogues of one tree, one per path)."""
FSYNC_INTERVAL_S = 1.0
"""Most seconds between two fsyncs of the run files when fsync is on."""

M = TypeVar("M", bound=BaseModel)


class RunLockedError(RuntimeError):
    """Another process is writing the same run folder."""


@dataclass
class JournalEntry:
    """One finished input of a step: its key, how it ended, and the committed file sizes."""

    key: str
    records: int
    rejects: int
    sizes: dict[str, int] = field(default_factory=dict)


def _parse_entry(line: bytes) -> JournalEntry | None:
    """A journal line, or ``None`` if it is garbage (a power cut can leave zeros)."""
    try:
        raw = json.loads(line)
        return JournalEntry(str(raw["key"]), int(raw["records"]), int(raw["rejects"]), dict(raw["sizes"]))
    except (ValueError, KeyError, TypeError):
        return None


def _to_line(model: BaseModel) -> bytes:
    return model.model_dump_json().encode("utf-8") + b"\n"


def _complete_lines(path: Path) -> tuple[list[bytes], int]:
    """The newline-terminated lines of ``path`` and their total size in bytes."""
    if not path.exists():
        return [], 0
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    return data[:end].splitlines(), end


class RunStore:
    """An open run folder, locked for writing by this process.

    Args:
        root: the run folder; created if missing.
        fsync: fsync the files after writes (at most every ``FSYNC_INTERVAL_S`` seconds)
            and at close, and the manifest when it is rewritten (kept as ``fsync``).

    Raises:
        RunLockedError: another live process holds the run's lock.
    """

    def __init__(self, root: Path, fsync: bool = True) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / ".journal").mkdir(exist_ok=True)
        self.fsync = fsync
        self._last_sync = time.monotonic()
        self._lock_fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(self._lock_fd)
            raise RunLockedError(f"{self.root}: another prist process is writing this run") from exc
        self._fds: dict[str, int] = {}
        self._bounds: dict[str, Any] | None = None
        self.journal: dict[str, dict[str, JournalEntry]] = {}
        self._kept: dict[str, dict[str, JournalEntry]] = {step: {} for step in STEPS}
        self._recover()
        for name in CONTRACT_FILES:  # every file the README names exists, even when empty
            self._fd(name)

    # -- recovery --------------------------------------------------------------------
    def _recover(self) -> None:
        """Cut every file back to what the journal vouches for.

        A journal line counts only if it parses and every size it names is really on disk
        (after a power cut the journal can be ahead of the data it describes); the journal
        is cut at its first line that fails, and each data file at the largest size the
        remaining lines name.
        """
        actual = {name: self._size(name) for name in CONTRACT_FILES}
        committed: dict[str, int] = {}
        for step in STEPS:
            path = self._journal_path(step)
            lines, _ = _complete_lines(path)
            entries: dict[str, JournalEntry] = {}
            keep = 0
            for line in lines:
                entry = _parse_entry(line)
                if entry is None or any(actual.get(name, 0) < size for name, size in entry.sizes.items()):
                    break
                entries[entry.key] = entry
                keep += len(line) + 1
                for name, offset in entry.sizes.items():
                    committed[name] = max(committed.get(name, 0), offset)
            if path.exists() and path.stat().st_size != keep:
                os.truncate(path, keep)
            self.journal[step] = entries
        for name, size in actual.items():
            if size > committed.get(name, 0):
                os.truncate(self.root / name, committed.get(name, 0))

    def _size(self, name: str) -> int:
        path = self.root / name
        return path.stat().st_size if path.exists() else 0

    # -- paths -----------------------------------------------------------------------
    def _journal_path(self, step: str) -> Path:
        return self.root / ".journal" / f"{step}.jsonl"

    def data_path(self, step: str) -> Path:
        """Path of a step's JSONL file."""
        return self.root / f"{step}.jsonl"

    def _fd(self, name: str) -> int:
        if name not in self._fds:
            self._fds[name] = os.open(self.root / name, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        return self._fds[name]

    def _append(self, name: str, payload: bytes) -> int:
        """Append ``payload`` in full and return the file size after it, in bytes."""
        fd = self._fd(name)
        view = memoryview(payload)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        return os.fstat(fd).st_size

    # -- writing ---------------------------------------------------------------------
    def is_done(self, step: str, key: str) -> bool:
        """Whether ``key`` was finished (built or rejected) by ``step``."""
        return key in self.journal[step]

    def reopen_rejected(self) -> dict[str, int]:
        """Let every input that a step rejected outright (no record) be done again, and, in
        :data:`PART_STEPS`, every input partly rejected (``prist build --retry-rejected``);
        returns how many per step.

        Only this process's view changes: the reject lines stay in ``rejects.jsonl`` as
        history, and a new commit of the input appends a journal line that supersedes the
        old one (the last line of a key wins on reading), so the input counts as built or
        rejected by its newest outcome. A partly rejected input keeps its records: its new
        commit appends only the parts done now, and its journal line counts the records
        of both (see :meth:`partly_built`). Nothing built is sent again.
        """
        reopened: dict[str, int] = {}
        for step, entries in self.journal.items():
            keys = [key for key, entry in entries.items() if entry.records == 0 and entry.rejects > 0]
            parts = [k for k, e in entries.items() if step in PART_STEPS and e.records > 0 and e.rejects > 0]
            for key in keys:
                del entries[key]
            for key in parts:
                self._kept[step][key] = entries.pop(key)
            reopened[step] = len(keys) + len(parts)
        return reopened

    def partly_built(self, step: str) -> set[str]:
        """Keys of the partly rejected inputs reopened by :meth:`reopen_rejected` and not yet
        committed again: their records stay, only their missing parts are to be done."""
        return set(self._kept[step])

    def _entries(self, step: str) -> list[JournalEntry]:
        """The newest outcome of every input of a step (a reopened partly built input by its
        records kept until it is committed again)."""
        kept = self._kept[step]
        return [*self.journal[step].values(), *(e for k, e in kept.items() if k not in self.journal[step])]

    def standing_rejects(self) -> int:
        """Reject lines of the newest outcome of every input, over all steps (lines of a
        retried input's earlier outcomes, kept as history, are not counted)."""
        return sum(entry.rejects for step in self.journal for entry in self._entries(step))

    def commit(self, step: str, key: str, records: Sequence[BaseModel], rejects: Sequence[Reject]) -> None:
        """Append the outcome of one input atomically and mark it finished.

        Raises:
            ValueError: ``key`` is already finished for ``step`` (a duplicate would result).
        """
        if self.is_done(step, key):
            raise ValueError(f"{step}: input {key!r} is already finished")
        kept = self._kept[step].pop(key, None)  # a partly built input: its earlier records stay
        sizes: dict[str, int] = {}
        if records:
            sizes[f"{step}.jsonl"] = self._append(f"{step}.jsonl", b"".join(_to_line(r) for r in records))
        if rejects:
            sizes[REJECTS_FILE] = self._append(REJECTS_FILE, b"".join(_to_line(r) for r in rejects))
        entry = JournalEntry(key, len(records) + (kept.records if kept else 0), len(rejects), sizes)
        line = json.dumps({"key": key, "records": entry.records, "rejects": entry.rejects, "sizes": sizes})
        self._append(f".journal/{step}.jsonl", line.encode("utf-8") + b"\n")
        self.journal[step][key] = entry
        if self.fsync and time.monotonic() - self._last_sync >= FSYNC_INTERVAL_S:
            self.sync()

    def descriptors(self) -> list[int]:
        """File descriptors this store holds (the lock included).

        Forked worker processes must close them: an inherited lock descriptor would
        keep the run locked after this process dies.
        """
        return [self._lock_fd, *self._fds.values()]

    def sync(self) -> None:
        """fsync every file this store has written to."""
        for fd in self._fds.values():
            os.fsync(fd)
        self._last_sync = time.monotonic()

    def close(self) -> None:
        """Flush (fsync if enabled), close files and release the lock."""
        if self.fsync:
            self.sync()
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
        fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        os.close(self._lock_fd)

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading ---------------------------------------------------------------------
    def iter_raw(self, name: str) -> Iterator[dict[str, Any]]:
        """Parsed JSON lines of a run file (``"elements.jsonl"``, ``"rejects.jsonl"``, ...)."""
        lines, _ = _complete_lines(self.root / name)
        for line in lines:
            yield json.loads(line)

    def records(self, step: str, model: type[M] | None = None) -> Iterator[M]:
        """Validated records of a step, in file order (with the run's turn bounds), read as
        a stream: one record in memory at a time."""
        cls = model or RECORD_TYPES[step]
        bounds = run_bounds(self.root)
        for _, line in iter_lines(self.data_path(step)):
            yield cls.model_validate_json(line, context=bounds)  # type: ignore[misc]

    def record_offsets(self, step: str) -> dict[str, int]:
        """``image_id -> byte offset`` of each record of a step (an index to read one record
        later with :meth:`record_at`, without holding the records)."""
        index: dict[str, int] = {}
        for offset, line in iter_lines(self.data_path(step)):
            image_id = line_image_id(line)
            if image_id is not None:
                index[image_id] = offset
        return index

    def record_at(self, step: str, offset: int, model: type[M] | None = None) -> M:
        """The validated record of a step that starts at byte ``offset``."""
        cls = model or RECORD_TYPES[step]
        line = read_line_at(self.data_path(step), offset)
        if self._bounds is None:  # the manifest's turn bounds do not change during a build
            self._bounds = run_bounds(self.root)
        return cls.model_validate_json(line, context=self._bounds)  # type: ignore[return-value]

    def counts(self, step: str) -> dict[str, int]:
        """``{"inputs", "records", "rejected"}`` for a step, from its journal."""
        entries = self._entries(step)
        return {
            "inputs": len(entries),
            "records": sum(e.records for e in entries),
            "rejected": sum(1 for e in entries if e.records == 0),
        }


_IMAGE_ID = re.compile(rb'^\{"image_id":("(?:[^"\\]|\\.)*")')


def iter_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """``(byte offset, line)`` of every complete line of a JSONL file, read as a stream (a
    torn last line is left out; a missing file reads as empty). Memory: one line at a time."""
    if not Path(path).exists():
        return
    offset = 0
    with open(path, "rb") as handle:
        for line in handle:
            if not line.endswith(b"\n"):
                return
            yield offset, line[:-1]
            offset += len(line)


def read_line_at(path: Path, offset: int) -> bytes:
    """The line of a JSONL file that starts at byte ``offset`` (see :func:`iter_lines`)."""
    with open(path, "rb") as handle:
        handle.seek(offset)
        return handle.readline().rstrip(b"\n")


def line_image_id(line: bytes) -> str | None:
    """The ``image_id`` of a step record line without parsing the record (records write it
    first); None when the line does not start with it."""
    match = _IMAGE_ID.match(line)
    return json.loads(match.group(1)) if match else None


def finished_keys(run: Path, step: str) -> set[str]:
    """Keys of the inputs a step's journal marks finished, read only: no lock taken, no
    repair made, nothing created (for estimates while another process may write the run)."""
    lines, _ = _complete_lines(Path(run) / ".journal" / f"{step}.jsonl")
    return {entry.key for entry in map(_parse_entry, lines) if entry is not None}


def is_busy(run: Path) -> bool:
    """True when another process holds the run's write lock (checked without creating anything)."""
    lock = Path(run) / ".lock"
    if not lock.exists():
        return False
    fd = os.open(lock, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def read_records(path: Path, model: type[M], context: dict[str, Any] | None = None) -> list[M]:
    """Validated records of a JSONL file without opening the run for writing.

    A torn last line (no newline yet) is left out. A missing file reads as empty.
    ``context`` carries the run's bounds to the validators (see :func:`run_bounds`).
    """
    lines, _ = _complete_lines(Path(path))
    return [model.model_validate_json(line, context=context) for line in lines]


def run_bounds(run: Path) -> dict[str, Any]:
    """The validation context of a run: its turn bounds, from ``manifest.json`` (defaults if none)."""
    path = Path(run) / MANIFEST_FILE
    config = json.loads(path.read_text(encoding="utf-8")).get("config", {}) if path.exists() else {}
    return {k: config[k] for k in ("min_turns", "max_turns") if k in config}


def write_json_atomic(path: Path, data: Any, fsync: bool = True) -> None:
    """Write JSON to ``path`` through a temporary file and ``os.replace`` (never torn, even
    by ``kill -9``; ``fsync`` also makes it survive a power cut)."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.write("\n")
        handle.flush()
        if fsync:
            os.fsync(handle.fileno())
    os.replace(tmp, path)
