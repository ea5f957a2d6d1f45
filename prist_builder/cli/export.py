"""``prist export``, ``prist push-to-hub`` and ``prist import prist-json``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from prist_builder.cli.console import console, fail

import_app = typer.Typer(help="Read datasets in other formats into a run folder.", no_args_is_help=True)

FileArg = Annotated[
    Path, typer.Argument(help="The authors' released JSON split (e.g. PRIST/test.json).", dir_okay=False)
]
ImagesOpt = Annotated[Path | None, typer.Option("--images", help="Folder of the images, by img_id.", file_okay=False)]
MasksOpt = Annotated[
    Path | None, typer.Option("--masks", help="Folder of <sample_id>.png target masks.", file_okay=False)
]
FormatOpt = Annotated[str, typer.Option("--format", help="hf (dataset folder), llava, lisa or prist-json.")]
ValidationOpt = Annotated[
    float | None,
    typer.Option(
        "--validation", min=0, help="Validation size: a fraction (<1) or a sample count. Default: the paper's 500/8320."
    ),
]
TestOpt = Annotated[
    float | None,
    typer.Option("--test", min=0, help="Test size: a fraction (<1) or a sample count. Default: the paper's 508/8320."),
]
OneSplitOpt = Annotated[
    str | None, typer.Option("--one-split", help="Put every sample into this split (train, validation or test).")
]
KeepOpt = Annotated[
    bool, typer.Option("--keep-unfinished", help="hf: also export samples without a final mask or an image.")
]
ShardOpt = Annotated[int, typer.Option("--max-shard-mb", min=1, help="About the most MiB per parquet shard.")]
RowsOpt = Annotated[
    str,
    typer.Option(
        "--rows", help="hf: 'sample' (one row per sample) or 'image' (one row per image, samples nested: images once)."
    ),
]
LicenseOpt = Annotated[str, typer.Option("--license", help="License id for the card (e.g. cc-by-4.0).")]
TokenOpt = Annotated[
    str | None, typer.Option("--token", help="Hub token (else HF_TOKEN, else the stored login).", show_default=False)
]
RevisionOpt = Annotated[str | None, typer.Option("--revision", help="Branch to push to (created if missing).")]


def _progress_off() -> None:
    import datasets
    from huggingface_hub.utils import disable_progress_bars

    datasets.disable_progress_bars()
    disable_progress_bars()


@import_app.command("prist-json")
def import_prist_json_cmd(
    file: FileArg,
    run: Annotated[Path, typer.Option("--run", help="Run folder to write.")],
    images: ImagesOpt = None,
    masks: MasksOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Import the authors' released format; samples whose image is absent are kept and counted."""
    from prist_builder.interop.prist_json import ImportError_, import_prist_json
    from prist_builder.pipeline.store import RunLockedError

    if not file.is_file():
        raise fail(f"{file}: no such file", 2) from None
    try:
        summary = import_prist_json(file, run, images=images, masks=masks)
    except (ImportError_, RunLockedError) as exc:
        raise fail(str(exc)) from None
    if as_json:
        typer.echo(json.dumps(summary.as_dict(), indent=2))
        return
    console.print(f"imported {summary.samples} samples over {summary.images} images into {run}", highlight=False)
    console.print(f"dialogue forms: {summary.forms}", highlight=False)
    if summary.images_absent:
        console.print(
            f"images not found: {summary.images_absent} ({summary.samples_without_image} samples kept"
            " without an image)",
            highlight=False,
        )
    if summary.masks:
        console.print(f"masks: {summary.masks}", highlight=False)
    for index, reason in {**summary.rejected, **summary.warnings}.items():
        console.print(f"entry [{index}]: {reason}", highlight=False, markup=False)


def register_export(app: typer.Typer) -> None:
    """Add ``export``, ``push-to-hub`` and the ``import`` group to the app."""
    app.add_typer(import_app, name="import")

    @app.command("export")
    def export(
        run: Annotated[Path, typer.Argument(help="Run folder.")],
        out: Annotated[Path, typer.Option("--out", help="Folder to write (an earlier export there is replaced).")],
        fmt: FormatOpt = "hf",
        seed: Annotated[int, typer.Option("--seed", help="Seed of the split by image.")] = 0,
        validation: ValidationOpt = None,
        test: TestOpt = None,
        one_split: OneSplitOpt = None,
        keep_unfinished: KeepOpt = False,
        max_shard_mb: ShardOpt = 256,
        license: LicenseOpt = "other",
        rows: RowsOpt = "sample",
        as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    ) -> None:
        """Export a run as a Hugging Face dataset folder, or in the LLaVA, LISA or authors' layout."""
        from prist_builder.export.formats import export_as
        from prist_builder.export.splits import SplitSpec
        from prist_builder.export.writer import ExportError, dump, format_summary

        _progress_off()
        try:
            defaults = SplitSpec()
            spec = SplitSpec(
                validation=defaults.validation if validation is None else validation,
                test=defaults.test if test is None else test,
            )
            options = {"max_shard_bytes": max_shard_mb * 1024 * 1024, "license": license} if fmt == "hf" else {}
            if rows != "sample":
                if fmt != "hf":
                    raise ValueError(f"--rows {rows} applies to --format hf only")
                options["rows"] = rows
            summary = export_as(
                fmt, run, out, spec=spec, seed=seed, keep_unfinished=keep_unfinished, one_split=one_split, **options
            )
        except (ValueError, FileNotFoundError, ExportError) as exc:
            raise fail(str(exc), 2 if isinstance(exc, ValueError) else 1) from None
        if as_json:
            typer.echo(dump(summary))
        else:
            console.print(f"exported {run} -> {out} ({fmt})", highlight=False)
            console.print(format_summary(summary), highlight=False, markup=False)

    @app.command("push-to-hub")
    def push_to_hub(
        folder: Annotated[Path, typer.Argument(help="An export folder (prist export --format hf).", file_okay=False)],
        repo_id: Annotated[str, typer.Argument(help="Dataset repo, e.g. user/prist.")],
        private: Annotated[bool, typer.Option("--private", help="Create the repo private.")] = False,
        token: TokenOpt = None,
        revision: RevisionOpt = None,
    ) -> None:
        """Upload an export folder (splits, card) to the Hugging Face Hub."""
        from prist_builder.export.hub import HubError, push_export

        _progress_off()
        try:
            result = push_export(folder, repo_id, token=token, private=private, revision=revision)
        except HubError as exc:
            raise fail(str(exc), exc.code) from None
        console.print(
            f"pushed {len(result.files)} files to {result.repo_id}@{result.revision}: {result.commit_url}",
            highlight=False,
        )
