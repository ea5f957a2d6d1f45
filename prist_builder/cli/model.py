"""``prist train`` and ``prist predict``: the MIRAS model (needs the ``model`` extra)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from prist_builder.cli.console import console, errors, fail

MISSING_EXTRA = "{command} needs the model extra: pip install 'prist[model]' (torch, transformers, peft, accelerate)"


def _require_torch(command: str) -> None:
    try:
        import accelerate  # noqa: F401
        import peft  # noqa: F401
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:
        raise fail(escape(MISSING_EXTRA.format(command=command) + f" ({exc.name} is missing)")) from exc


def register_model(app: typer.Typer) -> None:
    """Add ``train`` and ``predict`` to the app."""

    @app.command("train")
    def train_command(
        config: Annotated[Path, typer.Option("--config", help="Config file (.yaml/.toml), or tiny/stage1/stage2.")],
        out: Annotated[Path, typer.Option("--out", help="Training folder (resumes from its last checkpoint).")],
        data: Annotated[
            Path | None, typer.Option("--data", help="Export folder or run folder; replaces the first source.")
        ] = None,
        max_steps: Annotated[
            int | None, typer.Option("--max-steps", min=1, help="Optimizer steps (also the LR schedule length).")
        ] = None,
        init_from: Annotated[
            Path | None,
            typer.Option(
                "--init-from",
                help="A prist train --out folder whose newest checkpoint starts this new run (Stage 2 from Stage 1).",
            ),
        ] = None,
        stop_after: Annotated[
            int | None,
            typer.Option("--stop-after", min=1, help="Stop after this step; same schedule (a rerun resumes)."),
        ] = None,
    ) -> None:
        """Train MIRAS (paper section 4) on a prist export or run folder, mixed with the config's other sources."""
        _require_torch("prist train")
        from prist_builder.model.config import ConfigError, Source, load_config
        from prist_builder.model.records import DataError
        from prist_builder.model.train import train

        try:
            cfg = load_config(config)
        except ConfigError as exc:
            raise fail(escape(str(exc))) from exc
        if data is not None:
            if cfg.data.sources:
                cfg.data.sources[0].path = str(data)
            else:
                cfg.data.sources.append(Source(name="prist", path=str(data)))
        if max_steps is not None:
            cfg.train.max_steps = max_steps
        if init_from is not None:
            cfg.model.init_from = str(init_from)
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        columns = (
            TextColumn("[bold]train"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]} ce {task.fields[ce]} bce {task.fields[bce]} dice {task.fields[dice]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        main = os.environ.get("RANK", "0") == "0"  # under accelerate launch / torchrun: the first process reports
        with Progress(*columns, console=errors, disable=not main) as progress:
            task = progress.add_task("train", total=cfg.train.max_steps, loss="-", ce="-", bce="-", dice="-")

            def on_step(step: int, metrics: dict) -> None:
                progress.update(task, completed=step, **{k: f"{metrics[k]:.4f}" for k in ("loss", "ce", "bce", "dice")})

            try:
                result = train(cfg, out, stop_after=stop_after, on_step=on_step)
            except (DataError, FileNotFoundError, ValueError) as exc:
                raise fail(escape(str(exc))) from exc
        if not main:
            return
        for name, skipped in result.skipped.items():
            if skipped:
                console.print(
                    f"source {name}: left out {len(skipped)} samples, e.g. {escape(skipped[0][1])}", highlight=False
                )
        if result.metrics:
            first, last = result.metrics[0], result.metrics[-1]
            console.print(
                f"steps {result.start_step}..{result.end_step}: loss {first['loss']:.4f} -> {last['loss']:.4f} "
                f"(ce {last['ce']:.4f}, bce {last['bce']:.4f}, dice {last['dice']:.4f})",
                highlight=False,
            )
        else:
            console.print(f"nothing to do: {out} already holds step {result.end_step}", highlight=False)
        console.print(f"model: [bold]{out}[/] (metrics.jsonl, checkpoints/)", highlight=False)

    @app.command("predict")
    def predict_command(
        model: Annotated[Path, typer.Option("--model", help="The folder prist train --out wrote.")],
        data: Annotated[Path, typer.Option("--data", help="Export folder or run folder.")],
        out: Annotated[Path, typer.Option("--out", help="Predictions JSONL (appends; skips samples already there).")],
        split: Annotated[str, typer.Option("--split", help="Split of an export folder.")] = "test",
        limit: Annotated[int | None, typer.Option("--limit", min=1, help="Predict at most N samples.")] = None,
        device: Annotated[
            str, typer.Option("--device", help="cpu, cuda, cuda:1, ... (default: cuda if available).")
        ] = "",
        dtype: Annotated[
            str, typer.Option("--dtype", help="bf16, fp16 or fp32: every weight (default: bf16 on CUDA, fp32 on CPU).")
        ] = "",
        batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Dialogues answered together.")] = 1,
        force_seg: Annotated[
            bool | None,
            typer.Option(
                "--force-seg/--no-force-seg",
                help="Decode a mask for a final answer without [SEG] (default: only when the model's "
                "training data had no empty-target samples).",
            ),
        ] = None,
    ) -> None:
        """Replay each dialogue's user turns with a trained MIRAS; write one prediction line per sample
        (one mask per [SEG] of the last answer, their union, none without a [SEG])."""
        _require_torch("prist predict")
        import torch

        from prist_builder.model.loading import load_trained
        from prist_builder.model.predict import (
            DTYPES,
            Predictor,
            default_dtype,
            default_force_seg,
            peak_memory_gib,
            predict_file,
            reset_peak_memory,
        )
        from prist_builder.model.records import DataError, read_source

        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = dtype or default_dtype(device)
        if dtype not in DTYPES:
            raise fail(escape(f"--dtype {dtype}: use one of {', '.join(DTYPES)}"), 2)
        reset_peak_memory(torch.device(device))
        try:
            source = read_source(data, split=split)
            trained, cfg, step = load_trained(model, device, DTYPES[dtype])
        except (DataError, FileNotFoundError) as exc:
            raise fail(escape(str(exc))) from exc
        force = default_force_seg(model) if force_seg is None else force_seg
        predictor = Predictor(
            trained, cfg.model.high_res, cfg.model.max_new_tokens, force, dtype=dtype, batch_size=batch_size
        )
        total = min(len(source), limit or len(source))
        records = (source[i] for i in range(total))
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        columns = (
            TextColumn("[bold]predict"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=errors) as progress:
            task = progress.add_task("predict", total=total)
            written = predict_file(predictor, records, out, on_done=lambda _: progress.advance(task))
        console.print(f"predictions: [bold]{out}[/] ({written} new lines, model step {step})", highlight=False)
        peak, what = peak_memory_gib(torch.device(device))
        console.print(f"dtype {dtype}, batch {batch_size}: peak memory {peak:.2f} GiB ({what})", highlight=False)
