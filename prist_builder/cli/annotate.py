"""``prist annotate``: the mask annotation loop (export work packages, import, resolve, SAM pre-labels)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from prist_builder.annotation.defaults import IOU_THRESHOLD, KAPPA_THRESHOLD
from prist_builder.cli.console import console, errors, fail

if TYPE_CHECKING:
    import numpy as np

    from prist_builder.samples import Sample

# numpy, the run reader (samples) and the annotation stack (assignment, pre-labels, masks,
# polygons: scipy, Pillow, pycocotools) are imported inside the commands, so that
# ``prist --help`` and the other commands start without them.

annotate_app = typer.Typer(
    help="Annotate target masks in Labelme: export, import, resolve, pre-label.", no_args_is_help=True
)

RunArg = Annotated[Path, typer.Argument(help="Run folder.", file_okay=False)]
DEFAULT_ANNOTATORS = "a,b,c,d"
MAX_ERRORS_SHOWN = 50
BOX_VALUES = 4


def _samples(run: Path) -> list[Sample]:
    from prist_builder.samples import iter_samples

    try:
        return list(iter_samples(run))
    except (FileNotFoundError, ValueError) as exc:
        raise fail(str(exc).splitlines()[0]) from None


def _bytes(record) -> bytes:  # noqa: ANN001
    from prist_builder.sources import read_image

    return read_image(record)[0]


def target_specs(samples: list[Sample]) -> dict:
    """``{sample_id: TargetSpec}`` of the multi- and empty-target samples (the rest are single)."""
    from prist_builder.annotation.target import target_spec

    return {s.sample_id: target_spec(s.dialogue) for s in samples if s.kind != "single"}


def reference_masks(run: Path, samples: list[Sample]) -> dict[str, np.ndarray]:
    """The outline annotators start from, per sample: the grounded mask, else the latest SAM pre-label."""
    from prist_builder.annotation.masks import decode
    from prist_builder.annotation.prelabels import read_prelabels

    prelabels = read_prelabels(run)
    out: dict[str, np.ndarray] = {}
    for sample in samples:
        if sample.dialogue.mask is not None:
            out[sample.sample_id] = decode(sample.dialogue.mask)
        elif sample.sample_id in prelabels:
            out[sample.sample_id] = decode(prelabels[sample.sample_id].mask)
    return out


def target_references(run: Path, samples: list[Sample]) -> dict[str, list[np.ndarray | None]]:
    """Each multi-target sample's outline per target (answer order): the grounded target mask,
    else the latest SAM pre-label of that target, else ``None``."""
    from prist_builder.annotation.masks import decode
    from prist_builder.annotation.prelabels import read_target_prelabels

    prelabels = read_target_prelabels(run)
    out: dict[str, list[np.ndarray | None]] = {}
    for sample in samples:
        if sample.kind != "multi":
            continue
        masks: list[np.ndarray | None] = []
        for number, target in enumerate(sample.dialogue.targets, start=1):
            prelabel = prelabels.get((sample.sample_id, number))
            rle = target.mask if target.mask is not None else (prelabel.mask if prelabel else None)
            masks.append(decode(rle) if rle is not None else None)
        out[sample.sample_id] = masks
    return out


@annotate_app.command("export")
def export(
    run: RunArg,
    out: Annotated[Path, typer.Option("--out", help="Package folder to write.", file_okay=False)],
    annotators: Annotated[
        str, typer.Option("--annotators", help="Comma-separated annotator names.")
    ] = DEFAULT_ANNOTATORS,
    groups: Annotated[int, typer.Option("--groups", min=1, help="Groups of annotators (each >= 2).")] = 2,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the assignment.")] = 0,
) -> None:
    """Write one Labelme file per sample for each of its two annotators, and assignment.csv."""
    from prist_builder import appendlog
    from prist_builder.annotation.assignment import ASSIGNMENTS_FILE, deal, read_assignments, split_groups
    from prist_builder.annotation.workpackage import write_package
    from prist_builder.sources import InputRejected

    try:
        teams = split_groups(annotators.split(","), groups)
    except ValueError as exc:
        raise fail(str(exc)) from None
    samples = _samples(run)
    previous = read_assignments(run)
    assignments = deal([s.sample_id for s in samples], teams, seed, previous)
    appendlog.append(run / ASSIGNMENTS_FILE, [a for s, a in assignments.items() if s not in previous])
    try:
        prefill = reference_masks(run, samples)
        summary = write_package(out, samples, assignments, prefill, _bytes, target_references(run, samples))
    except InputRejected as exc:
        raise fail(str(exc)) from None
    loads = ", ".join(f"{k} {v}" for k, v in sorted(summary.per_annotator.items()))
    console.print(
        f"wrote {summary.files} Labelme files for {len(samples)} samples to {out}"
        f" ({summary.kept} already there, kept; {summary.prefilled} pre-filled; {loads})",
        highlight=False,
    )


def _report_import(summary, label: str) -> None:  # noqa: ANN001
    for line in summary.errors[:MAX_ERRORS_SHOWN]:
        errors.print(f"[red]error:[/] {line}", highlight=False, soft_wrap=True)
    console.print(
        f"{label}: imported {summary.imported}, unchanged {summary.unchanged}, failed {len(summary.errors)}",
        highlight=False,
    )


@annotate_app.command("import")
def import_masks(
    run: RunArg,
    labelme: Annotated[Path, typer.Option("--labelme", help="The annotator's folder of Labelme files.")],
    annotator: Annotated[str, typer.Option("--annotator", help="The annotator's name.")],
) -> None:
    """Import an annotator's saved Labelme files as masks (RUN/annotations.jsonl). Exit 1 if any file failed."""
    from prist_builder import appendlog
    from prist_builder.annotation.store import import_folder
    from prist_builder.records.curation import MASKS_FILE

    samples = _samples(run)
    appendlog.touch(run / MASKS_FILE)
    sizes = {s.sample_id: (s.image.height, s.image.width) for s in samples}
    try:
        summary = import_folder(run, labelme, annotator, sizes, specs=target_specs(samples))
    except NotADirectoryError as exc:
        raise fail(str(exc)) from None
    _report_import(summary, annotator)
    if summary.errors:
        raise typer.Exit(1)


