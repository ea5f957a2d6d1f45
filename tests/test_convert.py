"""``prist convert``: public Stage-1 datasets, written in their own layouts, into export-style
folders that training and evaluation read (paper appendix C.2; issue 21 item 6)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("datasets")

import convert_layouts as layouts  # noqa: E402
from conftest import read_jsonl, run_cli  # noqa: E402
from pycocotools import mask as coco_mask  # noqa: E402

from prist_builder.annotation.masks import decode  # noqa: E402
from prist_builder.cli.convert import FORMAT_NAMES  # noqa: E402
from prist_builder.export.reader import load_export  # noqa: E402
from prist_builder.model.data import FORMATS  # noqa: E402


def convert(*args: object) -> Path:
    """Run ``prist convert`` and return ``--out``; fails the test on a non-zero exit."""
    result = run_cli("convert", *args)
    assert result.exit_code == 0, result.output
    return Path(str(args[args.index("--out") + 1]))


def rows(out: Path, split: str) -> list[dict]:
    import datasets

    files = sorted(str(p) for p in (out / "data").glob(f"{split}-*.parquet"))
    return list(datasets.load_dataset("parquet", data_files={split: files}, split=split))


def masks_of(row: dict) -> dict[str, np.ndarray]:
    return {t["focus"]: decode(t["mask"]) for t in row["targets"]}


def test_format_names_match_the_registry() -> None:
    assert set(FORMAT_NAMES) == set(FORMATS)


def test_cocostuff_label_maps_become_class_prompts(tmp_path: Path) -> None:
    labels = layouts.cocostuff(tmp_path / "cocostuff")
    out = convert("cocostuff", tmp_path / "cocostuff", "--out", tmp_path / "out")
    data = load_export(out)
    assert (len(data["train"]), len(data["validation"]), len(data["test"])) == (1, 1, 0)
    row = data["train"][0]
    masks = masks_of(row)
    assert set(masks) == {"person", "sky"}  # wall-brick (a compound name) is not asked, 255 is unlabeled
    label = labels["000000000009"]
    assert np.array_equal(masks["person"], label == 0) and np.array_equal(masks["sky"], label == 156)
    user, answer = row["turns"][0]["content"], row["turns"][1]["content"]
    assert "the person" in user and "the sky" in user
    assert "[OBJ]person[SEG]" in answer and "[OBJ]sky[SEG]" in answer
    assert [t["focus"] for t in row["targets"]] == [
        name for name in ("person", "sky", "tree") if f"[OBJ]{name}" in answer
    ]
    assert (
        row["conversations"][0]["value"].startswith("<image>\n")
        and row["provenance"]["provider"] == "convert:cocostuff"
    )
    assert row["image"].size == (layouts.W, layouts.H) and row["targets"][0]["area"] > 0
    assert masks_of(data["validation"][0]).keys() == {"tree"}
    rejects = read_jsonl(out / "rejects.jsonl")
    assert {(Path(r["file"]).name, r["field"]) for r in rejects} == {
        ("000000000025.jpg", "image"),
        ("000000000030.png", "label map"),
    }
    manifest = json.loads((out / "export.json").read_text())
    assert manifest["format"] == "cocostuff" and manifest["rejected"] == 2 and manifest["splits"]["train"] == 1
    one = convert("cocostuff", tmp_path / "cocostuff", "--out", tmp_path / "one", "--classes-per-sample", "1")
    assert len(rows(one, "train")) == 2 and all(len(r["targets"]) == 1 for r in rows(one, "train"))


def test_coco_panoptic_segments_of_a_category_are_one_class(tmp_path: Path) -> None:
    ids = layouts.coco_panoptic(tmp_path / "coco")
    out = convert("cocostuff", tmp_path / "coco", "--out", tmp_path / "out")
    (row,) = rows(out, "validation")
    masks = masks_of(row)
    assert set(masks) == {"person", "sky"}
    assert np.array_equal(masks["person"], np.isin(ids, [7, 8])) and np.array_equal(masks["sky"], ids == 300)


def test_ade20k_values_are_shifted_by_one_and_zero_is_other(tmp_path: Path) -> None:
    label = layouts.ade20k(tmp_path / "ADEChallengeData2016")
    out = convert("ade20k", tmp_path / "ADEChallengeData2016", "--out", tmp_path / "out")
    (row,) = rows(out, "train")
    masks = masks_of(row)
    assert set(masks) == {"wall", "sky"}
    assert np.array_equal(masks["wall"], label == 1) and np.array_equal(masks["sky"], label == 3)


def test_refcoco_splits_sentences_and_masks(tmp_path: Path) -> None:
    folder = layouts.refcoco(tmp_path / "refer_seg")
    out = convert("refcoco", folder, "--out", tmp_path / "out")
    train, val, test_a, test_b = (rows(out, s) for s in ("train", "validation", "testA", "testB"))
    assert [r["focus"] for r in train] == ["man on the left", "left guy"]  # one sample per sentence
    assert [len(val), len(test_a), len(test_b), len(load_export(out)["test"])] == [1, 1, 1, 0]
    assert (
        train[0]["sample_id"] == "refcoco-unc-1-10" and "[OBJ]man on the left[SEG]" in train[0]["turns"][1]["content"]
    )
    expected = coco_mask.decode(coco_mask.merge(coco_mask.frPyObjects([[20, 5, 35, 5, 35, 25, 20, 25]], 30, 40)))
    assert np.array_equal(decode(val[0]["targets"][0]["mask"]), expected.astype(bool))
    (reject,) = read_jsonl(out / "rejects.jsonl")
    assert reject["field"] == "refs[4].ann_id" and reject["file"].endswith("refs(unc).p")
    only = convert("refcoco", folder, "--out", tmp_path / "only", "--splits", "testA,testB")
    assert json.loads((only / "export.json").read_text())["splits"] == {
        "testA": 1, "testB": 1, "train": 0, "validation": 0, "test": 0,
    }  # fmt: skip


def test_evaluate_and_predict_read_a_converted_refcoco_split(tmp_path: Path) -> None:
    folder = layouts.refcoco(tmp_path / "refer_seg")
    out = convert("refcoco", folder, "--out", tmp_path / "out")
    (reference,) = rows(out, "testA")
    prediction = {"sample_id": reference["sample_id"], "responses": ["x"], "mask": reference["targets"][0]["mask"]}
    (tmp_path / "p.jsonl").write_text(json.dumps(prediction) + "\n", encoding="utf-8")
    result = run_cli("evaluate", tmp_path / "p.jsonl", "--data", out, "--split", "testA", "--out", tmp_path / "ev")
    assert result.exit_code == 0, result.output
    figures = json.loads((tmp_path / "ev/results.json").read_text())
    assert figures["segmentation"]["gIoU"] == pytest.approx(100.0)
    from prist_builder.model.records import read_source

    (record,) = read_source(out, split="testA")
    assert "[OBJ]left person[SEG]" in record.turns[1][1]
    assert record.targets[0].mask.shape == (layouts.H, layouts.W) and record.image.size == (layouts.W, layouts.H)


def test_a_refs_pickle_holding_code_is_refused_in_one_line(tmp_path: Path) -> None:
    folder = layouts.refcoco(tmp_path / "refer_seg")

    class Evil:
        def __reduce__(self):
            return (print, ("ran",))

    (folder / "refs(unc).p").write_bytes(pickle.dumps([Evil()], protocol=2))
    result = run_cli("convert", "refcoco", folder, "--out", tmp_path / "out")
    assert result.exit_code == 1 and "ran" not in result.output
    assert "refs(unc).p" in result.output and "refuses to load __builtin__.print" in result.output
    assert not (tmp_path / "out" / "export.json").exists()


def test_reasonseg_ignore_regions_and_sentence_answers(tmp_path: Path) -> None:
    layouts.reasonseg(tmp_path / "ReasonSeg")
    out = convert("reasonseg", tmp_path / "ReasonSeg", "--out", tmp_path / "out")
    (sentence,) = rows(out, "train")
    (phrase,) = rows(out, "validation")
    mask = decode(sentence["targets"][0]["mask"])
    assert mask[20, 20] and not mask[12, 12] and not mask[2, 2]  # the ignore hole is background
    assert sentence["turns"][0]["content"].startswith("What could a hungry person eat here?")
    assert "[SEG]" in sentence["turns"][1]["content"] and "[OBJ]" not in sentence["turns"][1]["content"]
    assert "[OBJ]the object used to cut bread[SEG]" in phrase["turns"][1]["content"]
    (reject,) = read_jsonl(out / "rejects.jsonl")
    assert reject["file"].endswith("img_c.json") and reject["field"] == "file"


def test_paco_objects_and_parts(tmp_path: Path) -> None:
    path = layouts.paco(tmp_path)
    out = convert("paco", path, "--images", tmp_path / "coco", "--out", tmp_path / "out")
    (row,) = rows(out, "validation")
    masks = masks_of(row)
    assert set(masks) == {"mug", "handle of the mug"}
    assert masks["handle of the mug"].sum() == 25 and masks["mug"][10, 10]


def test_llava_instruct_is_text_only(tmp_path: Path) -> None:
    path = layouts.llava_instruct(tmp_path)
    out = convert("llava-instruct", path, "--images", tmp_path / "train2017", "--out", tmp_path / "out")
    first, second = rows(out, "train")
    assert first["targets"] == [] and [t["content"] for t in first["turns"]][:2] == [
        "What is in the photo?",
        "Random noise.",
    ]
    assert len(second["turns"]) == 2
    (reject,) = read_jsonl(out / "rejects.jsonl")
    assert reject["field"] == "[2].conversations[0]"


def test_out_must_be_empty_or_an_earlier_conversion(tmp_path: Path) -> None:
    layouts.ade20k(tmp_path / "ade")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    result = run_cli("convert", "ade20k", tmp_path / "ade", "--out", tmp_path / "busy")
    assert result.exit_code == 1 and "notes.txt" in result.output
    out = convert("ade20k", tmp_path / "ade", "--out", tmp_path / "out")
    assert convert("ade20k", tmp_path / "ade", "--out", out, "--limit", "1") == out  # a re-run replaces it
    result = run_cli("convert", "ade20k", tmp_path / "missing", "--out", tmp_path / "x")
    assert result.exit_code == 1 and "missing" in result.output


@pytest.mark.usefixtures("one_torch_thread")
def test_stage1_config_trains_on_the_converted_mix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """stage1.yaml's data section, pointed at converted folders, trains the tiny model (9:6:2:2)."""
    pytest.importorskip("torch")
    pytest.importorskip("peft")
    pytest.importorskip("accelerate")
    from accelerate.state import AcceleratorState

    from prist_builder.model.config import CONFIG_DIR, load_config
    from prist_builder.model.mixing import schedule
    from prist_builder.model.train import load_sources, train

    raw = tmp_path / "raw"
    stage1 = tmp_path / "data/stage1"
    layouts.cocostuff(raw / "cocostuff")
    layouts.ade20k(raw / "ade")
    refer = layouts.refcoco(raw / "refer_seg")
    paco = layouts.paco(raw)
    paco.rename(paco.with_name("paco_lvis_v1_train.json"))
    layouts.reasonseg(raw / "ReasonSeg")
    convert("cocostuff", raw / "cocostuff", "--out", stage1 / "cocostuff")
    convert("ade20k", raw / "ade", "--out", stage1 / "ade20k")
    for name in ("refcoco", "refcoco+", "refcocog"):
        convert("refcoco", refer, "--name", name, "--out", stage1 / name)
    convert("paco", paco.parent, "--images", raw / "coco", "--out", stage1 / "paco")
    convert(
        "llava-instruct", layouts.llava_instruct(raw), "--images", raw / "train2017", "--out", stage1 / "llava_instruct"
    )
    convert("reasonseg", raw / "ReasonSeg", "--out", stage1 / "reasonseg")

    config = load_config(CONFIG_DIR / "tiny.yaml")
    config.data = load_config("stage1").data
    config.train.max_steps = 2
    monkeypatch.chdir(tmp_path)  # stage1.yaml's paths are relative (data/stage1/...)
    sources, ratios = load_sources(config)
    assert ratios == [9, 6, 2, 2] and [len(s) for s in sources] == [2, 2 + 2 + 2 + 1, 2, 1]
    assert [schedule(ratios, 19).count(i) for i in range(4)] == [9, 6, 2, 2]
    refer_record = sources[1][0]
    assert refer_record.targets and refer_record.targets[0].mask.shape == (layouts.H, layouts.W)
    AcceleratorState._reset_state(reset_partial_state=True)
    try:
        result = train(config, tmp_path / "miras")
    finally:
        AcceleratorState._reset_state(reset_partial_state=True)
    assert result.end_step == 2 and all(np.isfinite(m["loss"]) for m in result.metrics)
    assert set(result.skipped) == {"semantic_seg", "referring_seg", "vqa", "reasoning_seg"}


