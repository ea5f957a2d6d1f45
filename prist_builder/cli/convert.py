"""``prist convert FORMAT SRC --out DIR``: public Stage-1 datasets into the training format."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from prist_builder.cli.console import console, errors, fail

FORMAT_NAMES = ("cocostuff", "ade20k", "refcoco", "reasonseg", "paco", "llava-instruct")
"""Kept in step with ``prist_builder.model.data.FORMATS`` (a test checks it)."""


def register_convert(app: typer.Typer) -> None:
    """Add ``convert`` to the app."""

    @app.command("convert")
    def convert_command(
        fmt: Annotated[str, typer.Argument(metavar="FORMAT", help=f"One of: {', '.join(FORMAT_NAMES)}.")],
        src: Annotated[Path, typer.Argument(help="The dataset in its own layout (folder or annotation file).")],
        out: Annotated[Path, typer.Option("--out", help="Export-style folder to write (replaced if it is one).")],
        images: Annotated[
            Path | None, typer.Option("--images", help="Folder the image file names are relative to.", file_okay=False)
        ] = None,
        splits: Annotated[
            str | None, typer.Option("--splits", help="Comma-separated splits to convert (default: all).")
        ] = None,
        classes_per_sample: Annotated[
            int, typer.Option("--classes-per-sample", min=1, help="Semantic/part seg: classes asked per sample.")
        ] = 3,
        split_by: Annotated[
            str | None, typer.Option("--split-by", help="refcoco: partition of the refs file (unc, umd, google).")
        ] = None,
        name: Annotated[
            str | None, typer.Option("--name", help="Dataset name in sample ids (default: folder).")
        ] = None,
        seed: Annotated[int, typer.Option("--seed", help="Seed of class grouping and question wording.")] = 0,
        limit: Annotated[int | None, typer.Option("--limit", min=1, help="Stop after N samples.")] = None,
        max_shard_mb: Annotated[int, typer.Option("--max-shard-mb", min=1, help="About the most MiB per shard.")] = 256,
    ) -> None:
        """Convert COCO-Stuff/panoptic, ADE20K, RefCOCO/+/g, ReasonSeg, PACO-LVIS or LLaVA-Instruct into
        an export-style folder that prist train --data and prist evaluate --data read (paper appendix C.2)."""
        if fmt not in FORMAT_NAMES:
            raise fail(f"unknown FORMAT {escape(fmt)!r}; choose one of {', '.join(FORMAT_NAMES)}")
        if not src.exists():
            raise fail(f"{escape(str(src))}: no such file or folder")
        try:
            import datasets
        except ImportError as exc:
            raise fail("prist convert needs the export extra: pip install 'prist[export]'") from exc
        from prist_builder.export.converted import ConvertedWriter
        from prist_builder.export.writer import ExportError
        from prist_builder.model.data import converter
        from prist_builder.model.data.rows import ConvertError, Options, Reject

        datasets.disable_progress_bars()
        options = Options(
            images=images,
            splits=[s.strip() for s in splits.split(",") if s.strip()] if splits else None,
            classes_per_sample=classes_per_sample,
            seed=seed,
            split_by=split_by,
            name=name,
            limit=limit,
        )
        try:
            writer = ConvertedWriter(out, max_shard_mb * 1024 * 1024)
        except ExportError as exc:
            raise fail(escape(str(exc))) from exc
        first_reject = None
        try:
            with errors.status(f"converting {escape(str(src))}") as status:
                for count, item in enumerate(converter(fmt)(src, options), start=1):
                    if isinstance(item, Reject):
                        writer.reject(item.as_dict())
                        first_reject = first_reject or item
                    else:
                        writer.add(*item)
                    if count % 100 == 0:
                        status.update(f"converting {escape(str(src))}: {count} records")
        except (ConvertError, KeyboardInterrupt) as exc:
            writer.abort()
            if isinstance(exc, KeyboardInterrupt):
                raise
            raise fail(escape(str(exc))) from exc
        except BaseException:
            writer.abort()
            raise
        summary = writer.close(
            {
                "format": fmt,
                "source": str(src.resolve()),
                "dataset": name or src.name,
                "seed": seed,
                "classes_per_sample": classes_per_sample,
                "split_by": split_by,
            }  # fmt: skip
        )
        for split, count in summary.sizes.items():
            console.print(f"{split}: {count} samples", highlight=False)
        if summary.rejected:
            example = f"{first_reject.file}: {first_reject.field}: {first_reject.reason}" if first_reject else ""
            console.print(
                f"left out {summary.rejected} records (rejects.jsonl), e.g. {escape(example)}", highlight=False
            )
        console.print(f"wrote [bold]{escape(str(out))}[/] (export.json, data/, rejects.jsonl)", highlight=False)
