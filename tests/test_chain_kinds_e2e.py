"""Issue 22's end to end: the offline demo with ``--multi-share 0.2 --empty-share 0.1`` through
build -> annotate/qa -> review -> export -> train (tiny MIRAS) -> predict -> evaluate, each
command reading what the one before wrote; the printed tables split single / multi / empty."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
from conftest import read_jsonl, run_cli
from starlette.testclient import TestClient

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")
pytest.importorskip("datasets")

from prist_builder.model.config import CONFIG_DIR  # noqa: E402 (needs torch, checked above)
from prist_builder.review.app import create_app  # noqa: E402
from prist_builder.samples import iter_samples  # noqa: E402

TRAIN_STEPS = 3


def _kinds(run: Path) -> dict[str, str]:
    return {record["sample_id"]: record.get("kind", "single") for record in read_jsonl(run / "dialogues.jsonl")}


@pytest.mark.slow
def test_demo_with_multi_and_empty_targets_to_scores(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    built = run_cli("demo", "--out", demo, "--multi-share", "0.2", "--empty-share", "0.1")
    assert built.exit_code == 0, built.output
    run = demo / "run"
    kinds = _kinds(run)
    assert {"single", "multi", "empty"} <= set(kinds.values()), kinds

    # annotate: two annotators keep the pre-filled outlines (every target of a multi sample under its
    # own label; an empty sample's file stays empty), import, agreement, resolve.
    packages, qa = tmp_path / "packages", tmp_path / "qa"
    exported = run_cli(
        "annotate", "export", run, "--out", packages, "--annotators", "a,b", "--groups", "1", "--seed", "1"
    )
    assert exported.exit_code == 0, exported.output
    for name in "ab":
        imported = run_cli("annotate", "import", run, "--labelme", packages / name, "--annotator", name)
        assert imported.exit_code == 0, imported.output
    agreement = run_cli("qa", "agreement", run, "--out", qa)
    assert agreement.exit_code == 0, agreement.output
    with open(qa / "per_target.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {row["kind"] for row in rows} == {"single", "multi", "empty"}
    assert all(float(row["iou"]) == 1.0 for row in rows)  # untouched pre-labels agree; both left empty agree
    resolved = run_cli("annotate", "resolve", run)
    assert resolved.exit_code == 0, resolved.output
    samples = {s.sample_id: s for s in iter_samples(run)}
    assert all(s.mask_provenance is not None for s in samples.values())
    for sample in samples.values():
        assert len(sample.masks) == len(sample.dialogue.target_list())

    # review: the kind filter, then accept every sample.
    web = TestClient(create_app(run, "tester"), base_url="http://127.0.0.1")
    for kind in ("single", "multi", "empty"):
        listed = int(re.search(r'id="matched">(\d+)<', web.get(f"/?kind={kind}").text).group(1))
        assert listed == sum(k == kind for k in kinds.values()), kind
    first = next(iter(samples))
    token = re.search(r'name="csrf" value="([^"]+)"', web.get(f"/sample/{first}").text).group(1)
    for sample_id in samples:
        assert web.post(f"/sample/{sample_id}/accept", data={"csrf": token}, follow_redirects=False).status_code == 303
    assert all(s.review.status == "accepted" for s in iter_samples(run))

    # export: one folder to train on, one to test on (every sample in each, so each holds every kind).
    train_data, test_data = tmp_path / "train", tmp_path / "test"
    for out, split in ((train_data, "train"), (test_data, "test")):
        result = run_cli("export", run, "--out", out, "--one-split", split)
        assert result.exit_code == 0, result.output

    model = tmp_path / "miras"
    trained = run_cli(
        "train", "--config", CONFIG_DIR / "tiny.yaml", "--data", train_data, "--out", model, "--max-steps", TRAIN_STEPS
    )
    assert trained.exit_code == 0, trained.output
    # trained with empty targets, predict takes the model at its word (no [SEG]: no mask); --force-seg
    # appends one where the answer has none.
    for name, extra in (("predictions", ()), ("forced", ("--force-seg",))):
        out = tmp_path / f"{name}.jsonl"
        predicted = run_cli("predict", "--model", model, "--data", test_data, "--split", "test", "--out", out, *extra)
        assert predicted.exit_code == 0, predicted.output
        lines = read_jsonl(out)
        assert {line["sample_id"] for line in lines} == set(samples)
        for line in lines:  # the predictions contract: one mask per [SEG], their union or null
            assert len(line["masks"]) == line["responses"][-1].count("[SEG]") or (extra and len(line["masks"]) == 1)
            assert (line["mask"] is None) == (not line["masks"])
        if extra:
            assert all(line["masks"] for line in lines)

        scores = tmp_path / f"scores-{name}"
        evaluated = run_cli("evaluate", out, "--data", test_data, "--split", "test", "--out", scores)
        assert evaluated.exit_code == 0, evaluated.output
        printed = " ".join(evaluated.output.split())
        for kind in ("single", "multi", "empty"):
            assert re.search(rf"\| {kind} \| \d+ \|", (scores / "kinds.md").read_text()), kind
            assert re.search(rf"\b{kind}\b", printed), kind
        assert "N-acc" in printed and "T-acc" in printed
        results = json.loads((scores / "results.json").read_text())
        assert list(results["target_kinds"]) == ["single", "multi", "empty"]
        if not any(line["masks"] for line in lines):  # no mask: every empty target answered empty, the rest missed
            assert results["segmentation"]["N_acc"] == 100.0 and results["segmentation"]["T_acc"] == 0.0
