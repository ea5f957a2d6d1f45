"""On-disk, content-addressed cache of chat completion responses.

A key is the SHA-256 of the request (server, body and caller-supplied extras such as the
prompt version), so a repeated build or a resumed one gets the same answer without a
request. Each response is one JSON file, written as soon as it arrives.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

FANOUT_CHARS = 2
"""Leading hex characters of a key used as the sub-folder name (256 folders)."""

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
    memo = (hash(text), len(text), text[-TAIL_CHARS:])
    found = _digests.get(memo)
    if found is None:
        found = _digest_data_url(text)
        if len(_digests) >= DIGEST_MEMO:
            _digests.pop(next(iter(_digests)))
        _digests[memo] = found
    return found


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

    Layout: ``root/ab/abcdef....json``, one JSON file per key. Files are written atomically
    (a temporary file in the same folder, then :func:`os.replace`) right when a response
    arrives, so a crash loses at most the requests in flight and never leaves a partial
    file under a key name.

    Attributes:
        root: the cache folder (created on first write).
        hits, misses: :meth:`get` outcomes since construction.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.hits = 0
        self.misses = 0
        self._folders: set[Path] = set()

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
        """The file that holds (or would hold) the response under ``key``."""
        return self.root / key[:FANOUT_CHARS] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored response for ``key``, or ``None`` (a missing or unreadable file is a miss)."""
        try:
            with open(self.path(key), "rb") as handle:
                value = json.loads(handle.read())
        except (OSError, ValueError):
            self.misses += 1
            return None
        if not isinstance(value, dict):
            self.misses += 1
            return None
        self.hits += 1
        return value

    def put(self, key: str, response: dict[str, Any]) -> None:
        """Store ``response`` under ``key``, atomically replacing any previous entry.

        Raises:
            OSError: the folder or file cannot be written.
            TypeError: ``response`` is not JSON-serialisable.
        """
        target = self.path(key)
        if target.parent not in self._folders:  # one mkdir per folder, not per answer
            target.parent.mkdir(parents=True, exist_ok=True)
            self._folders.add(target.parent)
        data = json.dumps(response, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        handle, tmp_name = tempfile.mkstemp(prefix=f".{key[: FANOUT_CHARS * 4]}-", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(handle, "wb") as tmp:
                tmp.write(data)
            os.replace(tmp_name, target)
        except BaseException:
            try:
                os.unlink(tmp_name)
            except OSError:
                pass
            raise

    def discard(self, key: str) -> bool:
        """Forget the entry under ``key`` (e.g. an answer that failed validation); True if one existed."""
        try:
            self.path(key).unlink()
        except FileNotFoundError:
            return False
        return True
