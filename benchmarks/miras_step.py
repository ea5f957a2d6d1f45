"""MIRAS training-step speed: seconds/step, samples/s, peak memory and model FLOPs utilisation.

CPU (the default of ``make bench``): the tiny config, batch 2::

    python benchmarks/miras_step.py --config tiny --batch-sizes 2

CUDA: the stage-2 settings at the paper's shapes, every part built with random weights from
``model/configs/stage2.yaml`` ``shapes`` (Vicuna-7B + CLIP-L/14-336, ConvNeXt-L, SAM ViT-H),
frozen parts in bf16, trainable parts in fp32 under bf16 autocast, SDPA attention, gradient
checkpointing on the LLM, LoRA r=8, AdamW::

    python benchmarks/miras_step.py --config stage2 --batch-sizes 1,2,4,8 --steps 5 --predict

``--predict`` adds the peak memory of ``prist predict`` (every weight in bf16 on CUDA) on one
4-turn dialogue.

Inputs match the paper: a 672x672 image (LLaVA-NeXT AnyRes, 5 patches of 336 px, 2928 image
tokens), the ConvNeXt input at 768 px, SAM at 1024 px, a 4-turn dialogue of about 477 text
tokens (PRIST's mean) ending in ``[OBJ] ... [SEG]``, one target mask.

Model FLOPs are counted with ``torch.utils.flop_counter`` on one sample with gradient
checkpointing off (so recomputation is not counted) and scaled by the batch size; MFU =
model FLOPs per step / (seconds per step x the GPU's dense bf16 peak). The LLM's weights are
frozen (LoRA), so its backward pass computes input gradients only: the count is about 4 N T
for the LLM, not the 6 N T of full fine-tuning, and MFU is not inflated by FLOPs never done.

Smoke test of the real widths on a CPU (every tower cut to one block)::

    python benchmarks/miras_step.py --config stage2 --depth 1 --batch-sizes 1 --steps 1 --dtype fp32 The baseline of the
ratio column is the same model with the dual encoder and region alignment off (LISA-like),
measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

PEAK_BF16_TFLOPS = {"H200": 989.4, "H100": 989.4, "A100": 312.0, "L40S": 362.1, "A6000": 154.8}
"""Dense (no sparsity) bf16 tensor-core peak by GPU name fragment, TFLOP/s (vendor data sheets)."""
TITLE = "MIRAS training step (tiny config on CPU) vs a LISA-like baseline"
IMAGE_SIDE = 672
"""Pixels: a 2x2 AnyRes grid of 336 px patches plus the base patch."""
TEXT_TOKENS = 477
"""Mean text tokens of a PRIST sample (paper appendix B.3)."""
TURNS = 4
"""Mean turns of a PRIST dialogue."""
WORDS = ("the", "red", "cup", "on", "table", "near", "window", "what", "is", "left", "of", "a", "small", "book", "lamp")


def synthetic_record(seed: int = 0):
    """One PRIST-shaped record (random pixels, random words, one rectangular target)."""
    from prist_builder.model.records import Record, Target

    rng = random.Random(seed)
    image = Image.fromarray(np.random.default_rng(seed).integers(0, 255, (IMAGE_SIDE, IMAGE_SIDE, 3), dtype=np.uint8))
    per_message = TEXT_TOKENS // (2 * TURNS)
    turns = []
    for turn in range(TURNS):
        turns.append(("user", " ".join(rng.choice(WORDS) for _ in range(per_message)) + "?"))
        answer = " ".join(rng.choice(WORDS) for _ in range(per_message))
        turns.append(("assistant", answer + (" [OBJ]the red cup[SEG]." if turn == TURNS - 1 else ".")))
    mask = np.zeros((IMAGE_SIDE, IMAGE_SIDE), dtype=bool)
    mask[100:400, 200:500] = True
    return Record(f"bench-{seed}", image, turns, [Target("the red cup", mask)])


def shallow(shapes, depth: int) -> None:
    """Cut every tower to ``depth`` blocks, widths unchanged (a quick CPU smoke test of the real widths)."""
    shapes.llava["text_config"]["num_hidden_layers"] = depth
    shapes.llava["vision_config"]["num_hidden_layers"] = max(depth, 2)
    shapes.sam["vision_config"].update(num_hidden_layers=depth, global_attn_indexes=[depth - 1])
    shapes.convnext["depths"] = [1] * len(shapes.convnext.get("depths", [3, 3, 9, 3]))


def build(config_name: str, device, dual: bool, align: bool, bf16: bool, depth: int | None = None):
    """The model (random weights, shapes from the config) and its collator."""
    import torch

    from prist_builder.model.build import build_parts
    from prist_builder.model.collator import MirasCollator
    from prist_builder.model.config import Weights, load_config
    from prist_builder.model.loading import keep_trainable_fp32
    from prist_builder.model.miras import Miras

    config = load_config(config_name)
    config.model.weights = Weights()
    config.model.dual_encoder, config.model.region_alignment = dual, align
    if depth:
        shallow(config.model.shapes, depth)
    dtype = torch.bfloat16 if bf16 else torch.float32
    texts = [content for _, content in synthetic_record().turns]
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with device:
            torch.manual_seed(0)
            model = Miras(build_parts(config.model, texts, dtype=dtype), config.model)
    finally:
        torch.set_default_dtype(previous)
    keep_trainable_fp32(model)
    model.to(device).train()
    collator = MirasCollator(
        model.processor, model.head.side, config.model.high_res if dual else 0, config.model.max_length
    )
    return model, collator, config


def _step(model, batch, optimizer, device, bf16: bool) -> None:
    import torch

    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        loss = model(batch).loss.total
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def model_flops_per_sample(model, collator, device, bf16: bool) -> float:
    """Forward + backward FLOPs of one sample, gradient checkpointing off."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from prist_builder.model.train import to_device

    lm = model.base.model.language_model
    was = any(getattr(m, "gradient_checkpointing", False) is True for m in lm.modules())
    if was:
        model.checkpointing(False)
    batch = to_device(collator([synthetic_record(1)]), device)
    counter = FlopCounterMode(display=False)
    with counter, torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        model(batch).loss.total.backward()
    model.zero_grad(set_to_none=True)
    if was:
        model.checkpointing(True)
    return float(counter.get_total_flops())


