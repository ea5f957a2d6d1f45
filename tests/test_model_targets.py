"""MIRAS with 0..n targets per answer (issue 22): multi-target and empty-target samples train and
predict (tiny config, CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")
pytest.importorskip("accelerate")

from conftest import read_jsonl, run_cli  # noqa: E402
from test_model import _image  # noqa: E402  (the red square and blue bar picture)

from prist_builder.annotation.masks import decode, encode  # noqa: E402
from prist_builder.model.build import build_parts  # noqa: E402
from prist_builder.model.checkpoint import TARGETS_FILE, read_target_kinds  # noqa: E402
from prist_builder.model.collator import MirasCollator  # noqa: E402
from prist_builder.model.config import CONFIG_DIR, Source, load_config  # noqa: E402
from prist_builder.model.miras import Miras  # noqa: E402
from prist_builder.model.predict import Predictor, default_force_seg  # noqa: E402
from prist_builder.model.records import Record, Target, read_source  # noqa: E402
from prist_builder.model.train import train  # noqa: E402
from prist_builder.records.prediction import Prediction  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ASK = "Where could I put my cup and my notebook?"
TWO = "Here: [OBJ]blue bar[SEG] and [OBJ]red square[SEG]."
NONE = "There is no green ball in this photo."
TEXTS = ["What is in the photo?", "A red square and a blue bar.", ASK, TWO, NONE]


@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    """accelerate keeps one process-wide state; each in-process training run starts from a fresh one."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)
    yield
    AcceleratorState._reset_state(reset_partial_state=True)


def _turns(final: str) -> list[tuple[str, str]]:
    return [("user", TEXTS[0]), ("assistant", TEXTS[1]), ("user", ASK), ("assistant", final)]


def _two() -> Record:
    image, square, bar = _image()
    return Record("img-bar+square", image, _turns(TWO), [Target("blue bar", bar), Target("red square", square)])


def _empty() -> Record:
    return Record("img-none", _image()[0], _turns(NONE), [])


@pytest.fixture(scope="module")
def tiny() -> tuple[Miras, object]:
    config = load_config(CONFIG_DIR / "tiny.yaml")
    torch.manual_seed(0)
    return Miras(build_parts(config.model, TEXTS * 5), config.model), config


def _collator(model: Miras, config) -> MirasCollator:
    return MirasCollator(model.processor, model.head.side, config.model.high_res, config.model.max_length)


# ---- training batches ------------------------------------------------------------------------
def test_two_target_and_empty_sample_share_a_batch(tiny) -> None:
    model, config = tiny
    model.train()
    batch = _collator(model, config)([_two(), _empty()])
    assert [tuple(t.shape) for t in batch["target_masks"]] == [(2, 60, 90), (0, 60, 90)]

    out = model(batch)
    assert torch.isfinite(out.loss.total) and out.loss.masks == 2
    assert [tuple(m.shape) for m in out.mask_logits] == [(2, 60, 90), (0, 60, 90)]
    assert out.loss.bce > 0 and out.loss.dice > 0

    # the mask terms alone: the empty row's hidden states get no gradient, the two-target row's do
    masks_only = model(batch, weights=(0.0, 2.0, 0.5))
    masks_only.hidden.retain_grad()
    masks_only.loss.total.backward()
    grad = masks_only.hidden.grad
    assert grad[1].abs().sum() == 0 and grad[0].abs().sum() > 0
    model.zero_grad(set_to_none=True)

    # the text term reaches the empty row
    text_only = model(batch, weights=(1.0, 0.0, 0.0))
    text_only.hidden.retain_grad()
    text_only.loss.total.backward()
    assert text_only.hidden.grad[1].abs().sum() > 0
    model.zero_grad(set_to_none=True)


