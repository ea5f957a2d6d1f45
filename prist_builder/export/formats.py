"""``prist export --format``: the dataset folder (``hf``) or a layout other tools read.

========== ================================================ ===============================
format     what it writes                                   samples it needs
========== ================================================ ===============================
hf         the export dataset contract (parquet + card)     a final mask and an image
llava      LLaVA conversation JSON + images/                 (none; text-only if no image)
lisa       ReasonSeg folders of .jpg + Labelme-style .json   a final mask and an image
prist-json the authors' released JSON, one file per split    (none)
========== ================================================ ===============================

Samples a reviewer rejected never go out. Every format writes ``export.json`` (source run,
seed, split sizes, samples left out and why).
"""

from __future__ import annotations

from pathlib import Path

from prist_builder.export.lisa import write_lisa
from prist_builder.export.llava import write_llava
from prist_builder.export.prist_json import write_prist_json
from prist_builder.export.selection import select
from prist_builder.export.splits import SplitSpec
from prist_builder.export.writer import EXPORT_MANIFEST, ExportSummary, check_target, export_manifest, export_run
from prist_builder.pipeline.store import write_json_atomic
from prist_builder.samples import iter_samples

FORMATS = ("hf", "llava", "lisa", "prist-json")
"""Names ``--format`` takes."""

_WRITERS = {"llava": write_llava, "lisa": write_lisa, "prist-json": write_prist_json}
_NEEDS_MASK = {"llava": False, "lisa": True, "prist-json": False}


def export_as(
    fmt: str,
    run: Path,
    out: Path,
    *,
    spec: SplitSpec | None = None,
    seed: int = 0,
    keep_unfinished: bool = False,
    one_split: str | None = None,
    **options: object,
) -> ExportSummary:
    """Export ``run`` into ``out`` in format ``fmt`` (see the module table).

    ``keep_unfinished`` and ``options`` (``max_shard_bytes``, ``license``) apply to ``hf``.

    Raises:
        ValueError: unknown format or bad split sizes.
        FileNotFoundError: ``run`` is not a run folder.
        prist_builder.export.writer.ExportError: ``out`` holds foreign files.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown --format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if fmt == "hf":
        return export_run(
            run, out, spec=spec, seed=seed, keep_unfinished=keep_unfinished, one_split=one_split, **options
        )  # type: ignore[arg-type]
    out = Path(out)
    check_target(out)
    spec = spec or SplitSpec()
    selection = select(
        list(iter_samples(run)),
        spec,
        seed,
        need_mask=_NEEDS_MASK[fmt],
        need_image=False,
        one_split=one_split,
        check_masks=_NEEDS_MASK[fmt],
    )
    paths = _WRITERS[fmt](selection, out)
    gone = {sid for ids in selection.left_out.values() for sid in ids}
    sizes = {name: sum(1 for s in samples if s.sample_id not in gone) for name, samples in selection.splits.items()}
    summary = ExportSummary(out, sizes, {k: [str(p.relative_to(out))] for k, p in paths.items()}, selection.left_out)
    write_json_atomic(out / EXPORT_MANIFEST, {**export_manifest(run, seed, spec, one_split, summary), "format": fmt})
    return summary
