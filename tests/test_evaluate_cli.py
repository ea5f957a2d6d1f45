"""``prist evaluate`` end to end: export and run folders as references, every problem kind counted,
every output file written, and ``--compare``."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import read_jsonl, run_cli

from prist_builder.annotation.masks import encode
from prist_builder.evaluate.predictions import PROBLEM_KINDS
from prist_builder.evaluate.references import ReferenceError, load_references
from prist_builder.testing.synthetic import write_synthetic

H, W = 32, 48
TURNS = [
    ("user", "What is on the table?"),
    ("assistant", "A red cup stands on the wooden table."),
    ("user", "Which one holds coffee?"),
    ("assistant", "The cup near the window holds coffee."),
    ("user", "Segment it."),
    ("assistant", "Certainly, [OBJ]the cup[SEG]."),
]


def _box(y: int, x: int, side: int) -> np.ndarray:
    mask = np.zeros((H, W), dtype=bool)
    mask[y : y + side, x : x + side] = True
    return mask


def write_export(folder: Path, samples: int = 4) -> list[np.ndarray]:
    """A minimal ``prist export`` folder (the contract's text and target columns) with a test split."""
    from datasets import Dataset

    masks, rows = [], []
    for i in range(samples):
        mask = _box(i * 4, i * 6, 8 + i)
        rle = encode(mask)
        masks.append(mask)
        rows.append(
            {
                "sample_id": f"s{i}",
                "image_id": f"img{i}",
                "width": W,
                "height": H,
                "turns": [{"role": r, "content": c} for r, c in TURNS],
                "focus": "the cup",
                "targets": [
                    {
                        "focus": "the cup",
                        "mask": {"size": rle.size, "counts": rle.counts},
                        "box": [0.0, 0.0, 1.0, 1.0],
                        "area": int(mask.sum()),
                        "granularity": "coarse",
                        "element_id": "e0",
                    }
                ],
            }
        )
    (folder / "data").mkdir(parents=True)
    Dataset.from_list(rows).to_parquet(str(folder / "data" / "test-00000-of-00001.parquet"))
    return masks


def _line(sample_id: str, responses: list[str], mask: np.ndarray | None) -> str:
    rle = encode(mask).model_dump() if mask is not None else None
    return json.dumps({"sample_id": sample_id, "responses": responses, "mask": rle})


def test_export_reference_every_problem_kind_and_every_output(tmp_path: Path) -> None:
    export = tmp_path / "export"
    masks = write_export(export, samples=6)
    answers = [c for r, c in TURNS if r == "assistant"]
    lines = [
        _line("s0", answers, masks[0]),  # perfect
        _line("s0", answers, None),  # duplicate
        _line("s1", answers[:1], masks[1]),  # short responses
        json.dumps({"sample_id": "s2", "responses": answers}),  # no mask, no box in the last answer
        _line("s3", answers, np.ones((H + 1, W), bool)),  # wrong size
        _line("nope", answers, masks[0]),  # unknown sample
        "{not json",
        json.dumps({"responses": []}),  # no sample_id
        json.dumps({"sample_id": "s4", "responses": answers[:-1] + ["no detected "]}),
        # s5 is missing
    ]
    preds = tmp_path / "model.jsonl"
    preds.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "eval"
    result = run_cli("evaluate", preds, "--data", export, "--out", out)
    assert result.exit_code == 0, result.output
    assert "Table 3" in result.output and "gIoU" in result.output and "BLEU-4" in result.output
    summary = json.loads((out / "results.json").read_text())
    counts = summary["problems"]["counts"]
    assert set(counts) == set(PROBLEM_KINDS)
    assert {k: v for k, v in counts.items() if v} == {
        "bad_line": 2,
        "duplicate": 1,
        "unknown_sample": 1,
        "missing": 1,
        "wrong_size": 1,
        "unparsed_box": 1,
        "no_detected": 1,
        "short_responses": 1,
    }
    assert summary["mask_sources"] == {"mask": 2, "unparsed_box": 1, "wrong_size": 1, "no_detected": 1, "missing": 1}
    assert summary["samples"] == 6
    # only s0 and s1 have a mask to score, both perfect; the four others count as empty predictions
    assert summary["segmentation"]["gIoU"] == pytest.approx(100 * 2 / 6)
    inter = int(masks[0].sum() + masks[1].sum())
    assert summary["segmentation"]["cIoU"] == pytest.approx(100 * inter / sum(int(m.sum()) for m in masks))
    assert summary["segmentation"]["precision"] == pytest.approx(100.0)
    for name in (
        "results.json",
        "per_sample.jsonl",
        "table3.md",
        "table3.csv",
        "table4.md",
        "table4.csv",
        "granularity.md",
        "granularity.csv",
    ):
        assert (out / name).exists(), name
    rows = read_jsonl(out / "per_sample.jsonl")
    assert [r["sample_id"] for r in rows] == [f"s{i}" for i in range(6)]
    assert rows[0]["IoU"] == pytest.approx(100.0) and rows[5]["mask_source"] == "missing"
    with (out / "table3.csv").open() as handle:
        table = list(csv.DictReader(handle))
    assert table[0]["Model"] == "model" and table[0]["cIoU"] == f"{summary['segmentation']['cIoU']:.2f}"
    assert "did not run" in (out / "table4.md").read_text()


def test_run_folder_reference_and_box_answers(tmp_path: Path) -> None:
    images = tmp_path / "images"
    write_synthetic(images, 3, seed=5)
    run = tmp_path / "run"
    assert run_cli("build", "all", "--run", run, "--labelme", images).exit_code == 0
    refs = load_references(run)
    assert refs and all(r.mask is not None for r in refs)
    from prist_builder.annotation.masks import decode, rle_bbox

    lines = []
    for ref in refs:  # a general MLLM answering with the target's bounding box in 0-1000 coordinates
        x, y, w, h = rle_bbox(ref.mask)
        box = (
            x / ref.width * 1000,
            y / ref.height * 1000,
            (x + w - 1) / ref.width * 1000,
            (y + h - 1) / ref.height * 1000,
        )
        answer = "<box>({:.1f}, {:.1f}), ({:.1f}, {:.1f})</box>".format(*box)
        lines.append(json.dumps({"sample_id": ref.sample_id, "responses": ref.responses[:-1] + [answer]}))
    preds = tmp_path / "boxes.jsonl"
    preds.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "eval"
    result = run_cli("evaluate", preds, "--data", run, "--out", out, "--box-coords", "thousand", "--name", "mllm")
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "results.json").read_text())
    assert summary["name"] == "mllm" and summary["mask_sources"] == {"box": len(refs)}
    assert summary["problems"]["counts"]["unparsed_box"] == 0
    assert summary["segmentation"]["recall"] > 95  # a box covers its target (up to rounding of the coordinates)
    assert summary["response"]["BLEU-4"] == pytest.approx(100.0)  # the reasoning answers are the references'
    fills = [decode(r.mask).sum() / (rle_bbox(r.mask)[2] * rle_bbox(r.mask)[3]) for r in refs]
    assert summary["segmentation"]["precision"] <= 100 * max(fills) + 1