def test_an_exif_rotated_image_goes_out_in_its_annotations_frame(tmp_path: Path) -> None:
    import io

    from PIL import Image

    from prist_builder.model.data.rows import read_image

    path = layouts.photo(tmp_path / "a.jpg", 1)
    image = Image.open(path)
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    image.save(tmp_path / "b.jpg", exif=exif, quality=95)
    stored = read_image(tmp_path / "b.jpg", (layouts.H, layouts.W))  # annotated as stored
    assert (stored.width, stored.height) == (layouts.W, layouts.H)
    assert Image.open(io.BytesIO(stored.data)).getexif().get(0x0112, 1) == 1  # no reader turns it any more
    turned = read_image(tmp_path / "b.jpg", (layouts.W, layouts.H))  # annotated upright
    assert (turned.width, turned.height) == (layouts.H, layouts.W)
    with pytest.raises(ValueError, match="annotations are 10x10"):
        read_image(tmp_path / "b.jpg", (10, 10))
    assert read_image(path).data == path.read_bytes()  # no EXIF rotation: the file's own bytes


def test_refcoco_a_missing_image_rejects_its_refs_and_the_rest_goes_on(tmp_path: Path) -> None:
    folder = layouts.refcoco(tmp_path / "refer_seg")
    (tmp_path / "refer_seg/images/mscoco/images/train2014/COCO_train2014_000000000025.jpg").unlink()
    out = convert("refcoco", folder, "--out", tmp_path / "out")
    assert "testB" not in json.loads((out / "export.json").read_text())["splits"]  # no row: no shard
    assert len(rows(out, "train")) == 2 and len(rows(out, "testA")) == 1
    fields = sorted((Path(r["file"]).name, r["field"]) for r in read_jsonl(out / "rejects.jsonl"))
    assert fields == [("COCO_train2014_000000000025.jpg", "image of refs[3]"), ("refs(unc).p", "refs[4].ann_id")]


