"""``prist export --format llava``: LLaVA's conversation JSON and an image folder.

``OUT/images/<image_id>.<ext>`` holds each image once (the EXIF-corrected source file);
``OUT/{train,validation,test}.json`` is a list of ``{"id": sample_id, "image": file name
relative to OUT/images, "conversations": [{"from": "human"|"gpt", "value": str}]}``, the
first human value opening with ``<image>\\n`` (LLaVA's instruction-tuning layout). A sample
without an image has no ``image`` key, as LLaVA's text-only samples do.
"""

from __future__ import annotations

import json
from pathlib import Path

from prist_builder.export.features import llava_conversations
from prist_builder.export.images import ImageUnavailable, export_image
from prist_builder.export.selection import NO_IMAGE, Selection
from prist_builder.export.splits import SPLITS

IMAGES_DIR = "images"


def write_llava(selection: Selection, out: Path) -> dict[str, Path]:
    """Write the LLaVA layout under ``out``; returns the JSON path of each split.

    A sample whose image cannot be read is left out and recorded in ``selection.left_out``.
    """
    images = out / IMAGES_DIR
    images.mkdir(parents=True, exist_ok=True)
    written: dict[str, str | None] = {}
    paths = {}
    for name in SPLITS:
        rows = []
        for sample in selection.splits[name]:
            key = sample.dialogue.image_id
            if key not in written:
                if sample.image.absent:
                    written[key] = None
                else:
                    try:
                        image = export_image(sample.image)
                    except ImageUnavailable as exc:
                        selection.leave_out(sample.sample_id, f"{NO_IMAGE}: {exc}")
                        continue
                    (images / str(image["path"])).write_bytes(image["bytes"])  # type: ignore[arg-type]
                    written[key] = str(image["path"])
            row = {"id": sample.sample_id}
            if written[key] is not None:
                row["image"] = written[key]
            row["conversations"] = llava_conversations(sample)
            rows.append(row)
        path = out / f"{name}.json"
        path.write_text(json.dumps(rows, indent=2, ensure_ascii=False), encoding="utf-8")
        paths[name] = path
    return paths
