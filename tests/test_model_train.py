"""MIRAS end to end on the demo data (CPU, tiny config): reading data, train CLI, resume, predict, mixing."""

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
from safetensors.torch import load_file  # noqa: E402

from prist_builder.annotation.masks import decode  # noqa: E402
from prist_builder.model.config import CONFIG_DIR, Source, load_config  # noqa: E402
from prist_builder.model.records import read_source  # noqa: E402
from prist_builder.model.train import train  # noqa: E402
from prist_builder.records.prediction import Prediction  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    """accelerate keeps one process-wide state; each in-process training run here starts from a fresh one."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)
    yield
    AcceleratorState._reset_state(reset_partial_state=True)


TEST_EVERY = 7
"""Every 7th demo sample goes to the test split, the next one to validation (17 -> 11/3/3)."""


def write_export(run: Path, out: Path) -> dict[str, int]:
    """A small dataset in the export contract's parquet layout, made from a run folder."""
    import datasets

    from prist_builder.samples import iter_samples
    from prist_builder.sources import read_image

    rle = {"size": datasets.Sequence(datasets.Value("int32")), "counts": datasets.Value("string")}
    features = datasets.Features(
        {
            "sample_id": datasets.Value("string"),
            "image_id": datasets.Value("string"),
            "image": datasets.Image(),
            "width": datasets.Value("int32"),
            "height": datasets.Value("int32"),
            "turns": [{"role": datasets.Value("string"), "content": datasets.Value("string")}],
            "conversations": [{"from": datasets.Value("string"), "value": datasets.Value("string")}],
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
            "source": datasets.Value("string"),
        }
    )
    rows: dict[str, list[dict]] = {"train": [], "validation": [], "test": []}
    for index, sample in enumerate(s for s in iter_samples(run) if s.finished):
        data, _ = read_image(sample.image)
        turns = [{"role": t.role, "content": t.content} for t in sample.dialogue.turns]
        conversations = [{"from": "human" if t["role"] == "user" else "gpt", "value": t["content"]} for t in turns]
        conversations[0]["value"] = "<image>\n" + conversations[0]["value"]
        mask = decode(sample.mask)
        ys, xs = np.nonzero(mask)
        target = {
            "focus": sample.dialogue.focus,
            "mask": sample.mask.model_dump(),
            "box": [float(xs.min()), float(ys.min()), float(np.ptp(xs) + 1), float(np.ptp(ys) + 1)],
            "area": int(mask.sum()),
            "granularity": "medium",
            "element_id": sample.dialogue.target_element_id,
        }
        split = "test" if index % TEST_EVERY == 0 else "validation" if index % TEST_EVERY == 1 else "train"
        rows[split].append(
            {
                "sample_id": sample.sample_id,
                "image_id": sample.image.image_id,
                "image": {"bytes": data, "path": None},
                "width": sample.image.width,
                "height": sample.image.height,
                "turns": turns,
                "conversations": conversations,
                "focus": sample.dialogue.focus,
                "targets": [target],
                "source": sample.image.source,
            }
        )
    (out / "data").mkdir(parents=True)
    for split, items in rows.items():
        datasets.Dataset.from_list(items, features=features).to_parquet(
            str(out / "data" / f"{split}-00000-of-00001.parquet")
        )
    return {split: len(items) for split, items in rows.items()}


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, Path, dict[str, int]]:
    """(run folder, export folder, split sizes) of the offline demo (6 photos, 17 dialogues)."""
    root = tmp_path_factory.mktemp("miras")
    result = run_cli("demo", "--out", root / "demo")
    assert result.exit_code == 0, result.output
    sizes = write_export(root / "demo" / "run", root / "export")
    return root / "demo" / "run", root / "export", sizes


def test_reads_an_export_folder_and_a_run_folder_alike(demo) -> None:
    run, export, sizes = demo
    from_run = {r.sample_id: r for r in read_source(run)}
    exported = read_source(export, split="test")
    assert len(from_run) == sum(sizes.values()) == 17 and len(exported) == sizes["test"] == 3
    for record in exported:
        twin = from_run[record.sample_id]
        assert record.turns == twin.turns and record.image.size == twin.image.size
        assert len(record.targets) == 1 and (record.targets[0].mask == twin.targets[0].mask).all()
        assert record.targets[0].mask.shape == (record.image.height, record.image.width)
    with pytest.raises(ValueError, match="no data/nope"):
        read_source(export, split="nope")


def test_train_cli_loss_falls_then_predict_writes_valid_lines(demo, tmp_path: Path) -> None:
    _, export, sizes = demo
    out = tmp_path / "miras"
    result = run_cli("train", "--config", CONFIG_DIR / "tiny.yaml", "--data", export, "--out", out, "--max-steps", "30")
    assert result.exit_code == 0, result.output
    metrics = read_jsonl(out / "metrics.jsonl")
    assert [m["step"] for m in metrics] == list(range(1, 31))
    assert all({"ce", "bce", "dice", "lr"} <= m.keys() for m in metrics)
    first, last = np.mean([m["loss"] for m in metrics[:5]]), np.mean([m["loss"] for m in metrics[-5:]])
    assert last < first - 0.5, (first, last)
    checkpoint = sorted((out / "checkpoints").iterdir())[-1]
    assert checkpoint.name == "step-0000030"
    saved = load_file(str(checkpoint / "trainable.safetensors"))
    assert any(n.startswith("alignment.") for n in saved) and any("lora_" in n for n in saved)
    assert not any("vision_tower" in n or "vision_encoder" in n or "convnext" in n for n in saved)

    pred = tmp_path / "pred.jsonl"
    result = run_cli("predict", "--model", out, "--data", export, "--split", "test", "--out", pred)
    assert result.exit_code == 0, result.output
    lines = [Prediction.model_validate(row) for row in read_jsonl(pred)]
    references = {r.sample_id: r for r in read_source(export, split="test")}
    assert sorted(p.sample_id for p in lines) == sorted(references) and len(lines) == sizes["test"]
    for prediction in lines:
        reference = references[prediction.sample_id]
        assert len(prediction.responses) == sum(role == "user" for role, _ in reference.turns)
        assert prediction.mask is not None and prediction.mask.size == [reference.image.height, reference.image.width]
    again = run_cli("predict", "--model", out, "--data", export, "--split", "test", "--out", pred)
    assert again.exit_code == 0 and "(0 new lines" in " ".join(again.output.split())
    assert len(read_jsonl(pred)) == len(lines)


