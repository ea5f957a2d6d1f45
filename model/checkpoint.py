"""The folder ``prist train --out`` writes, and reading it back.

Layout::

    OUT/miras.json                 resolved config (model, train, data)
    OUT/processor/                 LLaVA-NeXT processor with [SEG]/[OBJ] (save_pretrained)
    OUT/base.safetensors           only when parts were built with random weights: the full initial state
    OUT/metrics.jsonl              one line per logged step: loss, ce, bce, dice, lr, samples, seconds
    OUT/checkpoints/step-NNNNNNN/  trainable.safetensors (trainable weights only), optimizer.pt,
                                   scheduler.pt, state.json (step, RNG states)

A checkpoint folder is written under a temporary name and renamed when complete, so a
crash never leaves a half checkpoint that resume would pick.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from prist_builder.model.config import MirasConfig

CONFIG_FILE = "miras.json"
PROCESSOR_DIR = "processor"
BASE_FILE = "base.safetensors"
METRICS_FILE = "metrics.jsonl"
CHECKPOINTS_DIR = "checkpoints"
TRAINABLE_FILE = "trainable.safetensors"
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


def checkpoints(out: Path) -> list[Path]:
    """Complete checkpoint folders, oldest first."""
    folder = Path(out) / CHECKPOINTS_DIR
    return sorted(p for p in folder.glob(f"{STEP_PREFIX}*") if p.is_dir() and (p / "state.json").exists())


def save_checkpoint(out: Path, step: int, model: torch.nn.Module, optimizer, scheduler, keep: int) -> Path:
    """Write checkpoint ``step`` atomically; keep the newest ``keep`` checkpoints."""
    final = Path(out) / CHECKPOINTS_DIR / f"{STEP_PREFIX}{step:0{STEP_DIGITS}d}"
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    state = {n: p.detach().to("cpu").contiguous().clone() for n, p in model.named_parameters() if p.requires_grad}
    save_file(state, str(tmp / TRAINABLE_FILE))
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
    rng = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    torch.save(rng, tmp / "rng.pt")
    (tmp / "state.json").write_text(json.dumps({"step": step}), encoding="utf-8")
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    for old in checkpoints(out)[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


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


def restore_rng(checkpoint: Path) -> None:
    """Restore the RNG states saved with a checkpoint."""
    rng = torch.load(checkpoint / "rng.pt", weights_only=False)
    torch.set_rng_state(rng["torch"])
    np.random.set_state(rng["numpy"])
    random.setstate(rng["python"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])


def checkpoint_step(checkpoint: Path) -> int:
    """The optimizer step a checkpoint was taken after."""
    return int(json.loads((checkpoint / "state.json").read_text(encoding="utf-8"))["step"])
