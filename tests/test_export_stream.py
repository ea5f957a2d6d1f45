"""``prist export`` streams the run (issue 20): an image whose samples are not adjacent in
``dialogues.jsonl`` (a dialogue appended by ``--retry-rejected``) still gets one row in the
image layout, at the place of its first sample, its samples in the run's order."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pyarrow.parquet as pq
from conftest import run_cli

from prist_builder.exported import read_split
from prist_builder.samples import iter_samples
from prist_builder.testing.synthetic import write_synthetic

datasets.disable_progress_bars()


def test_an_image_whose_samples_are_apart_is_one_row_in_the_run_order(tmp_path: Path) -> None:
    write_synthetic(tmp_path / "in", 4, seed=3)
    run = tmp_path / "run"
    assert run_cli("build", "all", "--labelme", tmp_path / "in", "--run", run).exit_code == 0
    lines = (run / "dialogues.jsonl").read_bytes().splitlines()
    moved = lines[0]  # the first image's first dialogue goes last, as a retried one is appended
    (run / "dialogues.jsonl").write_bytes(b"\n".join([*lines[1:], moved]) + b"\n")
    order = [s.sample_id for s in iter_samples(run)]
    assert order[-1] == json.loads(moved)["sample_id"]
    groups: dict[str, list[str]] = {}
    for sample_id in order:  # an image at the place of its first sample, its samples in order
        groups.setdefault(sample_id.rsplit("-", 1)[0], []).append(sample_id)
    for rows in ("image", "sample"):
        out = tmp_path / rows
        result = run_cli("export", run, "--out", out, "--one-split", "train", "--rows", rows)
        assert result.exit_code == 0, result.output
        written = read_split(out, "train")
        if rows == "image":  # one row per image, in the order of their first samples
            shards = sorted((out / "data").glob("train-*.parquet"))
            assert pq.read_table([str(p) for p in shards], columns=["image_id"])["image_id"].to_pylist() == list(groups)
        grouped = [s for g in groups.values() for s in g]  # the default layout keeps the run's order
        assert [row["sample_id"] for row in written] == (grouped if rows == "image" else order)
        assert json.loads((out / "export.json").read_text())["splits"]["train"] == len(order)
