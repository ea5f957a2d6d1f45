"""On-disk, content-addressed cache of chat completion responses.

A key is the SHA-256 of the request (server, body and caller-supplied extras such as the
prompt version), so a repeated build or a resumed one gets the same answer without a
request. Responses live in one SQLite database per cache folder, each committed as soon as
it arrives (no file per answer).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

FANOUT_CHARS = 2
"""Leading hex characters of a key used as the sub-folder name of the file-per-answer
layout of earlier versions (256 folders), still read."""
DATABASE = "responses.sqlite3"
"""The cache's SQLite database, in the cache folder."""
BUSY_TIMEOUT_MS = 30_000
"""How long a write waits for another process writing the same cache (milliseconds)."""
SETUP_RETRY_S = 0.01
"""Pause between two tries to set up a database another process is creating (seconds)."""

log = logging.getLogger(__name__)

_DATA_URL = re.compile(r"^data:[^,;]*(?:;[^,;]*)*;base64,", re.IGNORECASE)


def _digest_data_url(text: str) -> str:
    """``sha256:<hex>`` of the bytes a base64 data URL encodes; other strings unchanged.

    A data URL whose payload is not valid base64 is hashed as text, so it still gets a
    stable, distinct key.
    """
    match = _DATA_URL.match(text)
    if match is None:
        return text
    payload = text[match.end() :]
    try:
        raw = base64.b64decode(payload, validate=False)
    except (binascii.Error, ValueError):
        raw = payload.encode("utf-8")
    return "sha256:" + hashlib.sha256(raw).hexdigest()


DIGEST_MEMO = 4096
"""Data URL digests remembered (an image's URL is hashed once per process, not per request)."""
TAIL_CHARS = 64
"""Last characters of a URL kept in its memo entry (with its length and hash)."""
_digests: dict[tuple[int, int, str], str] = {}


def _memo_digest(text: str) -> str:
    """:func:`_digest_data_url`, remembered for the last :data:`DIGEST_MEMO` URLs.

    An entry is found by the URL's length, its last :data:`TAIL_CHARS` characters and its
    64-bit ``hash`` (SipHash, keyed per process, and cached by ``str`` itself so a URL sent
    in every step is hashed once): a false match would need two images' base64 to agree in
    all three, odds far below one in 2**64 per pair. The memo holds no URL, so it stays small.
    """
    memo = _memo_key(text)
    found = _digests.get(memo)
    if found is None:
        found = _digest_data_url(text)
        _remember(memo, found)
    return found


def _memo_key(text: str) -> tuple[int, int, str]:
    return hash(text), len(text), text[-TAIL_CHARS:]


def _remember(memo: tuple[int, int, str], digest: str) -> None:
    if len(_digests) >= DIGEST_MEMO:
        _digests.pop(next(iter(_digests)))
    _digests[memo] = digest


def remember_data_url(url: str, sha256: str) -> None:
    """Give the cache key the digest of a data URL made by the caller, who hashed its bytes
    already (``sha256``: hex SHA-256 of the bytes the base64 payload encodes), so that
    :meth:`ResponseCache.key` does not decode and hash the URL again. The key is the same
    either way."""
    _remember(_memo_key(url), "sha256:" + sha256)


SHARED_PARTS = frozenset({"response_format"})
"""Body fields whose value is usually one shared object (a cached response format): their
replaced copy is remembered by identity instead of being walked for every request."""
_shared: dict[int, tuple[Any, Any]] = {}


def _replace_shared(value: Any) -> Any:
    """:func:`_replace_data_urls` of a shared value, remembered while the value lives (the
    memo keeps a reference, so an ``id`` is never reused for another object)."""
    found = _shared.get(id(value))
    if found is not None and found[0] is value:
        return found[1]
    replaced = _replace_data_urls(value)
    if len(_shared) >= DIGEST_MEMO:
        _shared.pop(next(iter(_shared)))
    _shared[id(value)] = (value, replaced)
    return replaced


