"""A run with hand-written multi-target and empty-target samples, for the export tests.

:func:`add_kinds` adds, to a copy of the demo run (:func:`export_helpers.build_demo`), one
multi-target dialogue about two grounded elements of one image, with a final mask per target
(``FinalMask.masks``), and one empty-target dialogue about a thing the image does not hold,
with a final mask without pixels: the records the build and the annotation loop write for
those kinds (``prist_builder.records``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from prist_builder import appendlog
from prist_builder.annotation.masks import decode, encode
from prist_builder.pipeline.store import read_records
from prist_builder.records import DialogueRecord, ElementsRecord, Turn
from prist_builder.records.curation import FINAL_MASKS_FILE, FinalMask
from prist_builder.records.dialogue import Target
from prist_builder.records.rle import RLE
from prist_builder.samples import empty_rle

TIME = "2026-12-04T12:00:00Z"


@dataclass
class Kinds:
    """What :func:`add_kinds` added: the two sample ids, the multi sample's target element ids,
    foci and final masks (answer order), and the empty sample's absent thing."""

    multi_id: str
    empty_id: str
    element_ids: list[str]
    foci: list[str]
    masks: list[RLE]
    absent: str


def union(masks: list[RLE]) -> RLE:
    """The union of RLE masks of one size."""
    total = np.zeros(tuple(masks[0].size), dtype=bool)
    for mask in masks:
        total |= decode(mask)
    return encode(np.asfortranarray(total))


def _turns(final: str) -> list[Turn]:
    texts = [
        "We just came in with two coffees and nowhere to set them. What could help?",
        "Anything flat and stable within reach would do.",
        "Which of those things are in this picture?",
        "A few of the objects here could take a cup.",
        "Show me exactly where.",
        final,
    ]
    return [Turn(role="user" if i % 2 == 0 else "assistant", content=t) for i, t in enumerate(texts)]


def add_kinds(run: Path) -> Kinds:
    """Append one multi-target and one empty-target sample (and their final masks) to ``run``.

    The multi-target sample's targets are two grounded elements of the first image that has
    two, in the order of its final answer: the second element first, so that answer order is
    not element order. Its final masks are the elements' regions, the first one cut to its
    left half so that a final mask and a grounded one differ.
    """
    records = read_records(run / "elements.jsonl", ElementsRecord)
    record = next(r for r in records if sum(1 for e in r.elements if e.region_id) >= 2)
    first, second = [e for e in record.elements if e.region_id][:2]
    chosen = [second, first]
    regions = [record.image.region(e.region_id) for e in chosen]
    foci = [f"the {e.name} on the left" if k == 0 else f"the {e.name}" for k, e in enumerate(chosen)]
    final = f"These two would do: [OBJ]{foci[0]}[SEG] and [OBJ]{foci[1]}[SEG]."
    multi = DialogueRecord(
        sample_id=f"{record.image_id}-{chosen[0].element_id}+{chosen[1].element_id}",
        image_id=record.image_id,
        provider="hand",
        turns=_turns(final),
        focus="both things that could hold a cup",
        target_element_id=f"{chosen[0].element_id}+{chosen[1].element_id}",
        target_region_ids=[r.region_id for r in regions],
        mask=union([r.mask for r in regions]),
        kind="multi",
        targets=[
            Target(element_id=e.element_id, focus=f, region_ids=[r.region_id], mask=r.mask)
            for e, f, r in zip(chosen, foci, regions, strict=True)
        ],
    )
    absent = "a coat rack"
    empty = DialogueRecord(
        sample_id=f"{record.image_id}-none",
        image_id=record.image_id,
        provider="hand",
        turns=_turns(f"I looked all over the picture: there is no {absent.removeprefix('a ')} in it."),
        focus=absent,
        target_element_id="none",
        kind="empty",
    )
    with open(run / "dialogues.jsonl", "a", encoding="utf-8") as handle:
        for dialogue in (multi, empty):
            handle.write(dialogue.model_dump_json() + "\n")
    cut = decode(regions[0].mask).copy()
    columns = np.flatnonzero(cut.any(axis=0))
    cut[:, (columns[0] + columns[-1]) // 2 + 1 :] = False
    masks = [encode(np.asfortranarray(cut)), regions[1].mask]
    height, width = record.image.height, record.image.width
    appendlog.append(
        run / FINAL_MASKS_FILE,
        [
            FinalMask(
                sample_id=multi.sample_id,
                mask=union(masks),
                rule="iou-winner",
                annotators=["ana", "ben"],
                iou=0.9,
                kappa=0.9,
                time=TIME,
                masks=masks,
            ),
            FinalMask(sample_id=empty.sample_id, mask=empty_rle(height, width), rule="iou-winner", time=TIME),
        ],
    )
    return Kinds(multi.sample_id, empty.sample_id, [e.element_id for e in chosen], foci, masks, absent)
