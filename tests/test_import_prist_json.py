"""``prist import prist-json``: the authors' released split as a run folder, and back."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import numpy as np
import pytest
from conftest import fixtures_dir, read_jsonl, run_cli
from PIL import Image
from pydantic import ValidationError

from prist_builder.annotation.masks import decode
from prist_builder.export.writer import export_run
from prist_builder.records import DialogueRecord, Turn
from prist_builder.samples import iter_samples

datasets.disable_progress_bars()


@pytest.fixture(scope="module")
def official() -> Path:
    return fixtures_dir("prist_official") / "test.json"


@pytest.fixture(scope="module")
def imported(official: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("imported") / "run"
    result = run_cli("import", "prist-json", official, "--run", run)
    assert result.exit_code == 0, result.output
    assert "imported 508 samples over 169 images" in result.output
    assert "images not found: 169 (508 samples kept without an image)" in result.output
    return run


def test_official_split_imports_without_loss(official: Path, imported: Path) -> None:
    entries = json.loads(official.read_text(encoding="utf-8"))
    samples = list(iter_samples(imported))
    assert len(samples) == 508 and len({s.dialogue.image_id for s in samples}) == 169
    for entry, sample in zip(entries, samples, strict=True):
        assert [m["value"] for m in entry["dialogue"]] == [t.content for t in sample.dialogue.turns]
        assert [m["from"] for m in entry["dialogue"]] == [
            "human" if t.role == "user" else "gpt" for t in sample.dialogue.turns
        ]
        assert sample.dialogue.focus == entry["focus"] and sample.dialogue.form == "released"
        assert Path(sample.image.path).name == entry["img_id"] and sample.image.absent
        assert sample.image.source == "prist-json" and sample.mask is None
    assert sorted({s.dialogue.num_turns for s in samples}) == [3, 4, 5]
    manifest = json.loads((imported / "manifest.json").read_text())
    assert manifest["import"]["images_absent"] == 169 and manifest["import"]["forms"] == {"released": 508}
    assert (imported / "rejects.jsonl").read_text() == ""


def test_export_back_to_prist_json_gives_the_same_file(official: Path, imported: Path, tmp_path: Path) -> None:
    out = tmp_path / "back"
    result = run_cli("export", imported, "--out", out, "--format", "prist-json", "--one-split", "test")
    assert result.exit_code == 0, result.output
    assert json.loads((out / "test.json").read_text()) == json.loads(official.read_text())
    assert (out / "test.json").read_bytes() == official.read_bytes()


def test_hf_export_of_an_import_without_images_leaves_them_out_or_keeps_them(imported: Path, tmp_path: Path) -> None:
    summary = export_run(imported, tmp_path / "a")
    assert sum(summary.sizes.values()) == 0 and len(summary.left_out["no final mask"]) == 508
    kept = export_run(imported, tmp_path / "b", keep_unfinished=True, one_split="test")
    assert kept.sizes["test"] == 508
    row = datasets.load_dataset(str(tmp_path / "b"))["test"][0]
    assert row["image"] is None and row["targets"] == [] and row["source"] == "prist-json"
    assert row["turns"][-1]["content"].endswith("[SEG].")


def test_images_and_masks_when_given(official: Path, tmp_path: Path) -> None:
    entries = json.loads(official.read_text(encoding="utf-8"))
    first = entries[0]["img_id"]
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    Image.new("RGB", (64, 48), "gray").save(images / first, format="JPEG")
    target = np.zeros((48, 64), np.uint8)
    target[10:30, 20:40] = 255
    stem = Path(first).stem
    Image.fromarray(target).save(masks / f"{stem}-0.png")
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(masks / f"{stem}-1.png")  # wrong size
    run = tmp_path / "run"
    result = run_cli("import", "prist-json", official, "--run", run, "--images", images, "--masks", masks, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["images_absent"] == 168 and summary["masks"] == 1 and summary["samples"] == 508
    assert list(summary["warnings"].values()) == [f"{masks / f'{stem}-1.png'}: mask is 5x5, the image 48x64"]
    sample = next(iter_samples(run))
    assert (sample.image.width, sample.image.height) == (64, 48) and not sample.image.absent
    assert np.array_equal(decode(sample.mask), target > 0) and sample.mask_rule == "grounded"
    out = tmp_path / "ds"
    assert export_run(run, out).sizes == {"train": 1, "validation": 0, "test": 0}
    again = run_cli("import", "prist-json", official, "--run", run, "--images", images, "--masks", masks)
    assert again.exit_code == 0
    assert len(read_jsonl(run / "dialogues.jsonl")) == 508


def test_bad_entries_go_to_rejects_and_the_rest_imports(official: Path, tmp_path: Path) -> None:
    entries = json.loads(official.read_text(encoding="utf-8"))[:3]
    entries.append({"img_id": "x.jpg", "dialogue": [{"from": "robot", "value": "hi"}], "focus": "x"})
    entries.append(
        {"img_id": "y.jpg", "dialogue": [{"from": "human", "value": "a"}, {"from": "gpt", "value": "b"}], "focus": "y"}
    )  # no [SEG] in the final answer
    file = tmp_path / "mixed.json"
    file.write_text(json.dumps(entries), encoding="utf-8")
    run = tmp_path / "run"
    result = run_cli("import", "prist-json", file, "--run", run)
    assert result.exit_code == 0, result.output
    assert len(list(iter_samples(run))) == 3
    rejects = read_jsonl(run / "rejects.jsonl")
    assert len(rejects) == 2
    assert any("entry [3]: dialogue[0] is not {from: human|gpt, value: str}" in r["reason"] for r in rejects)
    assert any("entry [4]" in r["reason"] and "[SEG]" in r["reason"] for r in rejects)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    result = run_cli("import", "prist-json", bad, "--run", tmp_path / "r2")
    assert result.exit_code == 1 and "bad.json: cannot read JSON" in result.output


def _record(final: str, form: str = "prist") -> DialogueRecord:
    turns = [Turn(role="user" if i % 2 == 0 else "assistant", content=f"m{i}") for i in range(5)]
    turns.append(Turn(role="assistant", content=final))
    turns[4] = Turn(role="user", content="segment it")
    return DialogueRecord(
        sample_id="a-0", image_id="a", provider="p", turns=turns, focus="the cup", target_element_id="e0", form=form
    )


def test_released_form_is_accepted_only_when_marked() -> None:
    assert _record("Certainly, [SEG].", form="released").turns[-1].content == "Certainly, [SEG]."
    assert _record("Sure: [OBJ]the cup[SEG].").form == "prist"
    with pytest.raises(ValidationError, match=r"\[OBJ\]<focus>\[SEG\]"):
        _record("Certainly, [SEG].")
    with pytest.raises(ValidationError, match="released-form"):
        _record("[OBJ]the cup[SEG]", form="released")
    with pytest.raises(ValidationError, match="released-form"):
        _record("no token at all", form="released")