def test_an_empty_sample_alone_trains_text_only(tiny) -> None:
    model, config = tiny
    model.train()
    out = model(_collator(model, config)([_empty()]))
    assert out.loss.masks == 0 and out.loss.bce == 0 and out.loss.dice == 0
    assert out.loss.total.item() == pytest.approx(out.loss.ce.item(), rel=1e-6) and out.loss.ce > 0
    out.loss.total.backward()
    grads = {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert any("lora_" in n for n in grads)
    assert not any(n.startswith(("head.", "seg_proj.", "alignment.")) for n in grads)
    model.zero_grad(set_to_none=True)


def test_more_seg_than_targets_names_the_sample(tiny) -> None:
    model, config = tiny
    wrong = Record("img-oops", _image()[0], _turns(TWO), [Target("blue bar", _image()[2])])
    with pytest.raises(ValueError, match="img-oops: 2 \\[SEG\\] tokens but 1 targets"):
        _collator(model, config)([wrong])


# ---- an export with 0, 1 and 2 targets -------------------------------------------------------
def _target(focus: str, mask: np.ndarray) -> dict:
    ys, xs = np.nonzero(mask)
    return {
        "focus": focus,
        "mask": encode(mask).model_dump(),
        "box": [float(xs.min()), float(ys.min()), float(np.ptp(xs) + 1), float(np.ptp(ys) + 1)],
        "area": int(mask.sum()),
        "granularity": "medium",
        "element_id": focus.replace(" ", "-"),
    }


def write_export(out: Path) -> Path:
    """An export folder (the export contract's parquet layout, with ``target_kind``) whose train
    split holds a two-target, an empty-target, a one-target sample and two broken rows."""
    import io

    import datasets

    image, square, bar = _image()
    data = io.BytesIO()
    image.save(data, format="PNG")
    rle = {"size": datasets.Sequence(datasets.Value("int32")), "counts": datasets.Value("string")}
    features = datasets.Features(
        {
            "sample_id": datasets.Value("string"),
            "image_id": datasets.Value("string"),
            "image": datasets.Image(),
            "width": datasets.Value("int32"),
            "height": datasets.Value("int32"),
            "turns": [{"role": datasets.Value("string"), "content": datasets.Value("string")}],
            "focus": datasets.Value("string"),
            "targets": [
                {
                    "focus": datasets.Value("string"),
                    "mask": rle,
                    "box": datasets.Sequence(datasets.Value("float32")),
                    "area": datasets.Value("int64"),
                    "granularity": datasets.Value("string"),
                    "element_id": datasets.Value("string"),
                }
            ],
            "target_kind": datasets.Value("string"),
            "source": datasets.Value("string"),
        }
    )
    one = "Here: [OBJ]blue bar[SEG]."
    cases = [
        ("img-bar+square", TWO, [_target("blue bar", bar), _target("red square", square)], "multi"),
        ("img-none", NONE, [], "empty"),
        ("img-bar", one, [_target("blue bar", bar)], "single"),
        ("img-short", one, [_target("blue bar", bar), _target("red square", square)], "multi"),
        ("img-ghost", NONE, [_target("blue bar", bar)], "single"),
    ]
    rows = [
        {
            "sample_id": sample_id,
            "image_id": "img",
            "image": {"bytes": data.getvalue(), "path": None},
            "width": 90,
            "height": 60,
            "turns": [{"role": r, "content": c} for r, c in _turns(final)],
            "focus": "things",
            "targets": targets,
            "target_kind": kind,
            "source": "test",
        }
        for sample_id, final, targets, kind in cases
    ]
    (out / "data").mkdir(parents=True)
    datasets.Dataset.from_list(rows, features=features).to_parquet(str(out / "data" / "train-00000-of-00001.parquet"))
    return out


def test_export_records_give_one_mask_per_seg_and_leave_out_mismatches(tmp_path: Path) -> None:
    records = read_source(write_export(tmp_path / "export"), split="train")
    by_id = {r.sample_id: r for r in records}
    assert sorted(by_id) == ["img-bar", "img-bar+square", "img-none"]
    _, square, bar = _image()
    two = by_id["img-bar+square"]
    assert [t.focus for t in two.targets] == ["blue bar", "red square"]
    assert (two.targets[0].mask == bar).all() and (two.targets[1].mask == square).all()
    assert by_id["img-none"].targets == []
    assert records.target_counts() == [2, 0, 1]
    reasons = dict(records.skipped)
    assert reasons["img-short"].endswith("sample img-short: the final answer holds 1 [SEG] for 2 targets")
    assert reasons["img-ghost"].endswith("sample img-ghost: the final answer holds 0 [SEG] for 1 targets")


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> Path:
    return write_export(tmp_path_factory.mktemp("targets") / "export")


def _config(export: Path, steps: int):
    config = load_config(CONFIG_DIR / "tiny.yaml")
    config.data.sources = [Source(name="prist", path=str(export), split="train")]
    config.train.max_steps = steps
    config.train.save_every = 1
    config.train.micro_batch = 1  # two micro-batches per step: accumulation across a resume
    return config


def test_train_and_resume_on_multi_and_empty_targets(export: Path, tmp_path: Path) -> None:
    straight = train(_config(export, 3), tmp_path / "a")
    assert all(np.isfinite(m["loss"]) for m in straight.metrics)
    first = train(_config(export, 3), tmp_path / "b", stop_after=2)
    resumed = train(_config(export, 3), tmp_path / "b")
    assert [m["step"] for m in first.metrics] == [1, 2] and resumed.start_step == 3
    assert resumed.metrics[0]["loss"] == pytest.approx(straight.metrics[2]["loss"], abs=1e-5)
    assert read_target_kinds(tmp_path / "a") == {"text": 0, "single": 1, "multi": 1, "empty": 1}
    # trained with empty targets: predict no longer forces a [SEG]; an older folder still does
    assert default_force_seg(tmp_path / "a") is False
    assert Predictor.from_folder(tmp_path / "a", device="cpu").force_seg is False
    (tmp_path / "a" / TARGETS_FILE).unlink()
    assert default_force_seg(tmp_path / "a") is True

    pred = tmp_path / "pred.jsonl"
    result = run_cli("predict", "--model", tmp_path / "b", "--data", export, "--split", "train", "--out", pred)
    assert result.exit_code == 0, result.output
    for line in read_jsonl(pred):
        prediction = Prediction.model_validate(line)
        assert set(line) >= {"sample_id", "responses", "masks", "mask"}
        assert len(prediction.masks) == sum(r.count("[SEG]") for r in prediction.responses[-1:])
        assert (prediction.mask is None) == (prediction.masks == [])
    forced = tmp_path / "forced.jsonl"
    args = ("predict", "--model", tmp_path / "b", "--data", export, "--split", "train", "--out", forced)
    assert run_cli(*args, "--force-seg").exit_code == 0
    assert all(len(Prediction.model_validate(line).masks) >= 1 for line in read_jsonl(forced))


# ---- predict: one mask per [SEG] -------------------------------------------------------------
def _scripted(predictor: Predictor, monkeypatch, answer: str) -> None:
    """Make every generated answer ``answer`` (its tokens go through the head as generated ones would)."""
    ids = predictor.tokenizer(answer, add_special_tokens=False)["input_ids"]
    monkeypatch.setattr(predictor, "_generate", lambda image_batch, id_lists: [list(ids) for _ in id_lists])


def test_predict_writes_a_mask_per_seg_and_their_union(tiny, monkeypatch, tmp_path: Path) -> None:
    model, config = tiny
    predictor = Predictor(model, config.model.high_res, max_new_tokens=8, force_seg=False)
    _scripted(predictor, monkeypatch, TWO)
    out = tmp_path / "pred.jsonl"
    from prist_builder.model.predict import predict_file

    assert predict_file(predictor, [_two()], out) == 1
    (line,) = read_jsonl(out)
    assert line["sample_id"] == "img-bar+square" and line["responses"][-1].count("[SEG]") == 2
    prediction = Prediction.model_validate(line)
    assert len(prediction.masks) == 2 and len(prediction.target_masks()) == 2
    first, second = (decode(m) for m in prediction.masks)
    assert first.shape == second.shape == (60, 90)
    assert (decode(prediction.mask) == (first | second)).all()
    # the same masks as the head gives for each [SEG] of the batch the collator makes
    (answer,) = predictor.answer_many([_image()[0]], [[TEXTS[0], ASK]])
    assert len(answer.masks) == 2 and (answer.masks[0] == first).all() and (answer.masks[1] == second).all()
    model.train()


def test_predict_without_seg_writes_no_mask(tiny, monkeypatch, tmp_path: Path) -> None:
    model, config = tiny
    predictor = Predictor(model, config.model.high_res, max_new_tokens=8, force_seg=False)
    _scripted(predictor, monkeypatch, NONE)
    (prediction,) = predictor.predict_many([_empty()])
    line = json.loads(prediction.model_dump_json())
    assert line["masks"] == [] and line["mask"] is None and line["responses"][-1] == NONE
    assert prediction.target_masks() == []
    forced = Predictor(model, config.model.high_res, max_new_tokens=8, force_seg=True)
    _scripted(forced, monkeypatch, NONE)
    (one,) = forced.predict_many([_empty()])
    assert len(one.masks) == 1 and one.mask == one.masks[0]
    model.train()


# ---- a run folder with multi-target and empty-target dialogues ------------------------------
def test_run_records_read_multi_and_empty_dialogues(tiny, tmp_path: Path) -> None:
    """Two dialogues added to the demo run the way the build writes them: a multi-target one over
    two of an image's single targets (grounded masks) and an empty-target one."""
    import random

    from prist_builder.providers.final_turn import empty_final_turn, multi_final_turn
    from prist_builder.records import DialogueRecord
    from prist_builder.records import Target as RecordTarget

    assert run_cli("demo", "--out", tmp_path / "demo").exit_code == 0
    run = tmp_path / "demo" / "run"
    lines = read_jsonl(run / "dialogues.jsonl")
    first, second = [d for d in lines if d["image_id"] == lines[0]["image_id"]][:2]
    targets = [
        RecordTarget.model_validate(
            {"element_id": d["target_element_id"], "focus": d["focus"], "region_ids": d["target_region_ids"]}
            | {"mask": d["mask"]}
        )
        for d in (first, second)
    ]
    union = np.logical_or(decode(targets[0].mask), decode(targets[1].mask))
    lead = first["turns"][:-2]
    ids = f"{targets[0].element_id}+{targets[1].element_id}"
    multi = DialogueRecord.model_validate(
        {
            "sample_id": f"{first['image_id']}-{ids}",
            "image_id": first["image_id"],
            "provider": "test",
            "turns": lead + [t.model_dump() for t in multi_final_turn([t.focus for t in targets], random.Random(1))],
            "focus": "both things",
            "target_element_id": ids,
            "target_region_ids": first["target_region_ids"] + second["target_region_ids"],
            "mask": encode(union).model_dump(),
            "kind": "multi",
            "targets": [t.model_dump() for t in targets],
        }
    )
    empty = DialogueRecord.model_validate(
        {
            "sample_id": f"{first['image_id']}-none",
            "image_id": first["image_id"],
            "provider": "test",
            "turns": lead + [t.model_dump() for t in empty_final_turn("bicycle", random.Random(2))],
            "focus": "bicycle",
            "target_element_id": "none",
            "kind": "empty",
        }
    )
    with (run / "dialogues.jsonl").open("a", encoding="utf-8") as handle:
        handle.write(multi.model_dump_json() + "\n" + empty.model_dump_json() + "\n")

    records = read_source(run)
    by_id = {r.sample_id: r for r in records}
    assert records.target_counts().count(2) == 1 and records.target_counts().count(0) == 1
    two, none = by_id[multi.sample_id], by_id[empty.sample_id]
    assert [t.focus for t in two.targets] == [first["focus"], second["focus"]]
    assert (two.targets[1].mask == decode(second["mask"])).all() and none.targets == []
    assert (by_id[first["sample_id"]].targets[0].mask == two.targets[0].mask).all()

    model, config = tiny
    model.train()
    out = model(_collator(model, config)([two, none]))
    assert torch.isfinite(out.loss.total) and out.loss.masks == 2