def _tiny(data: Path, steps: int):
    config = load_config(CONFIG_DIR / "tiny.yaml")
    config.data.sources = [Source(name="prist", path=str(data))]
    config.train.max_steps = steps
    config.train.save_every = 1
    config.model.lora.dropout = 0.1  # exercise the RNG restore
    return config


def test_resume_reproduces_the_next_steps_loss(demo, tmp_path: Path) -> None:
    run, _, _ = demo

    def config():
        tiny = _tiny(run, 4)
        tiny.train.micro_batch = 1  # two micro-batches per step: gradient accumulation across the resume
        return tiny

    straight = train(config(), tmp_path / "a", stop_after=3)
    first = train(config(), tmp_path / "b", stop_after=2)
    with (tmp_path / "b" / "metrics.jsonl").open("a", encoding="utf-8") as handle:
        handle.write(json.dumps({"step": 3, "loss": 0.0}) + "\n")  # logged, then killed before the checkpoint
    resumed = train(config(), tmp_path / "b", stop_after=3)
    assert [m["step"] for m in first.metrics] == [1, 2] and resumed.start_step == 3
    assert [m["step"] for m in read_jsonl(tmp_path / "b" / "metrics.jsonl")] == [1, 2, 3]
    assert resumed.metrics[0]["loss"] == pytest.approx(straight.metrics[2]["loss"], abs=1e-5)
    assert resumed.metrics[0]["ce"] == pytest.approx(straight.metrics[2]["ce"], abs=1e-5)
    assert first.metrics[1]["loss"] == pytest.approx(straight.metrics[1]["loss"], abs=1e-6)


def test_mixes_prist_with_llava_format_vqa(demo, tmp_path: Path) -> None:
    run, export, _ = demo
    images = sorted((run.parent / "images").iterdir())
    vqa = [
        {
            "id": f"q{i}",
            "image": image.name,
            "conversations": [
                {"from": "human", "value": "<image>\nWhat does this photo show?"},
                {"from": "gpt", "value": f"A photo called {image.stem}."},
            ],
        }
        for i, image in enumerate(images)
    ]
    bad = {"id": "bad", "image": images[0].name, "conversations": [{"from": "gpt", "value": "An answer first."}]}
    (tmp_path / "vqa.json").write_text(json.dumps([*vqa, bad]), encoding="utf-8")
    config = _tiny(export, 3)
    config.data.sources.append(
        Source(name="vqa", path=str(tmp_path / "vqa.json"), image_root=str(run.parent / "images"), ratio=1)
    )
    config.data.sources[0].ratio = 1
    result = train(config, tmp_path / "mix")
    assert result.end_step == 3 and all(np.isfinite(m["loss"]) for m in result.metrics)
    vqa_records = read_source(tmp_path / "vqa.json", image_root=str(run.parent / "images"))
    assert len(vqa_records) == len(images) and vqa_records[0].targets == []
    assert len(vqa_records.skipped) == 1 and "expected user" in vqa_records.skipped[0][1]
    assert result.skipped["vqa"] == vqa_records.skipped
    assert vqa_records[0].turns[0] == ("user", "What does this photo show?")


def test_bf16_frozen_parts_and_gradient_checkpointing_train(demo, tmp_path: Path) -> None:
    """The CUDA recipe (bf16 frozen weights, fp32 trainables, autocast, checkpointing) on CPU."""
    run, _, _ = demo
    config = _tiny(run, 2)
    config.train.mixed_precision = "bf16"
    config.model.gradient_checkpointing = "on"
    result = train(config, tmp_path / "bf16")
    assert result.end_step == 2 and all(np.isfinite(m["loss"]) for m in result.metrics)
    base = load_file(str(tmp_path / "bf16" / "base.safetensors"))
    trained = load_file(str(tmp_path / "bf16" / "checkpoints" / "step-0000002" / "trainable.safetensors"))
    assert any(t.dtype == torch.bfloat16 for n, t in base.items() if "vision_tower" in n)
    assert all(t.dtype == torch.float32 for t in trained.values())


def test_resume_refuses_another_model_config(demo, tmp_path: Path) -> None:
    run, _, _ = demo
    train(_tiny(run, 1), tmp_path / "m")
    other = _tiny(run, 2)
    other.model.region_alignment = False
    with pytest.raises(ValueError, match="another model.region_alignment"):
        train(other, tmp_path / "m")
    assert train(_tiny(run, 2), tmp_path / "m").end_step == 2  # a longer run of the same model resumes
