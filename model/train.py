"""The training loop of ``prist train``, on Hugging Face ``accelerate``.

Multi-GPU, multi-node and DeepSpeed ZeRO-2 come from ``accelerate launch`` (``accelerate
config``), not from this code. Each optimizer step takes ``batch_size`` samples over all
processes (the global batch), ``micro_batch`` per forward pass, accumulated by the
Accelerator over ``batch_size / (micro_batch x processes)`` passes; the sample at mixture
position ``k`` is fixed by the seed, so a resumed run sees exactly the samples the
uninterrupted run would have. Under DeepSpeed the MIRAS config sets the DeepSpeed micro-batch,
accumulation, global batch and gradient clipping (:func:`configure_deepspeed`).
"""

from __future__ import annotations

import importlib.util
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.utils import DistributedDataParallelKwargs, set_seed
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from prist_builder.model.checkpoint import (
    CONFIG_FILE,
    METRICS_FILE,
    TRAINABLE_FILE,
    checkpoint_step,
    checkpoints,
    load_checkpoint,
    load_trainable,
    read_config,
    save_checkpoint,
    skip_model_weights,
    target_kinds,
    write_config,
    write_target_kinds,
)
from prist_builder.model.collator import MirasCollator
from prist_builder.model.config import MirasConfig, TrainSettings
from prist_builder.model.loading import create_model, init_checkpoint
from prist_builder.model.mixing import MixedStream
from prist_builder.model.records import DataError, Records, read_source

StepHook = Callable[[int, dict], None]
logger = get_logger(__name__)


@dataclass
class TrainResult:
    """What a call of :func:`train` did: first and last step run, each step's metrics, and the
    rows each source left out (``(sample id, reason)``)."""

    start_step: int
    end_step: int
    metrics: list[dict] = field(default_factory=list)
    skipped: dict[str, list[tuple[str, str]]] = field(default_factory=dict)


def mixed_precision(config: MirasConfig) -> str:
    """``auto`` resolves to ``bf16`` on CUDA and ``no`` elsewhere."""
    wanted = config.train.mixed_precision
    return ("bf16" if torch.cuda.is_available() else "no") if wanted == "auto" else wanted


def load_sources(config: MirasConfig) -> tuple[list[Records], list[float]]:
    """Records and ratio of each configured source (rows left out are in each ``Records.skipped``).

    Raises:
        DataError: no source configured, or a source is unreadable or empty.
    """
    if not config.data.sources:
        raise DataError("config: data.sources is empty (give --data DIR)")
    sources, ratios = [], []
    for source in config.data.sources:
        records = read_source(source.path, source.format, source.split, source.image_root)
        if not records:
            raise DataError(f"{source.path}: source {source.name!r} has no usable sample")
        sources.append(records)
        ratios.append(source.ratio)
    return sources, ratios


