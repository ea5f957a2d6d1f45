"""Stage 1 -> Stage 2 (init_from), multi-process training and the Table 9 batch readings (issue 21)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")
pytest.importorskip("accelerate")

from conftest import read_jsonl, run_cli  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

from prist_builder.model.config import CONFIG_DIR, ConfigError, Source, TrainSettings, load_config  # noqa: E402
from prist_builder.model.train import configure_deepspeed, train  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    """accelerate keeps one process-wide state; each in-process training run starts from a fresh one."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)
    yield
    AcceleratorState._reset_state(reset_partial_state=True)


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory) -> Path:
    """The offline demo's run folder (22 dialogues)."""
    root = tmp_path_factory.mktemp("stages")
    result = run_cli("demo", "--out", root / "demo")
    assert result.exit_code == 0, result.output
    return root / "demo" / "run"


def _tiny(data: Path, steps: int, **train):
    config = load_config(CONFIG_DIR / "tiny.yaml")
    config.data.sources = [Source(name="prist", path=str(data))]
    config.train.max_steps = steps
    config.train.save_every = 1
    for key, value in train.items():
        setattr(config.train, key, value)
    return config


def _trainables(out: Path, step: int) -> dict[str, torch.Tensor]:
    return load_file(str(out / "checkpoints" / f"step-{step:07d}" / "trainable.safetensors"))


def test_stage2_starts_from_the_stage1_checkpoint(run_folder: Path, tmp_path: Path) -> None:
    stage1 = tmp_path / "stage1"
    train(_tiny(run_folder, 3), stage1)
    # Stage 2: fewer steps than Stage 1 ran, another lr; lr 0 leaves the first step's weights as loaded
    config = _tiny(run_folder, 2, lr=0.0)
    config.model.init_from = str(stage1)
    result = train(config, tmp_path / "stage2", stop_after=1)
    assert result.start_step == 1 and result.end_step == 1
    before, after = _trainables(stage1, 3), _trainables(tmp_path / "stage2", 1)
    assert before.keys() == after.keys()
    assert all(torch.equal(before[name], after[name]) for name in before)
    fresh = _tiny(run_folder, 2, lr=0.0)
    train(fresh, tmp_path / "bases", stop_after=1)
    scratch = _trainables(tmp_path / "bases", 1)
    assert any(not torch.equal(before[name], scratch[name]) for name in before)
    # the Stage-2 folder holds everything predict needs, and resuming it ignores init_from
    assert (tmp_path / "stage2" / "base.safetensors").exists() and (tmp_path / "stage2" / "processor").is_dir()
    config.train.lr = 1e-3
    assert train(config, tmp_path / "stage2").start_step == 2


def test_init_from_refuses_another_architecture_and_an_empty_folder(run_folder: Path, tmp_path: Path) -> None:
    train(_tiny(run_folder, 1), tmp_path / "stage1")
    other = _tiny(run_folder, 1)
    other.model.init_from = str(tmp_path / "stage1")
    other.model.region_alignment = False
    with pytest.raises(ValueError, match="init_from was trained with another model.region_alignment"):
        train(other, tmp_path / "stage2")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "miras.json").write_text(_tiny(run_folder, 1).model_dump_json(), encoding="utf-8")
    empty = _tiny(run_folder, 1)
    empty.model.init_from = str(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="init_from has no checkpoint"):
        train(empty, tmp_path / "stage2b")


def test_stage2_config_starts_from_stage1_and_the_cli_takes_init_from(run_folder: Path, tmp_path: Path) -> None:
    assert load_config("stage2").model.init_from == "runs/stage1"
    assert load_config("stage1").model.init_from is None
    stage1 = tmp_path / "s1"
    assert (
        run_cli("train", "--config", "tiny", "--data", run_folder, "--out", stage1, "--max-steps", "1").exit_code == 0
    )
    result = run_cli(
        "train", "--config", "tiny", "--data", run_folder, "--out", tmp_path / "s2",
        "--max-steps", "2", "--stop-after", "1", "--init-from", stage1,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "s2" / "miras.json").read_text())["model"]["init_from"] == str(stage1)
    assert [m["step"] for m in read_jsonl(tmp_path / "s2" / "metrics.jsonl")] == [1]


# ---- Table 9 batch readings ------------------------------------------------------------------
def test_batch_size_is_global_and_must_divide(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: {batch_size: 10, micro_batch: 4}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="bad.yaml: field train: .*batch_size 10 is not a multiple of micro_batch 4"):
        load_config(bad)
    stage2 = load_config("stage2").train
    assert [stage2.accumulation(n) for n in (1, 2, 8)] == [8, 4, 1]  # 32 = 4 x GPUs x accumulation
    with pytest.raises(ValueError, match="not a multiple of micro_batch 4 x 3 processes"):
        stage2.accumulation(3)


