"""A small in-memory Hugging Face Hub for tests (``HF_ENDPOINT=http://127.0.0.1:PORT``).

It answers the routes :class:`huggingface_hub.HfApi` uses to create a dataset repo, upload
a folder in one commit (regular files inline, large files through the LFS batch API and a
``PUT`` of their bytes) and download a file, with ``HF_HUB_DISABLE_XET=1``. Every request
is logged (method, path, headers) so that tests can check what the client sent.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlparse

LFS_SUFFIXES = (".parquet", ".png", ".jpg")
"""Files the fake tells the client to send through LFS."""


@dataclass
class FakeRepo:
    """One dataset repo: ``branch -> {path: bytes}`` and its commits."""

    private: bool = False
    branches: dict[str, dict[str, bytes]] = field(default_factory=lambda: {"main": {}})
    commits: list[str] = field(default_factory=list)


@dataclass
class FakeHubState:
    """Everything the fake holds: repos, LFS objects by sha256, the request log, failure switches."""

    repos: dict[str, FakeRepo] = field(default_factory=dict)
    lfs: dict[str, bytes] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    fail_commits: int = 0
    lfs_puts: int = 0


class _Handler(BaseHTTPRequestHandler):
    state: FakeHubState
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        return

    # -- helpers ------------------------------------------------------------------
    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(
        self,
        status: int,
        payload: Any = None,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
        head: bool = False,
    ) -> None:
        data = raw if raw is not None else (b"" if payload is None else json.dumps(payload).encode())
        self.send_response(status)
        self.send_header("Content-Type", "application/json" if raw is None else "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if not head:
            self.wfile.write(data)

    def _missing(self, code: str, head: bool = False) -> None:
        self._send(404, {"error": code}, {"X-Error-Code": code, "X-Error-Message": code}, head=head)

    def _record(self, body: bytes = b"") -> None:
        self.state.requests.append(
            {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
        )

    def _base(self) -> str:
        return f"http://{self.headers.get('Host')}"

    # -- routes -------------------------------------------------------------------
    def do_HEAD(self) -> None:  # noqa: N802
        self._record()
        self._get(head=True)

    def do_GET(self) -> None:  # noqa: N802
        self._record()
        self._get(head=False)

    def _get(self, head: bool) -> None:
        path = unquote(urlparse(self.path).path)
        if path.startswith("/api/agent-harnesses"):
            return self._send(200, {}, head=head)
        m = re.fullmatch(r"/api/datasets/([^/]+/[^/]+)(?:/revision/([^/]+))?", path)
        if m:
            repo = self.state.repos.get(m.group(1))
            if repo is None:
                return self._missing("RepoNotFound", head)
            rev = m.group(2) or "main"
            if rev not in repo.branches:
                return self._missing("RevisionNotFound", head)
            siblings = [{"rfilename": p} for p in sorted(repo.branches[rev])]
            sha = repo.commits[-1] if repo.commits else "0" * 40
            return self._send(
                200, {"id": m.group(1), "sha": sha, "private": repo.private, "siblings": siblings}, head=head
            )
        m = re.fullmatch(r"/api/datasets/([^/]+/[^/]+)/tree/([^/]+)(?:/(.*))?", path)
        if m:
            repo = self.state.repos.get(m.group(1))
            if repo is None or m.group(2) not in repo.branches:
                return self._missing("RepoNotFound", head)
            files = repo.branches[m.group(2)]
            prefix = (m.group(3) or "").strip("/")
            entries = [
                {"type": "file", "path": p, "size": len(b), "oid": hashlib.sha1(b).hexdigest()}
                for p, b in sorted(files.items())
                if not prefix or p == prefix or p.startswith(prefix + "/")
            ]
            if prefix and not entries:
                return self._missing("EntryNotFound", head)
            return self._send(200, entries, head=head)
        m = re.fullmatch(r"/datasets/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
        if m:
            repo = self.state.repos.get(m.group(1))
            if repo is None:
                return self._missing("RepoNotFound", head)
            if m.group(2) not in repo.branches:
                return self._missing("RevisionNotFound", head)
            data = repo.branches[m.group(2)].get(m.group(3))
            if data is None:
                return self._missing("EntryNotFound", head)
            sha = repo.commits[-1] if repo.commits else "0" * 40
            etag = f'"{hashlib.sha256(data).hexdigest()}"'
            return self._send(200, raw=data, head=head, headers={"ETag": etag, "X-Repo-Commit": sha})
        self._missing("NotFound", head)

    def do_PUT(self) -> None:  # noqa: N802
        body = self._body()
        self._record(body)
        m = re.fullmatch(r"/lfs-upload/([0-9a-f]{64})", urlparse(self.path).path)
        if m and hashlib.sha256(body).hexdigest() == m.group(1):
            self.state.lfs[m.group(1)] = body
            self.state.lfs_puts += 1
            return self._send(200, {})
        self._send(400, {"error": "bad upload"})

    def do_POST(self) -> None:  # noqa: N802
        body = self._body()
        self._record(body)
        path = unquote(urlparse(self.path).path)
        if path == "/api/repos/create":
            spec = json.loads(body or b"{}")
            repo_id = f"{spec.get('organization') or 'user'}/{spec['name']}"
            private = bool(spec.get("private")) or spec.get("visibility") == "private"
            self.state.repos.setdefault(repo_id, FakeRepo(private=private))
            return self._send(200, {"url": f"{self._base()}/datasets/{repo_id}", "name": repo_id})
        if path == "/api/validate-yaml":
            return self._send(200, {"errors": [], "warnings": []})
        m = re.fullmatch(r"/api/datasets/([^/]+/[^/]+)/branch/([^/]+)", path)
        if m and m.group(1) in self.state.repos:
            repo = self.state.repos[m.group(1)]
            repo.branches.setdefault(m.group(2), dict(repo.branches["main"]))
            return self._send(200, {})
        m = re.fullmatch(r"/api/datasets/([^/]+/[^/]+)/preupload/([^/]+)", path)
        if m:
            files = json.loads(body).get("files", [])
            return self._send(
                200,
                {
                    "files": [
                        {
                            "path": f["path"],
                            "shouldIgnore": False,
                            "uploadMode": "lfs" if f["path"].endswith(LFS_SUFFIXES) else "regular",
                        }
                        for f in files
                    ]
                },
            )
        m = re.fullmatch(r"/datasets/([^/]+/[^/]+)\.git/info/lfs/objects/batch", path)
        if m:
            objects = []
            for obj in json.loads(body).get("objects", []):
                entry = {"oid": obj["oid"], "size": obj["size"]}
                if obj["oid"] not in self.state.lfs:
                    entry["actions"] = {"upload": {"href": f"{self._base()}/lfs-upload/{obj['oid']}"}}
                objects.append(entry)
            return self._send(200, {"transfer": "basic", "objects": objects})
        m = re.fullmatch(r"/api/datasets/([^/]+/[^/]+)/commit/([^/]+)", path)
        if m:
            return self._commit(m.group(1), m.group(2), body)
        self._missing("NotFound")

    def _commit(self, repo_id: str, revision: str, body: bytes) -> None:
        if self.state.fail_commits > 0:
            self.state.fail_commits -= 1
            return self._send(500, {"error": "simulated failure"})
        repo = self.state.repos.get(repo_id)
        if repo is None:
            return self._missing("RepoNotFound")
        files = dict(repo.branches.setdefault(revision, {}))
        for line in body.splitlines():
            item = json.loads(line)
            kind, value = item["key"], item["value"]
            if kind == "file":
                files[value["path"]] = base64.b64decode(value["content"])
            elif kind == "lfsFile":
                data = self.state.lfs.get(value["oid"])
                if data is None:
                    return self._send(422, {"error": f"LFS object {value['oid']} missing"})
                files[value["path"]] = data
            elif kind in ("deletedFile", "deletedEntry"):
                files.pop(value["path"], None)
        repo.branches[revision] = files
        oid = hashlib.sha1(body).hexdigest()
        repo.commits.append(oid)
        self._send(
            200,
            {
                "commitOid": oid,
                "commitUrl": f"{self._base()}/datasets/{repo_id}/commit/{oid}",
                "hookOutput": "",
                "success": True,
            },
        )


class FakeHub:
    """A running fake Hub on ``127.0.0.1``; use as a context manager.

    Attributes:
        url: ``http://127.0.0.1:PORT``, for ``HF_ENDPOINT``.
        state: what it holds and the requests it got.
    """

    def __init__(self) -> None:
        self.state = FakeHubState()
        handler = type("Handler", (_Handler,), {"state": self.state})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FakeHub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