def peak_tflops(device, override: float | None) -> float | None:
    """Dense bf16 peak of the device (``None`` on CPU unless given)."""
    import torch

    if override:
        return override
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)


def measure(
    config_name: str,
    device,
    batch_sizes: list[int],
    steps: int,
    dual: bool,
    align: bool,
    peak: float | None,
    bf16: bool,
    depth: int | None = None,
    checkpointing: bool | None = None,
) -> list[dict]:
    """One row per batch size: timing, throughput, memory and MFU of a full optimizer step.

    ``checkpointing``: activation checkpointing of the LLM; ``None`` = on for CUDA only (the
    training config's ``gradient_checkpointing: auto``)."""
    import torch

    from prist_builder.model.train import to_device

    model, collator, config = build(config_name, device, dual, align, bf16, depth)
    if checkpointing if checkpointing is not None else device.type == "cuda":
        model.checkpointing(True)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.train.lr, betas=config.train.betas)
    flops = model_flops_per_sample(model, collator, device, bf16)
    rows = []
    for size in batch_sizes:
        batch = to_device(collator([synthetic_record(i) for i in range(size)]), device)
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        try:
            _step(model, batch, optimizer, device, bf16)  # warm-up (allocations, kernels)
            _sync(device)
            began = time.perf_counter()
            for _ in range(steps):
                _step(model, batch, optimizer, device, bf16)
            _sync(device)
        except torch.cuda.OutOfMemoryError:
            optimizer.zero_grad(set_to_none=True)
            rows.append({"batch": size, "error": "out of memory"})
            break
        seconds = (time.perf_counter() - began) / steps
        if device.type == "cuda":
            memory = torch.cuda.max_memory_allocated(device) / 2**30
        else:
            memory = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        achieved = flops * size / seconds / 1e12
        rows.append(
            {
                "batch": size,
                "tokens": int(batch["input_ids"].shape[1]),
                "s_per_step": seconds,
                "samples_per_s": size / seconds,
                "peak_gib": memory,
                "model_tflop_per_step": flops * size / 1e12,
                "tflops": achieved,
                "mfu": achieved / peak if peak else None,
            }
        )
    del model, optimizer
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return rows


