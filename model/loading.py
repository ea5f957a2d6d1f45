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


ARCHITECTURE = (
    "weights",
    "dual_encoder",
    "region_alignment",
    "fusion_heads",
    "alignment_heads",
    "lora",
    "train_embeddings",
)
"""``model`` fields a run started with ``init_from`` must share with the run it starts from."""


def init_checkpoint(config: MirasConfig) -> Path:
    """The checkpoint ``model.init_from`` names: the newest of that training folder.

    Raises:
        FileNotFoundError: not a training folder, or it has no checkpoint.
        ValueError: its model has another architecture (the field is named).
    """
    source = Path(config.model.init_from or "")
    before = read_config(source).model
    done = checkpoints(source)
    if not done:
        raise FileNotFoundError(f"{source}: init_from has no checkpoint yet (checkpoints/step-*)")
    fields = ARCHITECTURE + (("shapes",) if is_random(config) else ())
    for key in fields:
        if getattr(before, key) != getattr(config.model, key):
            raise ValueError(f"{source / 'miras.json'}: init_from was trained with another model.{key}")
    return done[-1]


def create_model(
    config: MirasConfig,
    out: Path,
    texts: Iterable[str] = (),
    dtype: torch.dtype = torch.float32,
    write: bool = True,
) -> Miras:
    """The model of a training folder: the saved processor and random base state when present, else new ones.

    With ``model.init_from`` and no processor of its own yet, the processor and random base
    state come from that folder instead (its trained weights are loaded by the caller, see
    :func:`init_checkpoint`). Frozen parts are stored in ``dtype`` (bf16 for bf16 training),
    trainable ones in float32. Writes ``OUT/processor`` and (random parts) ``OUT/base.safetensors``
    the first time when ``write`` (the main process).
    """
    out = Path(out)
    origin = out
    if not (out / PROCESSOR_DIR).exists() and config.model.init_from:
        origin = Path(config.model.init_from)
    processor = (
        LlavaNextProcessor.from_pretrained(origin / PROCESSOR_DIR) if (origin / PROCESSOR_DIR).exists() else None
    )
    torch.manual_seed(config.train.seed)
    parts = build_parts(config.model, texts, dtype=dtype, processor=processor)
    model = Miras(parts, config.model)
    keep_trainable_fp32(model)
    if write and not (out / PROCESSOR_DIR).exists():
        parts.processor.save_pretrained(out / PROCESSOR_DIR)
    if is_random(config):
        base = origin / BASE_FILE
        if base.exists():
            load_model(model, str(base))
        if write and not (out / BASE_FILE).exists():
            save_model(model, str(out / BASE_FILE))
    return model


def load_trained(
    out: Path, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
) -> tuple[Miras, MirasConfig, int]:
    """The model of a ``prist train --out`` folder with its latest checkpoint's weights, all in ``dtype``.

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
    model = create_model(config, out, dtype=dtype, write=False)
    load_trainable(model, done[-1] / TRAINABLE_FILE)
    return model.to(device=device, dtype=dtype).eval(), config, checkpoint_step(done[-1])
