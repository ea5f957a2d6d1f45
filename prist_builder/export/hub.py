"""``prist push-to-hub``: upload an export folder to the Hugging Face Hub as a dataset repo.

Uses :class:`huggingface_hub.HfApi` only (no hand-written HTTP). The parquet shards,
``README.md`` (the card), its pictures and ``export.json`` go up in one commit, exactly as
they are on disk (the Hub holds the same bytes). Earlier shards under ``data/`` that the
new export does not have are deleted in the same commit, so a re-push never leaves a stale
shard and a re-run after a failure simply finishes: large files that already reached the
Hub are not sent again (the Hub answers that it has them).

The token comes from ``--token``, else ``HF_TOKEN``, else the stored login
(:func:`huggingface_hub.get_token`). It is never printed, logged or written: every error
message is scrubbed of it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import httpx2
import yaml
from huggingface_hub import HfApi, get_token
from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

from prist_builder.export.writer import CARD_FILE, EXPORT_MANIFEST

UPLOAD_PATTERNS = ["data/*.parquet", CARD_FILE, "assets/*.png", EXPORT_MANIFEST]
"""Files of an export folder that go to the Hub."""
STALE_PATTERNS = ["data/*.parquet"]
"""Remote files replaced by each push (shards the new export lacks are deleted)."""

EXIT_NO_TOKEN = 2
EXIT_SCHEMA = 3
EXIT_NETWORK = 4
EXIT_BAD_FOLDER = 5


class HubError(Exception):
    """A push that cannot go on; ``code`` is the CLI's exit status, the message one line."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class PushResult:
    """A finished push: the repo, its revision, the commit URL and the files sent."""

    repo_id: str
    revision: str
    commit_url: str
    files: list[str]


def resolve_token(token: str | None) -> str:
    """The token to use: ``token``, else ``HF_TOKEN``, else the stored login.

    Raises:
        HubError: no token anywhere (exit :data:`EXIT_NO_TOKEN`).
    """
    found = token or os.environ.get("HF_TOKEN") or get_token()
    if not found:
        raise HubError("no Hugging Face token: pass --token, set HF_TOKEN, or run `hf auth login`", EXIT_NO_TOKEN)
    return found


def _scrub(text: str, token: str) -> str:
    return text.replace(token, "***") if token else text


def card_features(card_text: str) -> list | None:
    """``dataset_info.features`` of a dataset card's YAML block, ``None`` when it declares none."""
    if not card_text.startswith("---"):
        return None
    head = card_text.split("---", 2)[1]
    meta = yaml.safe_load(head) or {}
    info = meta.get("dataset_info")
    if isinstance(info, list):
        info = info[0] if info else None
    return info.get("features") if isinstance(info, dict) else None


def _remote_card(api: HfApi, repo_id: str, revision: str) -> str | None:
    try:
        path = api.hf_hub_download(repo_id, CARD_FILE, repo_type="dataset", revision=revision)
    except (EntryNotFoundError, RevisionNotFoundError):
        return None
    return Path(path).read_text(encoding="utf-8")


def check_folder(folder: Path) -> list[Path]:
    """The files of ``folder`` to upload.

    Raises:
        HubError: ``folder`` is not an export (no ``export.json``, card or shard).
    """
    folder = Path(folder)
    if not (folder / EXPORT_MANIFEST).is_file() or not (folder / CARD_FILE).is_file():
        raise HubError(
            f"{folder}: not an export folder (no {EXPORT_MANIFEST} or {CARD_FILE}); run `prist export`", EXIT_BAD_FOLDER
        )
    shards = sorted((folder / "data").glob("*.parquet"))
    if not shards:
        raise HubError(f"{folder}/data: no parquet shards", EXIT_BAD_FOLDER)
    return shards


def push_export(
    folder: Path,
    repo_id: str,
    *,
    token: str | None = None,
    private: bool = False,
    revision: str | None = None,
    endpoint: str | None = None,
) -> PushResult:
    """Push an export folder to the dataset repo ``repo_id``.

    Creates the repo (``private`` if asked) and the branch ``revision`` when missing. A repo
    whose card declares other features than this export is left alone.

    Raises:
        HubError: no token (exit 2), the repo holds another schema (exit 3), a network or
            Hub error (exit 4), ``folder`` is not an export (exit 5); one line, no token in it.
    """
    folder = Path(folder)
    check_folder(folder)
    secret = resolve_token(token)
    api = HfApi(endpoint=endpoint, token=secret)
    branch = revision or "main"
    try:
        try:
            api.repo_info(repo_id, repo_type="dataset")
            exists = True
        except RepositoryNotFoundError:
            exists = False
        if exists:
            remote = _remote_card(api, repo_id, branch) if revision is None else _branch_card(api, repo_id, branch)
            ours = card_features((folder / CARD_FILE).read_text(encoding="utf-8"))
            theirs = card_features(remote) if remote else None
            if theirs is not None and theirs != ours:
                raise HubError(
                    f"{repo_id} already holds a dataset with a different schema (dataset_info.features of"
                    " its README.md); push to another repo or delete it first",
                    EXIT_SCHEMA,
                )
        else:
            api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        if branch != "main":
            api.create_branch(repo_id, branch=branch, repo_type="dataset", exist_ok=True)
        info = api.upload_folder(
            repo_id=repo_id,
            folder_path=str(folder),
            repo_type="dataset",
            revision=branch,
            allow_patterns=UPLOAD_PATTERNS,
            delete_patterns=STALE_PATTERNS,
            commit_message="prist push-to-hub: dataset splits and card",
        )
    except HubError:
        raise
    except (HfHubHTTPError, httpx2.HTTPError, OSError, ValueError) as exc:
        message = _scrub(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, secret)
        raise HubError(f"pushing to {repo_id} failed: {type(exc).__name__}: {message}", EXIT_NETWORK) from None
    files = [
        p.relative_to(folder).as_posix()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and any(p.relative_to(folder).match(pattern) for pattern in UPLOAD_PATTERNS)
    ]
    return PushResult(repo_id, branch, str(info.commit_url), files)


def _branch_card(api: HfApi, repo_id: str, branch: str) -> str | None:
    """The card on ``branch``, else on ``main`` (a branch about to be created starts from main)."""
    try:
        return _remote_card(api, repo_id, branch)
    except RevisionNotFoundError:
        return _remote_card(api, repo_id, "main")
