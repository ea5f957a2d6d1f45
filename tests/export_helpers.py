"""Shared helpers of the export tests: a demo run built once per test module."""

from __future__ import annotations

import shutil
from pathlib import Path

from conftest import run_cli


def build_demo(root: Path) -> Path:
    """Build ``prist demo`` under ``root`` and return its run folder (6 images, 17 dialogues)."""
    result = run_cli("demo", "--out", root)
    assert result.exit_code == 0, result.output
    return root / "run"


def copy_run(run: Path, target: Path) -> Path:
    """A private copy of a run folder (the images it points at are shared, read-only)."""
    shutil.copytree(run, target, ignore=shutil.ignore_patterns(".lock"))
    return target
