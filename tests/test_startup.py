"""Start-up: ``prist --help`` and ``prist build --help`` load no heavy library (checked in
``sys.modules``, not by time; the timing is ``benchmarks/startup.py`` in ``make bench``)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = (
    "scipy",
    "skimage",
    "sklearn",
    "datasets",
    "pyarrow",
    "torch",
    "transformers",
    "matplotlib",
    "networkx",
    "numpy",
    "pycocotools",
)
"""Libraries no command's ``--help`` may import: each loads inside the command that needs it."""

PROBE = """
import json, sys
from typer.testing import CliRunner
from prist_builder.cli import app
result = CliRunner().invoke(app, sys.argv[1:])
assert result.exit_code == 0, result.output
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["build", "--help"],
        ["build", "all", "--help"],
        ["export", "--help"],
        ["annotate", "export", "--help"],
        ["qa", "agreement", "--help"],
        ["evaluate", "--help"],
        ["review", "--help"],
        ["stats", "--help"],
    ],
    ids=lambda a: " ".join(a),
)
def test_help_loads_no_heavy_library(args: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert not loaded & set(HEAVY), f"prist {' '.join(args)} imported {sorted(loaded & set(HEAVY))}"