def measure_predict(config_name: str, device, bf16: bool, depth: int | None = None, new_tokens: int = 32) -> dict:
    """Peak memory and seconds of ``Predictor.respond`` on one 4-turn PRIST-shaped dialogue.

    Every weight in bf16 when ``bf16`` (``prist predict``'s CUDA default), else fp32; greedy
    decoding of ``new_tokens`` tokens per turn (random weights rarely stop early).
    """
    import torch

    from prist_builder.model.predict import Predictor, peak_memory_gib, reset_peak_memory

    model, _, _ = build(config_name, device, True, True, bf16, depth)
    record = synthetic_record(2)
    users = [content for role, content in record.turns if role == "user"]
    if device.type == "cuda":
        torch.cuda.empty_cache()
    reset_peak_memory(device)
    predictor = Predictor(model, max_new_tokens=new_tokens, dtype="bf16" if bf16 else "fp32")
    began = time.perf_counter()
    predictor.respond(record.image, users)
    _sync(device)
    seconds = time.perf_counter() - began
    peak, what = peak_memory_gib(device)
    del model, predictor
    return {"dtype": "bf16" if bf16 else "fp32", "turns": len(users), "new tokens/turn": new_tokens,
            "seconds": round(seconds, 2), "peak GiB": round(peak, 2), "measured": what}  # fmt: skip


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def compare(
    config_name: str,
    device,
    batch_sizes: list[int],
    steps: int,
    peak: float | None,
    bf16: bool,
    depth: int | None = None,
    checkpointing: bool | None = None,
    baseline: bool = True,
) -> list[dict]:
    """MIRAS vs the LISA-like baseline (dual encoder and alignment off), rows for the table
    (MIRAS alone when ``baseline`` is false)."""
    miras = measure(config_name, device, batch_sizes, steps, True, True, peak, bf16, depth, checkpointing)
    base = (
        {
            r["batch"]: r
            for r in measure(config_name, device, batch_sizes, steps, False, False, peak, bf16, depth, checkpointing)
        }
        if baseline
        else {}
    )
    rows = []
    for row in miras:
        ref = base.get(row["batch"], {})
        if "error" in row:
            rows.append({"variant": "MIRAS", "batch": str(row["batch"]), "s/step": row["error"]})
            continue
        for name, r in (("MIRAS", row), ("baseline", ref)):
            if not r or "error" in r:
                continue
            rows.append(
                {
                    "variant": name,
                    "batch": str(r["batch"]),
                    "tokens": str(r["tokens"]),
                    "s/step": _fmt(r["s_per_step"]),
                    "samples/s": _fmt(r["samples_per_s"], 2),
                    "peak GiB": _fmt(r["peak_gib"], 1),
                    "TFLOP/step": f"{r['model_tflop_per_step']:.3g}",
                    "TFLOP/s": f"{r['tflops']:.3g}",
                    "MFU": _fmt(r["mfu"]),
                    "ratio vs baseline": _fmt(r["s_per_step"] / ref["s_per_step"], 2)
                    if ref and "error" not in ref
                    else "-",
                }
            )
    return rows


def run() -> list[dict]:
    """``make bench`` entry: the tiny config on CPU, batch 2, 3 timed steps."""
    try:
        import torch
    except ImportError:
        return [{"status": "skipped: install the model extra (torch, transformers, peft, accelerate)"}]

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return compare("tiny", torch.device("cpu"), [2], 3, None, bf16=False)
    finally:
        torch.set_num_threads(threads)


def main() -> None:
    """Command line: see the module docstring."""
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="tiny", help="tiny, stage2, or a config file (its shapes are used)")
    parser.add_argument("--batch-sizes", default="2", help="comma-separated micro-batch sizes")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per batch size (after one warm-up)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--peak-tflops", type=float, default=None, help="dense bf16 peak, TFLOP/s")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    parser.add_argument("--dtype", choices=["auto", "bf16", "fp32"], default="auto", help="auto: bf16 on CUDA")
    parser.add_argument("--depth", type=int, default=None, help="cut every tower to N blocks (smoke test)")
    parser.add_argument("--predict", action="store_true", help="also: peak memory of prist predict on one dialogue")
    parser.add_argument(
        "--checkpointing",
        choices=["auto", "on", "off"],
        default="auto",
        help="LLM activation checkpointing (auto: on CUDA)",
    )
    parser.add_argument("--no-baseline", action="store_true", help="MIRAS rows only (no LISA-like baseline)")
    args = parser.parse_args()
    device = torch.device(args.device)
    peak = peak_tflops(device, args.peak_tflops)
    sizes = [int(s) for s in args.batch_sizes.split(",")]
    bf16 = args.dtype == "bf16" or (args.dtype == "auto" and device.type == "cuda")
    checkpointing = None if args.checkpointing == "auto" else args.checkpointing == "on"
    rows = compare(args.config, device, sizes, args.steps, peak, bf16, args.depth, checkpointing, not args.no_baseline)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"device: {name}; peak bf16: {peak or '-'} TFLOP/s; config: {args.config}", file=sys.stderr)
    columns = list(rows[0])
    print(" | ".join(columns))
    for row in rows:
        print(" | ".join(row.get(c, "") for c in columns))
    if args.predict:
        predict = measure_predict(args.config, device, bf16, args.depth)
        print("predict: " + ", ".join(f"{k} {v}" for k, v in predict.items()))
        rows.append({"predict": predict})
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
