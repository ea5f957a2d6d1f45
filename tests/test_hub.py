"""``prist push-to-hub`` against a fake Hub on 127.0.0.1 (real huggingface_hub client, separate process)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_cli
from export_helpers import build_demo

from prist_builder.testing.fake_hub import FakeHub, FakeRepo

TOKEN = "hf_fakeTOKEN0123456789secret"


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hub")
    out = root / "ds"
    assert run_cli("export", build_demo(root / "demo"), "--out", out).exit_code == 0
    return out


def push(hub_url: str, home: Path, *args: str, token_env: str | None = None) -> subprocess.CompletedProcess:
    """``prist push-to-hub`` in its own process, with the Hub at ``hub_url`` and no stored login."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env |= {
        "HF_ENDPOINT": hub_url,
        "HF_HUB_DISABLE_XET": "1",
        "HF_HOME": str(home),
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "PYTHONUNBUFFERED": "1",
        "COLUMNS": "200",
    }
    if token_env:
        env["HF_TOKEN"] = token_env
    return subprocess.run(
        [sys.executable, "-m", "prist_builder", "push-to-hub", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def _local_files(folder: Path) -> dict[str, bytes]:
    wanted = [p for p in folder.rglob("*") if p.is_file() and p.suffix in (".parquet", ".md", ".png", ".json")]
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in wanted}


def test_push_uploads_the_same_bytes_and_never_shows_the_token(export_dir: Path, tmp_path: Path) -> None:
    with FakeHub() as hub:
        result = push(hub.url, tmp_path, str(export_dir), "someone/prist", "--token", TOKEN, "--private")
        assert result.returncode == 0, result.stderr
        repo = hub.state.repos["someone/prist"]
        assert repo.private
        assert repo.branches["main"] == _local_files(export_dir)
        assert sorted(p for p in repo.branches["main"] if p.startswith("data/")) == [
            "data/test-00000-of-00001.parquet",
            "data/train-00000-of-00001.parquet",
            "data/validation-00000-of-00001.parquet",
        ]
        assert any(r["headers"].get("authorization") == f"Bearer {TOKEN}" for r in hub.state.requests)
    output = result.stdout + result.stderr
    assert "pushed" in output and TOKEN not in output
    for path in list(export_dir.rglob("*")) + list(tmp_path.rglob("*")):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path


def test_a_failed_push_finishes_on_rerun_without_sending_data_twice(export_dir: Path, tmp_path: Path) -> None:
    with FakeHub() as hub:
        hub.state.fail_commits = 1
        failed = push(hub.url, tmp_path, str(export_dir), "someone/prist", token_env=TOKEN)
        assert failed.returncode == 4
        assert "pushing to someone/prist failed" in failed.stderr and TOKEN not in failed.stdout + failed.stderr
        assert len(failed.stderr.strip().splitlines()) == 1
        puts = hub.state.lfs_puts
        assert puts > 0 and hub.state.repos["someone/prist"].commits == []
        done = push(hub.url, tmp_path, str(export_dir), "someone/prist", token_env=TOKEN)
        assert done.returncode == 0, done.stderr
        assert hub.state.lfs_puts == puts  # large files already on the Hub are not sent again
        assert hub.state.repos["someone/prist"].branches["main"] == _local_files(export_dir)
        again = push(hub.url, tmp_path, str(export_dir), "someone/prist", "--revision", "v1", token_env=TOKEN)
        assert again.returncode == 0, again.stderr
        assert hub.state.repos["someone/prist"].branches["v1"] == _local_files(export_dir)


def test_no_token_a_foreign_schema_and_no_network_end_with_one_line(export_dir: Path, tmp_path: Path) -> None:
    with FakeHub() as hub:
        missing = push(hub.url, tmp_path, str(export_dir), "someone/prist")
        assert missing.returncode == 2
        expected = "error: no Hugging Face token: pass --token, set HF_TOKEN, or run `hf auth login`"
        assert missing.stderr.strip() == expected
        hub.state.repos["someone/other"] = FakeRepo(
            branches={
                "main": {
                    "README.md": b"---\ndataset_info:\n  features:\n  - name: text\n    dtype: string\n---\n# other\n"
                }
            }
        )
        foreign = push(hub.url, tmp_path, str(export_dir), "someone/other", "--token", TOKEN)
        assert foreign.returncode == 3 and "different schema" in foreign.stderr
        assert hub.state.repos["someone/other"].commits == []
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    offline = push(closed, tmp_path, str(export_dir), "someone/prist", "--token", TOKEN)
    assert offline.returncode == 4 and len(offline.stderr.strip().splitlines()) == 1
    assert TOKEN not in offline.stdout + offline.stderr
    not_export = push(closed, tmp_path, str(tmp_path), "someone/prist", "--token", TOKEN)
    assert not_export.returncode == 5 and "not an export folder" in not_export.stderr