def test_a_python2_refs_pickle_reads_utf8_sentences(tmp_path: Path) -> None:
    from prist_builder.model.data.refcoco import read_refs

    # what Python 2's cPickle.dump (protocol 0) writes for [{'sent': 'café on the left', 'ref_id': 7}]
    (tmp_path / "refs(unc).p").write_bytes(
        b"(lp0\n(dp1\nS'sent'\np2\nS'caf\\xc3\\xa9 on the left'\np3\nsS'ref_id'\np4\nI7\nsa."
    )
    assert read_refs(tmp_path / "refs(unc).p") == [{"sent": "café on the left", "ref_id": 7}]


@pytest.mark.usefixtures("one_torch_thread")
def test_train_cli_takes_a_converted_folder_as_data(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("peft")
    pytest.importorskip("accelerate")
    from accelerate.state import AcceleratorState

    layouts.reasonseg(tmp_path / "ReasonSeg")
    out = convert("reasonseg", tmp_path / "ReasonSeg", "--out", tmp_path / "rs")
    AcceleratorState._reset_state(reset_partial_state=True)
    try:
        result = run_cli("train", "--config", "tiny", "--data", out, "--out", tmp_path / "m", "--max-steps", "1")
    finally:
        AcceleratorState._reset_state(reset_partial_state=True)
    assert result.exit_code == 0, result.output
    assert len(read_jsonl(tmp_path / "m/metrics.jsonl")) == 1
