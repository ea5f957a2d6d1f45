"""``prist export --rows image``: each image stored once, and every reader accepts both row layouts."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pyarrow.parquet as pq
import pytest
from conftest import run_cli

from prist_builder.evaluate.references import read_export
from prist_builder.export.features import FEATURES, IMAGE_FEATURES
from prist_builder.export.reader import load_export
from prist_builder.export.splits import SPLITS
from prist_builder.exported import read_split, row_layout
from prist_builder.samples import iter_samples
from prist_builder.testing.synthetic import write_synthetic

datasets.disable_progress_bars()
LAYOUTS = ("sample", "image")


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("rows")
    write_synthetic(root / "in", 6, seed=2)
    assert run_cli("build", "all", "--labelme", root / "in", "--run", root / "run").exit_code == 0
    out = {"run": root / "run"}
    for rows in LAYOUTS:
        extra = () if rows == "sample" else ("--rows", rows)
        result = run_cli("export", root / "run", "--out", root / rows, "--validation", "1", "--test", "1", *extra)
        assert result.exit_code == 0, result.output
        out[rows] = root / rows
    return out


def _parquet_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in (folder / "data").glob("*.parquet"))


def _comparable(dataset: datasets.Dataset) -> list[dict]:
    rows = []
    for row in dataset.cast_column("image", datasets.Image(decode=False)):
        rows.append({**row, "image": row["image"]["bytes"]})
    return sorted(rows, key=lambda r: r["sample_id"])


def test_image_rows_store_each_image_once(exports: dict[str, Path]) -> None:
    folder = exports["image"]
    manifest = json.loads((folder / "export.json").read_text())
    assert manifest["rows"] == "image" and row_layout(folder) == "image"
    samples = list(iter_samples(exports["run"]))
    table = pq.read_table([str(p) for p in sorted((folder / "data").glob("*.parquet"))][0])
    assert table.column_names == list(IMAGE_FEATURES)
    loaded = datasets.load_dataset(str(folder))  # the card declares the image layout
    images = sum(len(loaded[s]) for s in loaded)
    assert images == len({s.image.image_id for s in samples}) == sum(manifest["images"].values())
    nested = [entry for split in loaded for row in loaded[split] for entry in row["samples"]]
    assert sorted(e["sample_id"] for e in nested) == sorted(s.sample_id for s in samples)
    first = nested[0]
    assert set(first) == {
        "sample_id",
        "turns",
        "conversations",
        "focus",
        "targets",
        "target_kind",
        "tree",
        "provenance",
    }
    assert first["tree"]["path"] and first["targets"][0]["mask"]["counts"] and first["provenance"]["provider"]
    # the images are stored once: the per-image parquet is well under the per-sample one
    assert _parquet_bytes(folder) < 0.6 * _parquet_bytes(exports["sample"])
    card = (folder / "README.md").read_text()
    assert "## Layout" in card and "One row per image" in card and "parquet MiB" in card


def test_default_layout_is_unchanged(exports: dict[str, Path]) -> None:
    folder = exports["sample"]
    assert "rows" not in json.loads((folder / "export.json").read_text())
    assert row_layout(folder) == "sample"
    table = pq.read_table(sorted((folder / "data").glob("train-*.parquet"))[0])
    assert table.column_names == list(FEATURES)
    assert "One row per sample" in (folder / "README.md").read_text()


def test_load_export_gives_the_same_samples_for_both_layouts(exports: dict[str, Path]) -> None:
    by_sample, by_image = load_export(exports["sample"]), load_export(exports["image"])
    for split in SPLITS:
        assert by_image[split].features == by_sample[split].features == FEATURES
        assert _comparable(by_image[split]) == _comparable(by_sample[split])
        assert len(read_split(exports["image"], split)) == len(by_sample[split])


@pytest.mark.parametrize("rows", LAYOUTS)
def test_evaluate_reads_both_layouts(exports: dict[str, Path], rows: str, tmp_path: Path) -> None:
    references = list(read_export(exports[rows], "train"))
    assert len(references) == len(load_export(exports["sample"])["train"])
    predictions = tmp_path / "predictions.jsonl"
    lines = []
    for ref in references:
        answers = [content for role, content in ref.turns if role == "assistant"]
        lines.append(json.dumps({"sample_id": ref.sample_id, "responses": answers, "mask": ref.mask.model_dump()}))
    predictions.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "scores"
    result = run_cli("evaluate", predictions, "--data", exports[rows], "--split", "train", "--out", out)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "results.json").read_text())
    assert summary["segmentation"]["gIoU"] == pytest.approx(100.0)


@pytest.mark.parametrize("rows", LAYOUTS)
def test_miras_data_reads_both_layouts(exports: dict[str, Path], rows: str) -> None:
    records = pytest.importorskip("prist_builder.model.records")
    data = records.ExportRecords(exports[rows], "train")
    assert len(data) == len(load_export(exports["sample"])["train"]) and not data.skipped
    record = data[0]
    assert record.image.size[0] > 0 and record.targets and record.targets[0].mask.any()