def test_deepspeed_config_follows_the_miras_config() -> None:
    settings = TrainSettings(batch_size=32, micro_batch=4, max_grad_norm=1.0)
    # what `accelerate config` writes for ZeRO-2 without a DeepSpeed file: accumulation 1, clipping unset
    ds = {"gradient_accumulation_steps": 1, "zero_optimization": {"stage": 2}, "train_micro_batch_size_per_gpu": "auto"}
    changed = configure_deepspeed(ds, settings, settings.accumulation(2))
    assert ds["gradient_accumulation_steps"] == 4 and ds["train_micro_batch_size_per_gpu"] == 4
    assert ds["train_batch_size"] == 32 and ds["gradient_clipping"] == 1.0
    assert changed == ["gradient_accumulation_steps 1 -> 4"]


# ---- two processes (gloo) ---------------------------------------------------------------------
def _free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on now (a fixed one collides with parallel test runs)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _launch(
    config: Path, out: Path, stop_after: int, port: int, processes: int = 2, extra: dict | None = None, cpu: bool = True
) -> None:
    """``prist train`` under torchrun (accelerate's own launcher runs one process with --cpu)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(extra or {})}
    if cpu:
        env["ACCELERATE_USE_CPU"] = "true"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes), "--master_port", str(port),
        "-m", "prist_builder", "train", "--config", str(config), "--out", str(out), "--stop-after", str(stop_after),
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def test_two_process_resume_equals_an_uninterrupted_two_process_run(run_folder: Path, tmp_path: Path) -> None:
    config = _tiny(run_folder, 4, batch_size=4, micro_batch=1)  # 4 = 1 x 2 processes x 2 accumulated
    config.model.lora.dropout = 0.1  # every rank's RNG matters
    path = tmp_path / "two.json"
    path.write_text(config.model_dump_json(), encoding="utf-8")
    _launch(path, tmp_path / "straight", 3, _free_port())
    _launch(path, tmp_path / "resumed", 2, _free_port())
    _launch(path, tmp_path / "resumed", 3, _free_port())
    straight, resumed = (
        read_jsonl(tmp_path / "straight" / "metrics.jsonl"),
        read_jsonl(tmp_path / "resumed" / "metrics.jsonl"),
    )
    assert [m["step"] for m in resumed] == [1, 2, 3] and resumed[-1]["samples"] == 12
    for key in ("loss", "ce", "bce", "dice"):
        assert resumed[2][key] == pytest.approx(straight[2][key], abs=1e-5)
    a, b = _trainables(tmp_path / "straight", 3), _trainables(tmp_path / "resumed", 3)
    assert max(float((a[n] - b[n]).abs().max()) for n in a) < 1e-5
    assert (tmp_path / "resumed" / "checkpoints" / "step-0000003" / "random_states_1.pkl").exists()


def test_deepspeed_zero2_resume_equals_an_uninterrupted_run(run_folder: Path, tmp_path: Path) -> None:
    """ZeRO-2 on CPU, one process (accelerate 1.16 counts every CPU DeepSpeed rank as process 0 of 1,
    so two CPU ranks cannot be tested here): sharded optimizer files, clipping and accumulation
    from the MIRAS config, resume through DeepSpeed's own checkpoint."""
    pytest.importorskip("deepspeed")
    config = _tiny(run_folder, 4, batch_size=2, micro_batch=1)
    config.model.lora.dropout = 0.1
    path = tmp_path / "ds.json"
    path.write_text(config.model_dump_json(), encoding="utf-8")
    ds = tmp_path / "zero2.json"
    ds.write_text(json.dumps({"zero_optimization": {"stage": 2}, "gradient_accumulation_steps": 1}), encoding="utf-8")
    env = {"ACCELERATE_USE_DEEPSPEED": "true", "ACCELERATE_DEEPSPEED_CONFIG_FILE": str(ds), "DS_ACCELERATOR": "cpu"}
    for out, stop, port in (("straight", 3, 29621), ("resumed", 2, 29622), ("resumed", 3, 29623)):
        _launch(path, tmp_path / out, stop, port, processes=1, extra=env, cpu=False)
    straight, resumed = (
        read_jsonl(tmp_path / "straight" / "metrics.jsonl"),
        read_jsonl(tmp_path / "resumed" / "metrics.jsonl"),
    )
    assert resumed[2]["loss"] == pytest.approx(straight[2]["loss"], abs=1e-5)
    a, b = _trainables(tmp_path / "straight", 3), _trainables(tmp_path / "resumed", 3)
    assert max(float((a[n] - b[n]).abs().max()) for n in a) < 1e-5
    shards = list((tmp_path / "resumed" / "checkpoints" / "step-0000003").glob("pytorch_model/*optim_states.pt"))
    assert len(shards) == 1
