"""Shared test fixtures: fixture folders, synthetic inputs, and a CLI runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from typer.testing import CliRunner

from prist_builder.cli import app
from prist_builder.testing import FakeOpenAIServer
from prist_builder.testing.synthetic import write_synthetic

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO.parent / "shared" / "fixtures"


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    """A fake OpenAI server on 127.0.0.1 (default responder, no faults, request bodies kept in its log)."""
    with FakeOpenAIServer(keep_bodies=True) as fake:
        yield fake


@pytest.fixture
def client(server: FakeOpenAIServer) -> Iterator[openai.OpenAI]:
    """The real (sync) openai client pointed at :func:`server`."""
    with openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0, timeout=5) as sync_client:
        yield sync_client


@pytest.fixture
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A response cache of the test's own (``$PRIST_CACHE_DIR``), so no test answers another's."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("PRIST_CACHE_DIR", str(cache))
    return cache


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """One torch thread for a module's tests: the reference machine has 2 busy cores, where
    more threads only contend (use with ``pytestmark = pytest.mark.usefixtures(...)``)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def fixtures_dir(name: str) -> Path:
    """A folder of ``../shared/fixtures``; skips the test when the shared folder is absent."""
    path = FIXTURES / name
    if not path.exists():
        pytest.skip(f"{path} is absent (the shared fixtures live beside the checkout)")
    return path


@pytest.fixture
def voc() -> Path:
    """Three VOC photos with Labelme polygons (person, bottle, chair, sofa, bus, car, __ignore__)."""
    return fixtures_dir("labelme_voc")


@pytest.fixture
def synthetic(tmp_path: Path) -> Path:
    """Twelve synthetic images with Labelme files, in one folder."""
    folder = tmp_path / "synthetic"
    write_synthetic(folder, 12, seed=3)
    return folder


def run_cli(*args: str) -> CliResult:
    """Invoke ``prist`` in-process; returns the click result (exit_code, output)."""
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


CliResult = object


def run_prist(
    *args: str, timeout: float = 120, env: dict[str, str] | None = None, **kwargs
) -> subprocess.CompletedProcess:
    """Run ``prist`` as a separate process (``python -m prist_builder``); ``env`` adds variables."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "prist_builder", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        **kwargs,
    )


def read_jsonl(path: Path) -> list[dict]:
    """Parsed lines of a JSONL file (empty list if missing)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def check_run(run: Path, min_turns: int = 3, max_turns: int = 7) -> dict[str, list]:
    """Validate every record of a run folder against the acceptance rules; return them.

    Every line validates as its record type; every tree node has <= 3 children; every
    dialogue has ``min_turns..max_turns`` turns, ends in ``[OBJ]focus[SEG]`` and has a
    non-empty mask equal to its target region's mask.
    """
    from prist_builder.annotation.masks import decode
    from prist_builder.records import DialogueRecord, ElementsRecord, Reject, TreeRecord

    bounds = {"min_turns": min_turns, "max_turns": max_turns}
    elements = [ElementsRecord.model_validate(r) for r in read_jsonl(run / "elements.jsonl")]
    trees = [TreeRecord.model_validate(r, context=bounds) for r in read_jsonl(run / "trees.jsonl")]
    dialogues = [DialogueRecord.model_validate(r, context=bounds) for r in read_jsonl(run / "dialogues.jsonl")]
    rejects = [Reject.model_validate(r) for r in read_jsonl(run / "rejects.jsonl")]
    by_image = {e.image_id: e for e in elements}
    for tree in trees:
        graph = tree.to_networkx()
        assert max(graph.out_degree(n) for n in graph.nodes) <= 3
    for dialogue in dialogues:
        assert min_turns <= dialogue.num_turns <= max_turns
        assert dialogue.turns[-1].content.count("[SEG]") == 1
        assert f"[OBJ]{dialogue.focus}[SEG]" in dialogue.turns[-1].content
        mask = decode(dialogue.mask)
        assert mask.any()
        region = by_image[dialogue.image_id].image.region(dialogue.target_region_ids[0])
        assert not region.ignore
        assert (decode(region.mask) == mask).all()
    ids = [d.sample_id for d in dialogues]
    assert len(ids) == len(set(ids)), "duplicated dialogue"
    return {"elements": elements, "trees": trees, "dialogues": dialogues, "rejects": rejects}
