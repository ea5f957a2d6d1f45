"""``prist export`` (hf format): the dataset folder, its splits, its card, and reviews applied."""

from __future__ import annotations

import io
import json
from pathlib import Path

import datasets
import numpy as np
import pytest
import yaml
from conftest import run_cli
from export_helpers import build_demo, copy_run
from PIL import Image

from prist_builder import appendlog
from prist_builder.annotation.masks import area, decode, rle_bbox
from prist_builder.export.images import EXIF_ORIENTATION, upright
from prist_builder.export.reader import load_export
from prist_builder.export.splits import SPLITS, SplitSpec, assign_splits
from prist_builder.export.writer import ExportError, export_run
from prist_builder.records.curation import REVIEWS_FILE, ReviewDecision
from prist_builder.samples import iter_samples
from prist_builder.stats import granularity

datasets.disable_progress_bars()


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_demo(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def demo_export(demo_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("export") / "ds"
    result = run_cli("export", demo_run, "--out", out)
    assert result.exit_code == 0, result.output
    return out


def _load(folder: Path) -> datasets.DatasetDict:
    return datasets.load_dataset(str(folder))


def test_export_folder_has_every_contract_file(demo_export: Path) -> None:
    for split in SPLITS:
        assert (demo_export / "data" / f"{split}-00000-of-00001.parquet").is_file()
    manifest = json.loads((demo_export / "export.json").read_text())
    assert manifest["seed"] == 0 and manifest["left_out"] == {}
    assert sum(manifest["splits"].values()) == 17
    assert manifest["splits"]["test"] > 0
    assert not (demo_export / ".staging").exists()


def test_load_dataset_round_trip_equals_the_run_field_by_field(demo_run: Path, demo_export: Path) -> None:
    loaded = _load(demo_export)
    assert set(loaded) == set(SPLITS)
    rows = {row["sample_id"]: (split, row) for split in SPLITS for row in loaded[split]}
    raw = {
        r["sample_id"]: r for split in SPLITS for r in loaded[split].cast_column("image", datasets.Image(decode=False))
    }
    samples = list(iter_samples(demo_run))
    assert len(rows) == len(samples) == 17
    for sample in samples:
        _, row = rows[sample.sample_id]
        assert row["image_id"] == sample.image.image_id
        assert (row["width"], row["height"]) == (sample.image.width, sample.image.height)
        assert row["turns"] == [{"role": t.role, "content": t.content} for t in sample.dialogue.turns]
        assert row["conversations"][0]["value"] == "<image>\n" + sample.dialogue.turns[0].content
        assert [c["from"] for c in row["conversations"]] == ["human", "gpt"] * sample.dialogue.num_turns
        assert [c["value"] for c in row["conversations"][1:]] == [t.content for t in sample.dialogue.turns[1:]]
        assert row["focus"] == sample.dialogue.focus
        assert isinstance(row["image"], Image.Image) and row["image"].size == (sample.image.width, sample.image.height)
        assert raw[sample.sample_id]["image"]["bytes"] == Path(sample.image.path).read_bytes()
        (target,) = row["targets"]
        assert target["mask"] == {"size": sample.mask.size, "counts": sample.mask.counts}
        assert np.array_equal(decode(target["mask"]), decode(sample.mask))
        assert target["box"] == [float(v) for v in rle_bbox(sample.mask)]
        assert target["area"] == area(sample.mask)
        assert target["granularity"] == granularity(area(sample.mask), sample.image.height, sample.image.width)
        assert target["element_id"] == sample.dialogue.target_element_id and target["focus"] == sample.dialogue.focus
        assert [e["element_id"] for e in row["elements"]] == [e.element_id for e in sample.elements.elements]
        assert row["elements"][0]["description"] == sample.elements.elements[0].description
        assert row["tree"]["root"] == sample.tree.root
        assert row["tree"]["path"] == sample.dialogue.path_node_ids
        assert row["tree"]["edges"] == [list(e) for e in sample.tree.edges]
        assert row["tree"]["reasoning_question"] == sample.dialogue.reasoning_question
        assert row["source"] == "labelme"
        assert row["provenance"]["provider"] == "offline" and row["provenance"]["mask_rule"] == "grounded"
        assert row["provenance"]["review_status"] == "unreviewed" and row["provenance"]["reviewer"] is None


def test_no_image_is_in_two_splits_and_parquet_loader_agrees(demo_export: Path) -> None:
    loaded = _load(demo_export)
    images = {split: set(loaded[split]["image_id"]) for split in SPLITS}
    assert not images["train"] & images["test"] and not images["train"] & images["validation"]
    assert not images["validation"] & images["test"]
    assert loaded["test"].num_rows > 0
    by_files = datasets.load_dataset("parquet", data_dir=str(demo_export / "data"))
    assert {k: v.num_rows for k, v in by_files.items()} == {k: v.num_rows for k, v in loaded.items()}
    assert loaded["train"].features == by_files["train"].features


def test_card_has_yaml_metadata_statistics_pictures_and_citation(demo_export: Path) -> None:
    text = (demo_export / "README.md").read_text()
    meta = yaml.safe_load(text.split("---")[1])
    assert meta["license"] and meta["task_categories"] and meta["size_categories"] == ["n<1K"]
    assert meta["configs"][0]["data_files"][2] == {"split": "test", "path": "data/test-*"}
    assert [f["name"] for f in meta["dataset_info"]["features"]][:3] == ["sample_id", "image_id", "image"]
    assert sum(s["num_examples"] for s in meta["dataset_info"]["splits"]) == 17
    assert "| Samples (dialogues) | 17 |" in text and "Granularity" in text
    for picture in ("turns.png", "granularity.png", "sample-0.png"):
        assert f"assets/{picture}" in text
        with Image.open(demo_export / "assets" / picture) as image:
            assert image.width > 100
    assert "Pixel-Level Reasoning Segmentation via Multi-turn Conversations" in text


def test_splits_are_by_image_deterministic_and_sized() -> None:
    images = [(f"img{i:03d}", 3) for i in range(200)]
    first = assign_splits(images, SplitSpec(), seed=1)
    assert first == assign_splits(list(reversed(images)), SplitSpec(), seed=1)
    assert first != assign_splits(images, SplitSpec(), seed=2)
    counts = {s: 3 * sum(1 for v in first.values() if v == s) for s in SPLITS}
    assert 36 <= counts["test"] <= 39 and 36 <= counts["validation"] <= 39  # 508/8320 and 500/8320 of 600
    fixed = assign_splits(images, SplitSpec(validation=30, test=60), seed=0)
    assert sum(3 for v in fixed.values() if v == "test") == 60
    assert set(assign_splits([("a", 5), ("b", 1)], SplitSpec(), seed=0).values()) == {"train", "test"}
    assert assign_splits([("only", 4)], SplitSpec(), seed=0) == {"only": "train"}
    with pytest.raises(ValueError, match="sum to less than 1"):
        SplitSpec(validation=0.5, test=0.5)


def test_reviews_are_applied(demo_run: Path, tmp_path: Path) -> None:
    run = copy_run(demo_run, tmp_path / "run")
    ids = [s.sample_id for s in iter_samples(run)]
    rejected, edited, accepted = ids[0], ids[1], ids[2]
    decisions = [
        ReviewDecision(
            sample_id=rejected, reviewer="ana", time="2026-11-30T05:00:00Z", action="reject", reason="wrong count"
        ),
        ReviewDecision(
            sample_id=edited,
            reviewer="bo",
            time="2026-11-30T05:01:00Z",
            action="edit",
            turn_index=1,
            before="x",
            after="There are exactly two objects here.",
        ),
        ReviewDecision(sample_id=accepted, reviewer="cy", time="2026-11-30T05:02:00Z", action="accept"),
    ]
    appendlog.append(run / REVIEWS_FILE, decisions)
    out = tmp_path / "ds"
    summary = export_run(run, out)
    assert summary.left_out == {"rejected by a reviewer": [rejected]}
    rows = {r["sample_id"]: r for split in SPLITS for r in _load(out)[split]}
    assert rejected not in rows and len(rows) == 16
    assert rows[edited]["turns"][1]["content"] == "There are exactly two objects here."
    assert rows[edited]["conversations"][1]["value"] == "There are exactly two objects here."
    assert rows[edited]["provenance"]["review_status"] == "edited" and rows[edited]["provenance"]["reviewer"] == "bo"
    assert rows[accepted]["provenance"]["review_status"] == "accepted"
    assert rows[accepted]["provenance"]["reviewer"] == "cy"
    manifest = json.loads((out / "export.json").read_text())
    assert manifest["left_out"]["rejected by a reviewer"] == {"count": 1, "sample_ids": [rejected]}


def _drop_mask(run: Path, sample_id: str) -> None:
    lines = (run / "dialogues.jsonl").read_text().splitlines()
    out = []
    for line in lines:
        record = json.loads(line)
        if record["sample_id"] == sample_id:
            record["mask"], record["target_region_ids"] = None, []
        out.append(json.dumps(record))
    (run / "dialogues.jsonl").write_text("\n".join(out) + "\n")


def test_unfinished_samples_are_left_out_unless_kept(demo_run: Path, tmp_path: Path) -> None:
    run = copy_run(demo_run, tmp_path / "run")
    sample_id = next(iter_samples(run)).sample_id
    _drop_mask(run, sample_id)
    result = run_cli("export", run, "--out", tmp_path / "a")
    assert result.exit_code == 0 and "left out (no final mask): 1" in result.output
    kept = export_run(run, tmp_path / "b", keep_unfinished=True)
    assert kept.left_out == {} and sum(kept.sizes.values()) == 17
    rows = {r["sample_id"]: r for split in SPLITS for r in _load(tmp_path / "b")[split]}
    assert rows[sample_id]["targets"] == [] and rows[sample_id]["provenance"]["mask_rule"] is None


def test_shards_are_bounded_and_load_whole(demo_run: Path, tmp_path: Path) -> None:
    summary = export_run(demo_run, tmp_path / "ds", max_shard_bytes=1, one_split="train")
    assert summary.sizes == {"train": 17, "validation": 0, "test": 0}
    assert len(summary.shards["train"]) == 17
    assert summary.shards["train"][-1] == "data/train-00016-of-00017.parquet"
    for split in SPLITS:  # every split has its file, the empty ones included
        assert sorted((tmp_path / "ds" / "data").glob(f"{split}-*.parquet"))
    loaded = _load(tmp_path / "ds")
    assert set(loaded) == {"train"}  # datasets cannot load a split without rows
    assert [r["sample_id"] for r in loaded["train"]] == [s.sample_id for s in iter_samples(demo_run)]
    everything = load_export(tmp_path / "ds")
    assert {k: v.num_rows for k, v in everything.items()} == {"train": 17, "validation": 0, "test": 0}
    assert everything["test"].features == loaded["train"].features
    assert everything["train"][3]["turns"] == loaded["train"][3]["turns"]


def test_export_refuses_a_foreign_folder_and_replaces_its_own(demo_run: Path, tmp_path: Path) -> None:
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("x")
    with pytest.raises(ExportError, match="not an earlier export"):
        export_run(demo_run, foreign)
    result = run_cli("export", demo_run, "--out", foreign)
    assert result.exit_code == 1 and "thesis.tex" in result.output
    out = tmp_path / "ds"
    export_run(demo_run, out, max_shard_bytes=1)
    export_run(demo_run, out)
    assert sorted(p.name for p in (out / "data").iterdir()) == [f"{s}-00000-of-00001.parquet" for s in sorted(SPLITS)]
    assert run_cli("export", tmp_path / "nope", "--out", tmp_path / "x").exit_code == 1


def test_exif_rotated_images_go_out_upright() -> None:
    image = Image.new("RGB", (40, 20), "red")
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6  # rotate 90 degrees clockwise to display
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif)
    turned = Image.open(io.BytesIO(upright(buffer.getvalue())))
    assert turned.size == (20, 40) and turned.getexif().get(EXIF_ORIENTATION, 1) == 1
    plain = io.BytesIO()
    image.save(plain, format="PNG")
    assert upright(plain.getvalue()) == plain.getvalue()


def test_two_exports_in_same_named_folders_load_their_own_rows(demo_run: Path, tmp_path: Path) -> None:
    """``datasets`` keys its cache of a local folder on the folder's name and card: two exports
    of different runs in folders both named ``ds`` must not serve each other's rows."""
    edited = copy_run(demo_run, tmp_path / "edited")
    first = next(iter_samples(edited))
    decision = ReviewDecision(
        sample_id=first.sample_id,
        reviewer="t",
        time="2026-01-01T00:00:00Z",
        action="edit",
        turn_index=1,
        before=first.dialogue.turns[1].content,
        after="An edited answer.",
    )
    appendlog.append(edited / REVIEWS_FILE, [decision])
    loaded = {}
    for name, run in (("a", demo_run), ("b", edited)):
        assert run_cli("export", run, "--out", tmp_path / name / "ds").exit_code == 0
        rows = datasets.load_dataset(str(tmp_path / name / "ds"))
        loaded[name] = {r["sample_id"]: r["turns"][1]["content"] for split in rows for r in rows[split]}
    assert loaded["b"][first.sample_id] == "An edited answer."
    assert loaded["a"][first.sample_id] == first.original_turns[1].content