def test_compare_writes_deltas_and_plot(tmp_path: Path) -> None:
    export = tmp_path / "export"
    masks = write_export(export)
    answers = [c for r, c in TURNS if r == "assistant"]
    paths = []
    for name, shift in (("good", 0), ("worse", 3)):
        lines = [_line(f"s{i}", answers, np.roll(m, shift, axis=1)) for i, m in enumerate(masks)]
        (tmp_path / f"{name}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        assert (
            run_cli("evaluate", tmp_path / f"{name}.jsonl", "--data", export, "--out", tmp_path / name).exit_code == 0
        )
        paths.append(tmp_path / name / "results.json")
    result = run_cli("evaluate", "--compare", *paths, "--out", tmp_path / "cmp")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "cmp" / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with (tmp_path / "cmp" / "compare.csv").open() as handle:
        deltas = {row["Metric"]: row for row in csv.DictReader(handle)}
    assert deltas["gIoU"]["good"] == "100.00" and float(deltas["gIoU"]["worse (delta)"]) < 0
    assert deltas["BLEU-4"]["worse (delta)"] == "+0.00"


def test_bad_inputs_fail_with_one_line(tmp_path: Path) -> None:
    with pytest.raises(ReferenceError, match="neither a run folder"):
        load_references(tmp_path)
    export = tmp_path / "export"
    write_export(export, samples=1)
    with pytest.raises(ReferenceError, match="no 'train' split"):
        load_references(export, "train")
    result = run_cli("evaluate", tmp_path / "absent.jsonl", "--data", export)
    assert result.exit_code == 1 and "absent.jsonl" in result.output
    broken = tmp_path / "broken.json"
    broken.write_text("{", encoding="utf-8")
    result = run_cli("evaluate", "--compare", broken, broken)
    assert result.exit_code == 1 and "broken.json" in result.output


def test_an_empty_export_split_reads_as_no_references(tmp_path: Path) -> None:
    import datasets

    from prist_builder.evaluate.references import read_export
    from prist_builder.export.features import FEATURES

    (tmp_path / "data").mkdir()
    datasets.Dataset.from_dict({name: [] for name in FEATURES}, features=FEATURES).to_parquet(
        str(tmp_path / "data" / "test-00000-of-00001.parquet")
    )
    assert list(read_export(tmp_path, "test")) == []
