"""``prist export --format llava|lisa|prist-json``, read back by minimal readers of those layouts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli
from export_helpers import build_demo, copy_run
from PIL import Image, ImageDraw

from prist_builder import appendlog
from prist_builder.annotation.masks import decode
from prist_builder.export.lisa import mask_polygons
from prist_builder.records.curation import REVIEWS_FILE, ReviewDecision
from prist_builder.samples import iter_samples

MIN_POLYGON_IOU = 0.9
"""Masks redrawn from the LISA polygons must match the run's this well (IoU)."""


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_demo(tmp_path_factory.mktemp("demo"))


def read_llava(json_file: Path, image_folder: Path) -> list[dict]:
    """A minimal reader after LLaVA's ``LazySupervisedDataset``: a list of samples, ``image``
    relative to the image folder, ``conversations`` alternating human/gpt with ``<image>``
    once, in the first human message."""
    samples = []
    for item in json.loads(json_file.read_text(encoding="utf-8")):
        conversations = item["conversations"]
        assert [c["from"] for c in conversations] == ["human", "gpt"] * (len(conversations) // 2)
        assert conversations[0]["value"].startswith("<image>\n")
        assert sum(c["value"].count("<image>") for c in conversations) == 1
        image = Image.open(image_folder / item["image"]).convert("RGB") if "image" in item else None
        samples.append({"id": item["id"], "image": image, "conversations": conversations})
    return samples


def read_reason_seg(folder: Path) -> list[dict]:
    """A minimal reader after LISA's ``ReasonSegDataset``: glob ``*.jpg``, read the JSON of the
    same stem, fill ``target`` polygons with 1 and ``ignore`` ones with 255."""
    samples = []
    for image_path in sorted(folder.glob("*.jpg")):
        anno = json.loads(image_path.with_suffix(".json").read_text(encoding="utf-8"))
        image = Image.open(image_path).convert("RGB")
        mask = Image.new("L", image.size, 0)
        draw = ImageDraw.Draw(mask)
        for shape in anno["shapes"]:  # targets first, then holes, as LISA orders by label
            if shape["label"] == "target":
                draw.polygon([tuple(p) for p in shape["points"]], fill=1, outline=1)
        for shape in anno["shapes"]:
            if shape["label"] == "ignore":
                draw.polygon([tuple(p) for p in shape["points"]], fill=255, outline=255)
        samples.append(
            {
                "id": image_path.stem,
                "image": image,
                "mask": np.asarray(mask),
                "text": anno["text"],
                "is_sentence": anno["is_sentence"],
                "dialogue": anno["dialogue"],
            }
        )
    return samples


def test_llava_export_reads_with_a_llava_style_reader(demo_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "llava"
    assert run_cli("export", demo_run, "--out", out, "--format", "llava").exit_code == 0
    samples = {s.sample_id: s for s in iter_samples(demo_run)}
    seen = {}
    for split in ("train", "validation", "test"):
        for item in read_llava(out / f"{split}.json", out / "images"):
            seen[item["id"]] = split
            sample = samples[item["id"]]
            assert item["image"].size == (sample.image.width, sample.image.height)
            assert [c["value"] for c in item["conversations"][1:]] == [t.content for t in sample.dialogue.turns[1:]]
    assert set(seen) == set(samples)
    assert len(list((out / "images").iterdir())) == 6


def test_lisa_export_reads_with_a_reason_seg_style_reader(demo_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "lisa"
    assert run_cli("export", demo_run, "--out", out, "--format", "lisa").exit_code == 0
    assert sorted(p.name for p in out.iterdir()) == ["export.json", "test", "train", "val"]
    samples = {s.sample_id: s for s in iter_samples(demo_run)}
    read = [item for split in ("train", "val", "test") for item in read_reason_seg(out / split)]
    assert {item["id"] for item in read} == set(samples)
    for item in read:
        sample = samples[item["id"]]
        truth = decode(sample.mask)
        drawn = item["mask"] == 1
        assert item["image"].size == (sample.image.width, sample.image.height)
        assert (drawn & truth).sum() / (drawn | truth).sum() >= MIN_POLYGON_IOU
        assert item["text"] == [sample.dialogue.reasoning_question] and item["is_sentence"]
        assert [t["content"] for t in item["dialogue"]] == [t.content for t in sample.dialogue.turns]


def test_mask_polygons_mark_holes() -> None:
    ring = np.zeros((60, 80), bool)
    ring[10:50, 10:70] = True
    ring[20:40, 30:50] = False
    polygons = mask_polygons(ring)
    assert sorted(hole for _, hole in polygons) == [False, True]


def test_prist_json_export_skips_rejected_and_uses_edits(demo_run: Path, tmp_path: Path) -> None:
    run = copy_run(demo_run, tmp_path / "run")
    first, second = [s.sample_id for s in iter_samples(run)][:2]
    appendlog.append(
        run / REVIEWS_FILE,
        [
            ReviewDecision(sample_id=first, reviewer="ana", time="t", action="reject", reason="bad"),
            ReviewDecision(
                sample_id=second, reviewer="ana", time="t", action="edit", turn_index=0, after="Edited question?"
            ),
        ],
    )
    out = tmp_path / "pj"
    result = run_cli("export", run, "--out", out, "--format", "prist-json", "--one-split", "test")
    assert result.exit_code == 0, result.output
    entries = json.loads((out / "test.json").read_text())
    assert json.loads((out / "train.json").read_text()) == []
    assert len(entries) == 16 and entries[0]["dialogue"][0] == {"from": "human", "value": "Edited question?"}
    assert set(entries[0]) == {"img_id", "dialogue", "focus"} and entries[0]["img_id"].endswith((".png", ".jpg"))
    manifest = json.loads((out / "export.json").read_text())
    assert manifest["format"] == "prist-json" and manifest["left_out"]["rejected by a reviewer"]["count"] == 1


def test_unknown_format_is_refused(demo_run: Path, tmp_path: Path) -> None:
    result = run_cli("export", demo_run, "--out", tmp_path / "x", "--format", "coco")
    assert result.exit_code == 2 and "unknown --format" in result.output