def warmup_decay(warmup_steps: int, max_steps: int) -> Callable[[int], float]:
    """LR factor of optimizer step ``s``: linear 0 -> 1 over ``warmup_steps``, then linear 1 -> 0 at
    ``max_steps`` (the shape of DeepSpeed's WarmupDecayLR, Table 9)."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        return max(0.0, (max_steps - step) / max(1, max_steps - warmup_steps))

    return factor


class MicroBatches(IterableDataset):
    """Collated micro-batches ``first .. first + count - 1`` of this process, in order.

    Micro-batch ``n`` holds mixture positions ``(n * world + rank) * micro + j``. With W loader
    workers, worker ``w`` makes micro-batches ``first + w, first + w + W, ...`` and the loader's
    round-robin returns them in order, so the sample sequence does not depend on W.
    """

    def __init__(
        self, stream: MixedStream, collator: MirasCollator, first: int, count: int, micro: int, world: int, rank: int
    ) -> None:
        self.stream, self.collator = stream, collator
        self.first, self.count, self.micro, self.world, self.rank = first, count, micro, world, rank

    def __iter__(self) -> Iterator[dict]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        for n in range(self.first + worker, self.first + self.count, workers):
            base = (n * self.world + self.rank) * self.micro
            yield self.collator([self.stream[base + j] for j in range(self.micro)])


def configure_deepspeed(ds_config: dict, settings: TrainSettings, accumulation: int) -> list[str]:
    """Make a DeepSpeed config follow the MIRAS ``train`` section (in place); returns what it overrode.

    Sets ``train_micro_batch_size_per_gpu`` (``micro_batch``), ``gradient_accumulation_steps``,
    ``train_batch_size`` (``batch_size``, the global batch) and ``gradient_clipping``
    (``max_grad_norm``; DeepSpeed clips inside its step, so ``accelerator.clip_grad_norm_`` would
    do nothing). A value ``accelerate config`` wrote (its default accumulation is 1) is replaced,
    and named in the returned list so the caller can warn.
    """
    wanted = {
        "train_micro_batch_size_per_gpu": settings.micro_batch,
        "gradient_accumulation_steps": accumulation,
        "train_batch_size": settings.batch_size,
        "gradient_clipping": float(settings.max_grad_norm),
    }
    overridden = []
    for key, value in wanted.items():
        before = ds_config.get(key)
        if before not in (None, "auto") and before != value:
            overridden.append(f"{key} {before} -> {value}")
        ds_config[key] = value
    return overridden


def check_same_model(out: Path, config: MirasConfig) -> None:
    """Refuse to resume a training folder with another ``model`` section (train/data may change;
    ``init_from`` only matters before the first checkpoint).

    Raises:
        ValueError: naming the first differing field.
    """
    if not (out / CONFIG_FILE).exists():
        return
    before = read_config(out).model.model_dump()
    now = config.model.model_dump()
    for key in now:
        if key != "init_from" and before.get(key) != now[key]:
            raise ValueError(f"{out / CONFIG_FILE}: this folder was trained with another model.{key}; use a new --out")


def trim_metrics(path: Path, step: int) -> None:
    """Drop metrics lines after ``step`` (logged after the checkpoint a run resumes from); atomic."""
    if not path.exists():
        return
    kept = [
        line
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip() and line.rstrip().endswith("}") and json.loads(line)["step"] <= step
    ]
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(f"{line}\n" for line in kept), encoding="utf-8")
    tmp.replace(path)


def to_device(batch: dict, device: torch.device) -> dict:
    """Move every tensor of a batch (lists of tensors included) to ``device``."""
    moved = {}
    for key, value in batch.items():
        if isinstance(value, torch.Tensor):
            moved[key] = value.to(device)
        elif isinstance(value, list) and value and isinstance(value[0], torch.Tensor):
            moved[key] = [v.to(device) for v in value]
        else:
            moved[key] = value
    return moved


def train(
    config: MirasConfig, out: Path, stop_after: int | None = None, on_step: StepHook | None = None
) -> TrainResult:
    """Train (or resume) into ``out`` until ``config.train.max_steps`` (or ``stop_after``) steps.

    Run it on every process (``accelerate launch``): shared files (config, processor, base
    state, metrics, checkpoints' weights) are written by the main process only; logged losses
    are means over all processes.

    Args:
        config: the whole config; ``train.max_steps`` also sets the LR schedule length.
        out: the training folder (see :mod:`prist_builder.model.checkpoint`); resumes from its
            newest checkpoint when there is one, else starts from ``model.init_from``'s newest
            checkpoint when set (step 1, a fresh optimizer and schedule), else from the bases.
        stop_after: stop after this optimizer step (an interruption; schedule unchanged).
        on_step: called after each optimizer step with ``(step, metrics)``.

    Raises:
        DataError: unreadable data. ConfigError: invalid config (before any step).
        ValueError: ``batch_size`` not a multiple of ``micro_batch x processes``; another
            model in ``out`` or in ``init_from``. FileNotFoundError: ``init_from`` has no checkpoint.
    """
    out = Path(out)
    settings = config.train
    precision = mixed_precision(config)
    trackers = "tensorboard" if importlib.util.find_spec("tensorboard") else None
    accelerator = Accelerator(
        mixed_precision=precision,
        log_with=trackers,
        project_dir=str(out),
        # a text-only batch leaves the mask decoder and alignment unused
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
    )
    accum = settings.accumulation(accelerator.num_processes)
    accelerator.gradient_accumulation_steps = accum  # the config's, whatever `accelerate config` says
    plugin = accelerator.state.deepspeed_plugin
    if plugin is not None:
        for change in configure_deepspeed(plugin.deepspeed_config, settings, accum):
            logger.warning(f"DeepSpeed config overridden by the MIRAS config: {change}", main_process_only=True)
    set_seed(settings.seed)
    sources, ratios = load_sources(config)
    stream = MixedStream(sources, ratios, seed=settings.seed)
    check_same_model(out, config)
    done = checkpoints(out)
    start_from = init_checkpoint(config) if config.model.init_from and not done else None
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        write_config(out, config)
        write_target_kinds(out, target_kinds([n for records in sources for n in records.target_counts()]))
        (out / METRICS_FILE).touch()
    texts = [text for records in sources for text in records.texts()]
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    with accelerator.main_process_first():  # the main process writes the processor and base state
        model = create_model(config, out, texts, dtype=dtype, write=accelerator.is_main_process)
    if start_from is not None:  # before prepare: DeepSpeed copies its fp32 masters from the module
        load_trainable(model, start_from / TRAINABLE_FILE)
    on_cuda = accelerator.device.type == "cuda"
    if config.model.gradient_checkpointing == "on" or (config.model.gradient_checkpointing == "auto" and on_cuda):
        model.checkpointing(True)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=settings.lr, betas=settings.betas, weight_decay=settings.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_decay(settings.warmup_steps, settings.max_steps))
    model, optimizer = accelerator.prepare(model, optimizer)
    accelerator.register_for_checkpointing(scheduler)  # not prepared: it steps once per optimizer step
    skip_model_weights(accelerator)
    raw = accelerator.unwrap_model(model)
    start = checkpoint_step(done[-1]) if done else 0
    if trackers:
        accelerator.init_trackers("miras")
    collator = MirasCollator.for_model(raw)
    micro = settings.micro_batch
    world, rank = accelerator.num_processes, accelerator.process_index
    last = min(settings.max_steps, stop_after or settings.max_steps)
    result = TrainResult(start_step=start + 1, end_step=start)
    result.skipped = {
        source.name: records.skipped for source, records in zip(config.data.sources, sources, strict=True)
    }
    weights = (settings.ce_weight, settings.bce_weight, settings.dice_weight)
    model.train()
    loader = DataLoader(
        MicroBatches(stream, collator, start * accum, (last - start) * accum, micro, world, rank),
        batch_size=None,
        num_workers=settings.num_workers,
    )
    batches = iter(loader)  # draws a seed: before restoring the RNG, so a resumed run matches a straight one
    if done:
        load_checkpoint(done[-1], accelerator, raw)
        if accelerator.is_main_process:
            trim_metrics(out / METRICS_FILE, start)
    for step in range(start + 1, last + 1):
        began = time.perf_counter()
        sums = torch.zeros(4, device=accelerator.device)
        for _ in range(accum):
            batch = to_device(next(batches), accelerator.device)
            with accelerator.accumulate(model):  # syncs and steps on the last micro-batch only
                parts = model(batch, weights).loss
                accelerator.backward(parts.total)  # divided by the accumulation by accelerate
                if accelerator.sync_gradients and settings.max_grad_norm > 0 and plugin is None:
                    accelerator.clip_grad_norm_(params, settings.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            sums += torch.stack([parts.total, parts.ce, parts.bce, parts.dice]).detach().float() / accum
        scheduler.step()
        means = accelerator.reduce(sums, reduction="mean").tolist()
        metrics = {
            "step": step,
            **{k: round(v, 6) for k, v in zip(("loss", "ce", "bce", "dice"), means, strict=True)},
            "lr": scheduler.get_last_lr()[0],
            "samples": step * settings.batch_size,
            "seconds": round(time.perf_counter() - began, 4),
        }
        result.metrics.append(metrics)
        result.end_step = step
        if accelerator.is_main_process and (step % settings.log_every == 0 or step == last):
            with (out / METRICS_FILE).open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(metrics) + "\n")
            if trackers:
                accelerator.log({k: v for k, v in metrics.items() if k != "step"}, step=step)
        if step % settings.save_every == 0 or step == last:
            save_checkpoint(out, step, accelerator, raw, settings.keep_checkpoints)
        if on_step is not None:
            on_step(step, metrics)
    accelerator.end_training()
    return result
