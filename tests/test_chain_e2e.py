"""The whole chain on CPU, each command reading what the one before wrote: demo run ->
prist export -> prist train (tiny MIRAS) -> prist predict -> prist evaluate (issue: evaluate,
end to end)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cli

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")
pytest.importorskip("datasets")

from prist_builder.model.config import CONFIG_DIR  # noqa: E402 (needs torch, checked above)
from prist_builder.testing import FakeOpenAIServer  # noqa: E402

TRAIN_STEPS = 4


def test_demo_to_scores(tmp_path: Path) -> None:
    assert run_cli("demo", "--out", tmp_path / "demo").exit_code == 0
    export = tmp_path / "dataset"
    assert run_cli("export", tmp_path / "demo" / "run", "--out", export).exit_code == 0
    model = tmp_path / "miras"
    trained = run_cli(
        "train", "--config", CONFIG_DIR / "tiny.yaml", "--data", export, "--out", model, "--max-steps", TRAIN_STEPS
    )
    assert trained.exit_code == 0, trained.output
    predictions = tmp_path / "predictions.jsonl"
    predicted = run_cli("predict", "--model", model, "--data", export, "--split", "test", "--out", predictions)
    assert predicted.exit_code == 0, predicted.output
    scores = tmp_path / "scores"
    with FakeOpenAIServer() as judge:  # answers every judge request with a schema-valid score sheet
        evaluated = run_cli(
            "evaluate",
            predictions,
            "--data",
            export,
            "--split",
            "test",
            "--out",
            scores,
            "--judge",
            "--repeats",
            2,
            "--base-url",
            judge.base_url,
            "--api-key",
            "sk-test-judge",
            "--cache-dir",
            tmp_path / "cache",
        )
    assert evaluated.exit_code == 0, evaluated.output
    printed = " ".join(evaluated.output.split())
    assert "Table 3" in printed and "Table 4" in printed and "gIoU" in printed  # both tables printed
    table3 = (scores / "table3.md").read_text()
    for name in ("gIoU", "cIoU", "BLEU-4", "ROUGE-L", "METEOR", "Dist-1/2"):
        assert name in table3, name
    results = json.loads((scores / "results.json").read_text())
    assert "gIoU" in json.dumps(results)
    predicted_ids = {json.loads(line)["sample_id"] for line in predictions.read_text().splitlines()}
    scored_ids = {json.loads(line)["sample_id"] for line in (scores / "per_sample.jsonl").read_text().splitlines()}
    assert predicted_ids and predicted_ids == scored_ids
