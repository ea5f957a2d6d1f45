"""The folder ``prist train --out`` writes, and reading it back.

Layout::

    OUT/miras.json                 resolved config (model, train, data)
    OUT/processor/                 LLaVA-NeXT processor with [SEG]/[OBJ] (save_pretrained)
    OUT/base.safetensors           only when parts were built with random weights: the full initial state
    OUT/metrics.jsonl              one line per logged step: loss, ce, bce, dice, lr, samples, seconds
    OUT/targets.json               samples of the training data by target kind (text, single,
                                   multi, empty) of the run that wrote it last
    OUT/checkpoints/step-NNNNNNN/  trainable.safetensors (trainable weights only, what predict and
                                   init_from read), state.json (step), and what
                                   ``accelerator.save_state`` writes: optimizer.bin (or, under
                                   DeepSpeed, one ZeRO shard per rank under pytorch_model/),
                                   custom_checkpoint_0.pkl (LR scheduler), random_states_R.pkl
                                   (every rank's RNG)

A checkpoint folder is written under a temporary name and renamed when complete (by the main
process, after every rank wrote its part), so a crash never leaves a half checkpoint that
resume would pick.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from prist_builder.model.config import MirasConfig

CONFIG_FILE = "miras.json"
PROCESSOR_DIR = "processor"
BASE_FILE = "base.safetensors"
METRICS_FILE = "metrics.jsonl"
CHECKPOINTS_DIR = "checkpoints"
TRAINABLE_FILE = "trainable.safetensors"
TARGETS_FILE = "targets.json"
STEP_PREFIX = "step-"
STEP_DIGITS = 7


def write_config(out: Path, config: MirasConfig) -> None:
    """Save the resolved config as ``OUT/miras.json``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / CONFIG_FILE).write_text(config.model_dump_json(indent=2), encoding="utf-8")


def read_config(out: Path) -> MirasConfig:
    """The config a training folder was made with (raises ``FileNotFoundError`` if not a training folder)."""
    path = Path(out) / CONFIG_FILE
    if not path.exists():
        raise FileNotFoundError(f"{out}: not a prist train folder (no {CONFIG_FILE})")
    return MirasConfig.model_validate_json(path.read_text(encoding="utf-8"))


def target_kinds(counts: list[int | None]) -> dict[str, int]:
    """Samples by target kind: ``text`` (no segmentation target at all), ``empty`` (0 targets),
    ``single`` (1), ``multi`` (2 or more), from per-record target counts (``None`` = text only)."""
    kinds = {"text": 0, "single": 0, "multi": 0, "empty": 0}
    for count in counts:
        kinds["text" if count is None else "empty" if count == 0 else "single" if count == 1 else "multi"] += 1
    return kinds


def write_target_kinds(out: Path, kinds: dict[str, int]) -> None:
    """Save ``OUT/targets.json`` (``{"samples": kinds}``) atomically."""
    path = Path(out) / TARGETS_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"samples": kinds}), encoding="utf-8")
    tmp.replace(path)


def read_target_kinds(out: Path) -> dict[str, int] | None:
    """``OUT/targets.json``'s samples by target kind, ``None`` for a folder trained before it existed."""
    path = Path(out) / TARGETS_FILE
    return json.loads(path.read_text(encoding="utf-8"))["samples"] if path.exists() else None


def checkpoints(out: Path) -> list[Path]:
    """Complete checkpoint folders, oldest first."""
    folder = Path(out) / CHECKPOINTS_DIR
    return sorted(p for p in folder.glob(f"{STEP_PREFIX}*") if p.is_dir() and (p / "state.json").exists())


def trainable_tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """CPU copies of the trainable parameters of an unwrapped model, by name."""
    return {n: p.detach().to("cpu").contiguous().clone() for n, p in model.named_parameters() if p.requires_grad}


def save_checkpoint(out: Path, step: int, accelerator, model: torch.nn.Module, keep: int) -> Path:
    """Write checkpoint ``step`` with ``accelerator.save_state``; call on every process.

    Every rank writes its RNG state (and under ZeRO its optimizer shard); the main process
    writes ``trainable.safetensors`` (from the unwrapped ``model``) and ``state.json``, renames
    the temporary folder and keeps the newest ``keep`` checkpoints. The frozen weights are never
    written (the accelerator's model-state hook drops them; DeepSpeed gets ``exclude_frozen_parameters``).
    """
    final = Path(out) / CHECKPOINTS_DIR / f"{STEP_PREFIX}{step:0{STEP_DIGITS}d}"
    tmp = final.with_name(final.name + ".tmp")
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    deepspeed = accelerator.state.deepspeed_plugin is not None
    accelerator.save_state(str(tmp), **({"exclude_frozen_parameters": True} if deepspeed else {}))
    if accelerator.is_main_process:
        save_file(trainable_tensors(model), str(tmp / TRAINABLE_FILE))
        (tmp / "state.json").write_text(json.dumps({"step": step}), encoding="utf-8")
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        for old in checkpoints(out)[:-keep] if keep > 0 else []:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def load_checkpoint(checkpoint: Path, accelerator, model: torch.nn.Module) -> None:
    """Restore a checkpoint on every process: weights, optimizer (its shard under ZeRO), scheduler, RNG.

    Without DeepSpeed the trainable weights come from ``trainable.safetensors`` (into the fp32
    parameters the optimizer steps); under DeepSpeed from its own files, which also restore the
    fp32 master copies. Tensors load onto each rank's own device (accelerate's ``on_device``) or CPU.
    """
    if accelerator.state.deepspeed_plugin is not None:
        accelerator.load_state(str(checkpoint), load_module_strict=False)
        return
    load_trainable(model, checkpoint / TRAINABLE_FILE)
    accelerator.load_state(str(checkpoint))


def skip_model_weights(accelerator) -> None:
    """Make ``save_state``/``load_state`` leave the model weights alone (checkpoints hold trainables only)."""

    def on_save(models: list, weights: list, output_dir: str) -> None:
        weights.clear()

    def on_load(models: list, input_dir: str) -> None:
        models.clear()

    accelerator.register_save_state_pre_hook(on_save)
    accelerator.register_load_state_pre_hook(on_load)


def load_trainable(model: torch.nn.Module, path: Path) -> None:
    """Load ``trainable.safetensors`` into ``model``.

    Raises:
        KeyError: a name of the file is not a parameter of the model (config mismatch).
    """
    params = dict(model.named_parameters())
    for name, tensor in load_file(str(path)).items():
        if name not in params:
            raise KeyError(f"{path}: parameter {name} is not in the model (was it trained with another config?)")
        with torch.no_grad():
            params[name].copy_(tensor.to(params[name].device, params[name].dtype))


def checkpoint_step(checkpoint: Path) -> int:
    """The optimizer step a checkpoint was taken after."""
    return int(json.loads((checkpoint / "state.json").read_text(encoding="utf-8"))["step"])
