"""Create a :class:`~prist_builder.model.miras.Miras` for training, or load a trained one."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch
from safetensors.torch import load_model, save_model
from transformers import LlavaNextProcessor

from prist_builder.model.build import build_parts
from prist_builder.model.checkpoint import (
    BASE_FILE,
    PROCESSOR_DIR,
    TRAINABLE_FILE,
    checkpoint_step,
    checkpoints,
    load_trainable,
    read_config,
)
from prist_builder.model.config import MirasConfig
from prist_builder.model.miras import Miras


def is_random(config: MirasConfig) -> bool:
    """Some part is built with random weights (its full state must be saved to be reproduced)."""
    w = config.model.weights
    return not w.llava or not w.sam or (config.model.dual_encoder and not w.convnext)


def keep_trainable_fp32(model: torch.nn.Module) -> None:
    """Store trainable parameters in float32 (frozen parts may be bf16; autocast mixes them)."""
    for param in model.parameters():
        if param.requires_grad and param.dtype != torch.float32:
            param.data = param.data.float()


def create_model(
    config: MirasConfig, out: Path, texts: Iterable[str] = (), dtype: torch.dtype = torch.float32
) -> Miras:
    """The model of a training folder: the saved processor and random base state when present, else new ones.

    Frozen parts are stored in ``dtype`` (bf16 for bf16 training), trainable ones in float32.
    Writes ``OUT/processor`` and (random parts) ``OUT/base.safetensors`` the first time.
    """
    out = Path(out)
    processor = LlavaNextProcessor.from_pretrained(out / PROCESSOR_DIR) if (out / PROCESSOR_DIR).exists() else None
    torch.manual_seed(config.train.seed)
    parts = build_parts(config.model, texts, dtype=dtype, processor=processor)
    model = Miras(parts, config.model)
    keep_trainable_fp32(model)
    if processor is None:
        parts.processor.save_pretrained(out / PROCESSOR_DIR)
    if is_random(config):
        base = out / BASE_FILE
        if base.exists():
            load_model(model, str(base))
        else:
            save_model(model, str(base))
    return model


def load_trained(out: Path, device: str | torch.device = "cpu") -> tuple[Miras, MirasConfig, int]:
    """The model of a ``prist train --out`` folder with its latest checkpoint's weights.

    Returns:
        ``(model in eval mode on device, config, step of the checkpoint)``.

    Raises:
        FileNotFoundError: not a training folder, or it has no checkpoint yet.
    """
    out = Path(out)
    config = read_config(out)
    done = checkpoints(out)
    if not done:
        raise FileNotFoundError(f"{out}: no checkpoint yet (checkpoints/step-*)")
    model = create_model(config, out)
    load_trainable(model, done[-1] / TRAINABLE_FILE)
    return model.to(device).eval(), config, checkpoint_step(done[-1])