def _replace_data_urls(value: Any) -> Any:
    """A copy of ``value`` (JSON-like) with every base64 data URL replaced by its digest."""
    if isinstance(value, str):
        return _memo_digest(value) if value[:5].lower() == "data:" else value
    if isinstance(value, dict):
        return {k: _replace_shared(v) if k in SHARED_PARTS else _replace_data_urls(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_replace_data_urls(v) for v in value]
    return value


class ResponseCache:
    """Content-addressed store of chat completion bodies.

    Layout: ``root/responses.sqlite3``, one row per key (the compact UTF-8 JSON of the
    response). The database runs in WAL mode with ``synchronous=NORMAL``: each answer is
    its own transaction, committed when it arrives, so a crash or ``kill -9`` loses at
    most the requests in flight and never leaves a torn entry; builds in several
    processes may share a cache (SQLite's locking; a local disk, not NFS). The
    file-per-answer layout of earlier versions (``root/ab/abcdef....json``) is still
    read, so an old cache is not paid for again.

    Attributes:
        root: the cache folder (created on first write).
        hits, misses: :meth:`get` outcomes since construction.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._pid = 0

    @staticmethod
    def key(base_url: str, body: dict[str, Any], extra: dict[str, Any]) -> str:
        """The SHA-256 hex key of one request.

        Hashes the canonical JSON (sorted keys, compact separators, UTF-8) of
        ``{"base_url", "body", "extra"}``. Base64 data URLs (images) are first replaced by
        ``sha256:<hex of the decoded bytes>``, so the key depends on the image bytes but
        the hashing cost does not grow with the encoded payload; ``extra`` carries what is
        not in the body but changes the meaning of an answer (e.g. a prompt version).

        Raises:
            TypeError: ``body`` or ``extra`` holds a value JSON cannot encode.
        """
        document = {"base_url": base_url.rstrip("/"), "body": _replace_data_urls(body), "extra": extra}
        canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def path(self, key: str) -> Path:
        """The file that held the response under ``key`` in the file-per-answer layout."""
        return self.root / key[:FANOUT_CHARS] / f"{key}.json"

    def _connect(self, create: bool) -> sqlite3.Connection | None:
        """The database of this process (a connection is never used across ``fork``);
        ``None`` when it does not exist and ``create`` is false."""
        if self._db is not None and self._pid == os.getpid():
            return self._db
        path = self.root / DATABASE
        if not create and not path.exists():
            return None
        self.root.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False)
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        while True:  # two processes creating the database at once: SQLite answers "locked" at once
            try:
                if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    db.execute("PRAGMA journal_mode=WAL")
                db.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, body BLOB NOT NULL)")
                break
            except sqlite3.OperationalError:
                if time.monotonic() > deadline:
                    db.close()
                    raise
                time.sleep(SETUP_RETRY_S)
        db.execute("PRAGMA synchronous=NORMAL")
        self._db, self._pid = db, os.getpid()
        return db

    def _select(self, key: str) -> bytes | None:
        try:
            with self._lock:
                db = self._connect(create=False)
                row = db.execute("SELECT body FROM responses WHERE key = ?", (key,)).fetchone() if db else None
        except sqlite3.Error as exc:  # unreadable database: a miss (a write then says what is wrong)
            log.debug("response cache %s not read: %s", self.root / DATABASE, exc)
            return None
        return row[0] if row else None

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored response for ``key``, or ``None`` (a missing or unreadable entry is a miss)."""
        data = self._select(key)
        if data is None:
            try:
                with open(self.path(key), "rb") as handle:
                    data = handle.read()
            except OSError:
                self.misses += 1
                return None
        try:
            value = json.loads(data)
        except ValueError:
            value = None
        if not isinstance(value, dict):
            self.misses += 1
            return None
        self.hits += 1
        return value

    def put(self, key: str, response: dict[str, Any]) -> None:
        """Store ``response`` under ``key`` (committed on return), replacing any previous entry.

        Raises:
            OSError: the folder or the database cannot be written (disk full, read-only,
                not a SQLite database); the message names the file.
            TypeError: ``response`` is not JSON-serialisable.
        """
        data = json.dumps(response, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        try:
            with self._lock:
                db = self._connect(create=True)
                assert db is not None
                db.execute("INSERT OR REPLACE INTO responses (key, body) VALUES (?, ?)", (key, data))
        except sqlite3.Error as exc:
            raise OSError(f"{self.root / DATABASE}: cannot write the response cache ({exc})") from None

    def discard(self, key: str) -> bool:
        """Forget the entry under ``key`` (e.g. an answer that failed validation); True if one existed."""
        with self._lock:
            db = self._connect(create=False)
            found = db is not None and db.execute("DELETE FROM responses WHERE key = ?", (key,)).rowcount > 0
        try:
            self.path(key).unlink()
        except FileNotFoundError:
            return found
        return True

    def entries(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every readable ``(key, response)`` in the cache (database, then older files)."""
        with self._lock:
            db = self._connect(create=False)
            rows = db.execute("SELECT key, body FROM responses ORDER BY key").fetchall() if db else []
        seen = set()
        for key, data in rows:
            seen.add(key)
            value = json.loads(data)
            if isinstance(value, dict):
                yield key, value
        for path in sorted(self.root.glob(f"{'?' * FANOUT_CHARS}/*.json")):
            if path.stem not in seen and (value := self.get(path.stem)) is not None:
                yield path.stem, value

    def close(self) -> None:
        """Close this process's database connection (reopened on next use)."""
        with self._lock:
            if self._db is not None and self._pid == os.getpid():
                self._db.close()
            self._db = None