@annotate_app.command("resolve")
def resolve_masks(
    run: RunArg,
    labelme: Annotated[Path | None, typer.Option("--labelme", help="Adjudicated Labelme files.")] = None,
    annotator: Annotated[str | None, typer.Option("--annotator", help="The adjudicator's name.")] = None,
    rule: Annotated[
        str, typer.Option("--rule", help="Without adjudication: annotator-a or iou-winner.")
    ] = "annotator-a",
    iou_min: Annotated[
        float, typer.Option("--iou-min", help="IoU under which a pair awaits adjudication.")
    ] = IOU_THRESHOLD,
    kappa_min: Annotated[
        float, typer.Option("--kappa-min", help="Kappa under which a pair awaits adjudication.")
    ] = KAPPA_THRESHOLD,
    accept_disagreements: Annotated[
        bool, typer.Option("--accept-disagreements", help="Resolve pairs under a threshold by --rule too.")
    ] = False,
) -> None:
    """Make each sample's final mask (RUN/final_masks.jsonl): adjudicated, else by --rule."""
    from prist_builder import appendlog
    from prist_builder.annotation.assignment import read_assignments
    from prist_builder.annotation.store import import_folder, resolve
    from prist_builder.records.curation import FINAL_MASKS_FILE

    samples = _samples(run)
    appendlog.touch(run / FINAL_MASKS_FILE)
    failed = 0
    if labelme is not None:
        if not annotator:
            raise fail("--labelme needs --annotator (the adjudicator's name)")
        sizes = {s.sample_id: (s.image.height, s.image.width) for s in samples}
        try:
            summary = import_folder(run, labelme, annotator, sizes, role="adjudicator", specs=target_specs(samples))
        except NotADirectoryError as exc:
            raise fail(str(exc)) from None
        _report_import(summary, f"{annotator} (adjudicator)")
        failed = len(summary.errors)
    references = reference_masks(run, samples)
    try:
        result = resolve(
            run,
            read_assignments(run),
            rule,
            references.get,
            iou_min,
            kappa_min,
            accept_disagreements,
            target_specs(samples),
        )
    except ValueError as exc:
        raise fail(str(exc)) from None
    rules = ", ".join(f"{k} {v}" for k, v in sorted(result.rules.items())) or "none"
    console.print(
        f"final masks written {len(result.written)} ({rules}), unchanged {len(result.unchanged)},"
        f" awaiting adjudication {len(result.awaiting)}",
        highlight=False,
    )
    if result.awaiting:
        console.print("awaiting: " + ", ".join(result.awaiting[:MAX_ERRORS_SHOWN]), highlight=False)
    if result.contradicted:
        console.print(
            f"{len(result.contradicted)} empty-target samples have a drawn final mask (the asked-for thing was"
            " found; no final mask written, reject them in review): "
            + ", ".join(result.contradicted[:MAX_ERRORS_SHOWN]),
            highlight=False,
        )
    failed += len(result.invalid)
    for line in result.invalid[:MAX_ERRORS_SHOWN]:
        errors.print(f"[red]error:[/] {line}", highlight=False, soft_wrap=True)
    if failed:
        raise typer.Exit(1)


