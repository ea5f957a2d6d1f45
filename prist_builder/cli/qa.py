"""``prist qa agreement``: inter-annotator agreement per group (paper Table 1) and the adjudication queue."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from prist_builder.annotation.defaults import IOU_THRESHOLD, KAPPA_THRESHOLD, MATCH_MODES
from prist_builder.cli.console import console, errors, fail

if TYPE_CHECKING:
    from prist_builder.annotation.agreement import PairScore
    from prist_builder.annotation.report import ScoredPair, TargetRow
    from prist_builder.annotation.store import Pair
    from prist_builder.samples import Sample

# The annotation stack (numpy, scipy, Pillow, pycocotools) is imported inside the commands,
# so that ``prist --help`` and the other commands start without it.

qa_app = typer.Typer(help="Quality checks of annotations.", no_args_is_help=True)
MAX_LINES_SHOWN = 50


def _print_table(summaries, title: str) -> None:  # noqa: ANN001
    from prist_builder.annotation.report import table1

    rows = table1(summaries)
    table = Table(title=title, title_justify="left")
    for column in rows[0]:
        table.add_column(column, justify="right")
    for row in rows[1:]:
        table.add_row(*row)
    console.print(table)


def _target_rows(pair: Pair, sample: Sample | None, iou_min: float, kappa_min: float) -> list[TargetRow]:
    """``per_target.csv`` rows of one scored pair: each target (answer order) and the union for a
    multi-target sample, ``none`` for an empty-target one, ``1`` for a single-target one."""
    from prist_builder.annotation.report import TargetRow
    from prist_builder.annotation.store import below

    kind = sample.kind if sample is not None else "single"
    focus = sample.dialogue.focus if sample is not None else ""
    names = (pair.sample_id, pair.group, pair.a.annotator, pair.b.annotator if pair.b else "")
    scores: list[tuple[str, str, PairScore]] = []
    if kind == "multi" and sample is not None and pair.targets is not None:
        paired = zip(sample.dialogue.targets, pair.targets, strict=False)
        scores += [(str(k), t.focus, sc) for k, (t, sc) in enumerate(paired, start=1)]
    if pair.score is not None:
        scores.append(({"multi": "union", "empty": "none"}.get(kind, "1"), focus, pair.score))
    return [TargetRow(*names, kind, t, f, sc, below(sc, iou_min, kappa_min)) for t, f, sc in scores]


def _run_form(run: Path, out: Path, iou_min: float, kappa_min: float) -> tuple[list[ScoredPair], dict, list[TargetRow]]:
    from prist_builder.annotation.adjudication import write_queue
    from prist_builder.annotation.assignment import read_assignments
    from prist_builder.annotation.masks import decode
    from prist_builder.annotation.report import ScoredPair
    from prist_builder.annotation.store import pairs
    from prist_builder.samples import iter_samples
    from prist_builder.sources import InputRejected, read_image

    try:
        samples = {s.sample_id: s for s in iter_samples(run)}
    except (FileNotFoundError, ValueError) as exc:
        raise fail(str(exc).splitlines()[0]) from None
    scored: list[ScoredPair] = []
    targets: list[TargetRow] = []
    flagged = []
    incomplete = []
    for pair in pairs(run, read_assignments(run)):
        if pair.b is None or pair.score is None:
            incomplete.append(pair.sample_id)
            continue
        is_flagged = pair.below(iou_min, kappa_min)
        scored.append(
            ScoredPair(pair.sample_id, pair.group, pair.a.annotator, pair.b.annotator, pair.score, is_flagged)
        )
        targets += _target_rows(pair, samples.get(pair.sample_id), iou_min, kappa_min)
        if is_flagged and pair.sample_id in samples:
            per_a = [decode(m) for m in pair.a.masks] if pair.targets is not None and pair.a.masks else None
            per_b = [decode(m) for m in pair.b.masks] if pair.targets is not None and pair.b.masks else None
            flagged.append(
                (
                    samples[pair.sample_id],
                    pair.a.annotator,
                    per_a or [decode(pair.a.mask)],
                    pair.b.annotator,
                    per_b or [decode(pair.b.mask)],
                )
            )
    try:
        queued = write_queue(out, flagged, read_image)
    except InputRejected as exc:
        raise fail(str(exc)) from None
    return scored, {"source": str(run), "incomplete": incomplete, "queued": queued, "errors": []}, targets


def _folder_form(
    a: Path, b: Path, groups: Path | None, match: str, out: Path, iou_min: float, kappa_min: float
) -> tuple[list[ScoredPair], dict]:
    from prist_builder.annotation.adjudication import overlay, write_folder_queue
    from prist_builder.annotation.folders import compare_folders, read_groups
    from prist_builder.annotation.labelme import read_labelme
    from prist_builder.annotation.regions import AnnotationError
    from prist_builder.sources import InputRejected, decode_image

    try:
        mapping = read_groups(groups) if groups is not None else {}
        result = compare_folders(a, b, mapping, match, iou_min, kappa_min, names=(a.name, b.name))
    except (AnnotationError, ValueError, NotADirectoryError) as exc:
        raise fail(str(exc)) from None
    overlays = out / "overlays"
    overlays.mkdir(parents=True, exist_ok=True)
    images: dict[Path, tuple[str, bytes]] = {}
    queued = []
    for unit in result.units:
        if not unit.pair.flagged:
            continue
        try:
            if unit.file_a not in images:
                doc = read_labelme(unit.file_a)
                name = Path(doc.image_path).name if doc.image_path else f"{unit.file_a.stem}.png"
                data = doc.image_data or (unit.file_a.parent / (doc.image_path or "")).read_bytes()
                images[unit.file_a] = (name, data)
            photo = decode_image(images[unit.file_a][1], str(unit.file_a))[0]
        except (AnnotationError, InputRejected, OSError) as exc:
            result.errors.append(f"{unit.file_a}: no overlay or adjudication file ({str(exc).splitlines()[0]})")
            continue
        name = unit.pair.sample_id.replace(":", "__").replace("/", "_").replace("#", "_")
        overlay(photo, unit.mask_a, unit.mask_b).save(overlays / f"{name}.png")
        label = unit.pair.sample_id.split(":", 1)[1]
        queued.append((unit.file_a, label, unit.mask_a, unit.mask_b))
    count = write_folder_queue(out, queued, (a.name, b.name), images.__getitem__)
    return [u.pair for u in result.units], {
        "source": {"a": str(a), "b": str(b)},
        "match": match,
        "queued": count,
        "errors": result.errors,
    }


@qa_app.command("agreement")
def agreement(
    run: Annotated[Path | None, typer.Argument(help="Run folder with imported masks.", file_okay=False)] = None,
    out: Annotated[Path, typer.Option("--out", help="Folder for every output.", file_okay=False)] = Path("qa"),
    a: Annotated[Path | None, typer.Option("--a", help="Annotator A's Labelme folder (folder form).")] = None,
    b: Annotated[Path | None, typer.Option("--b", help="Annotator B's Labelme folder (folder form).")] = None,
    groups: Annotated[Path | None, typer.Option("--groups", help="CSV: sample_id (file stem), group.")] = None,
    match: Annotated[str, typer.Option("--match", help=f"Folder form: {' or '.join(MATCH_MODES)}.")] = "label",
    iou_min: Annotated[float, typer.Option("--iou-min", help="Pass mark of mean IoU per group.")] = IOU_THRESHOLD,
    kappa_min: Annotated[
        float, typer.Option("--kappa-min", help="Pass mark of mean kappa per group.")
    ] = KAPPA_THRESHOLD,
    fail_under: Annotated[bool, typer.Option("--fail-under", help="Exit 1 when a group misses a threshold.")] = False,
) -> None:
    """IoU and Cohen's kappa per sample, group and overall; flagged samples go to an adjudication queue.

    Exits 0 once the scores are computed, thresholds met or not (1 with --fail-under on a miss).
    """
    from prist_builder.annotation.agreement import summarise
    from prist_builder.annotation.report import write_report

    if (run is None) == (a is None or b is None) or (a is None) != (b is None):
        raise fail("give either RUN or both --a DIR and --b DIR")
    out.mkdir(parents=True, exist_ok=True)
    targets: list[TargetRow] = []
    if run is not None:
        scored, extra, targets = _run_form(run, out, iou_min, kappa_min)
    else:
        scored, extra = _folder_form(a, b, groups, match, out, iou_min, kappa_min)  # type: ignore[arg-type]
    summaries = summarise([(p.group, p.score) for p in scored], iou_min, kappa_min)
    write_report(out, scored, summaries, iou_min, kappa_min, extra, targets)
    for line in extra["errors"][:MAX_LINES_SHOWN]:
        errors.print(f"[red]error:[/] {line}", highlight=False, soft_wrap=True)
    _print_table(summaries, f"agreement (pass: IoU >= {iou_min}, kappa >= {kappa_min})")
    if any(t.kind != "single" for t in targets):
        from prist_builder.annotation.report import kind_summaries

        _print_table(kind_summaries(targets, iou_min, kappa_min), "agreement by target kind")
    flagged = sum(p.flagged for p in scored)
    console.print(
        f"{len(scored)} pairs scored, {flagged} flagged for adjudication,"
        f" {len(extra.get('incomplete', []))} incomplete, {len(extra['errors'])} errors; written to {out}",
        highlight=False,
    )
    if fail_under and not all(s.passed for s in summaries):
        raise typer.Exit(1)


def register_qa(app: typer.Typer) -> None:
    """Add ``prist qa`` to the app."""
    app.add_typer(qa_app, name="qa")