BoxKey = str | tuple[str, int]
"""A pre-label prompt: a sample id, or ``(sample id, target number)`` for a multi-target sample."""


def _read_boxes(path: Path) -> dict[BoxKey, list[float]]:
    """``{sample_id or (sample_id, target): [x, y, w, h]}`` from a JSONL file of
    ``{"sample_id", "box"}`` lines (pixels; ``"target": k`` for target k of a multi-target sample)."""
    out: dict[BoxKey, list[float]] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise fail(f"{path}: cannot read: {exc.strerror or exc}") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            box = [float(v) for v in item["box"]]
            if len(box) != BOX_VALUES or box[2] <= 0 or box[3] <= 0:
                raise ValueError("box must be [x, y, w, h] with w, h > 0")
            key = str(item["sample_id"])
            out[key if item.get("target") is None else (key, int(item["target"]))] = box
        except (ValueError, KeyError, TypeError) as exc:
            raise fail(f"{path}:{number}: field 'box', 'sample_id' or 'target': {exc}") from None
    return out


def _prompts(
    samples: list[Sample], given: dict[BoxKey, list[float]], done: set[BoxKey], redo: bool
) -> tuple[list[tuple[Sample, int | None, list[float]]], int]:
    """``(sample, target number or None, box)`` per SAM prompt to run (a single-target sample's
    target, each target of a multi-target one; an empty-target one has none), and how many
    were skipped (no box, or done before)."""
    from prist_builder.annotation.masks import rle_bbox

    out: list[tuple[Sample, int | None, list[float]]] = []
    skipped = 0
    for sample in samples:
        if sample.kind == "multi":
            slots = [(k, t.mask) for k, t in enumerate(sample.dialogue.targets, start=1)]
        else:
            slots = [] if sample.kind == "empty" else [(None, sample.dialogue.mask)]
        skipped += not slots
        for number, mask in slots:
            key: BoxKey = sample.sample_id if number is None else (sample.sample_id, number)
            box = given.get(key)
            if box is None and mask is not None:
                box = [float(v) for v in rle_bbox(mask)]
            if box is None or (key in done and not redo):
                skipped += 1
                continue
            out.append((sample, number, box))
    return out, skipped


@annotate_app.command("prelabel")
def prelabel(
    run: RunArg,
    sam: Annotated[Path, typer.Option("--sam", help="Local SAM checkpoint folder (e.g. facebook/sam-vit-huge).")],
    boxes: Annotated[
        Path | None, typer.Option("--boxes", help="JSONL of {sample_id, box: [x, y, w, h]} (+ target: k).")
    ] = None,
    device: Annotated[str, typer.Option("--device", help="torch device.")] = "cpu",
    redo: Annotated[bool, typer.Option("--redo", help="Prompt again samples that already have a pre-label.")] = False,
) -> None:
    """Prompt SAM with each target's box (grounded region, else --boxes) and store its best mask as a pre-label."""
    from prist_builder import appendlog
    from prist_builder.annotation.assignment import now
    from prist_builder.annotation.masks import encode
    from prist_builder.annotation.prelabels import PRELABELS_FILE, Prelabel, read_prelabels, read_target_prelabels
    from prist_builder.sources import InputRejected, read_image

    try:
        from prist_builder.annotation.sam import SamPrelabeler
    except ImportError as exc:
        raise fail(str(exc)) from None
    given = _read_boxes(boxes) if boxes is not None else {}
    samples = _samples(run)
    done: set[BoxKey] = set(read_prelabels(run)) | set(read_target_prelabels(run))
    prompts, skipped = _prompts(samples, given, done, redo)
    try:
        model = SamPrelabeler.from_folder(sam, device)
    except (OSError, ValueError) as exc:
        raise fail(f"{sam}: cannot load SAM: {str(exc).splitlines()[0]}") from None
    appendlog.touch(run / PRELABELS_FILE)
    made = targets = 0
    for sample, number, box in prompts:
        try:
            photo = read_image(sample.image)[1]
        except InputRejected as exc:
            errors.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
            continue
        result = model.predict_box(photo, box)
        record = Prelabel(
            sample_id=sample.sample_id,
            mask=encode(result.mask),
            polygons=result.polygons,
            polygon_iou=result.polygon_iou,
            box=box,
            score=result.score,
            model=str(sam),
            time=now(),
            target=number,
        )
        appendlog.append(run / PRELABELS_FILE, [record])
        made += number is None
        targets += number is not None
    more = f" and {targets} targets of multi-target samples" if targets else ""
    console.print(
        f"pre-labelled {made} samples{more}, skipped {skipped} (no box prompt, or done before)", highlight=False
    )


def register_annotate(app: typer.Typer) -> None:
    """Add ``prist annotate`` to the app."""
    app.add_typer(annotate_app, name="annotate")
