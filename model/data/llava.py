"""Visual question answering: LLaVA-Instruct (``prist convert llava-instruct``).

Layout (haotian-liu/LLaVA, ``liuhaotian/LLaVA-Instruct-150K``): a JSON list such as
``llava_instruct_150k.json`` / ``llava_v1_5_mix665k.json`` of ``{"id", "image",
"conversations": [{"from": "human"|"gpt", "value"}]}``, ``<image>`` marking the picture in
the first human message; images relative to ``--images`` (COCO train2017; default: the
JSON's folder). Every entry becomes one text-only sample (no target) in the ``train`` split;
entries without an image, or whose turns do not alternate human/gpt, go to the rejects.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from prist_builder.model.data.rows import ConvertError, ImageFile, Item, Options, Reject, limited, make_row, read_image

ROLES = {"human": "user", "gpt": "assistant"}
IMAGE_TOKEN = "<image>"


def convert_llava_instruct(src: Path, options: Options) -> Iterator[Item]:
    """Samples of a LLaVA-Instruct JSON file (see the module docstring).

    Raises:
        ConvertError: unreadable file or not a JSON list.
    """
    return limited(_convert(Path(src), options), options.limit)


def _convert(src: Path, options: Options) -> Iterator[Item]:
    try:
        items = json.loads(src.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConvertError(f"{src}: cannot read: {exc}") from None
    if not isinstance(items, list):
        raise ConvertError(f"{src}: expected a JSON list of {{id, image, conversations}}")
    if options.splits is not None and "train" not in options.splits:
        return
    root = options.images or src.parent
    cached: tuple[str, ImageFile] | None = None
    for index, item in enumerate(items):
        where = f"[{index}]"
        if not isinstance(item, dict) or not isinstance(item.get("image"), str):
            yield Reject(str(src), f"{where}.image", "missing (a text-only entry)")
            continue
        turns, problem = [], None
        for number, message in enumerate(item.get("conversations") or []):
            role = ROLES.get(message.get("from")) if isinstance(message, dict) else None
            if role != ("user" if number % 2 == 0 else "assistant") or not isinstance(message.get("value"), str):
                problem = f"{where}.conversations[{number}]"
                break
            turns.append((role, message["value"].replace(IMAGE_TOKEN, "").strip()))
        if problem or len(turns) < 2 or len(turns) % 2:
            yield Reject(str(src), problem or f"{where}.conversations", "turns must alternate human/gpt, human first")
            continue
        if cached is None or cached[0] != item["image"]:
            try:
                cached = (item["image"], read_image(root / item["image"]))
            except ValueError as exc:
                yield Reject(str(root / item["image"]), "image", str(exc))
                continue
        sample_id = f"llava-instruct-{item.get('id', index)}-{index}"
        yield (
            "train",
            make_row(
                sample_id=sample_id,
                image_id=f"llava-{Path(item['image']).stem}",
                image=cached[1],
                turns=turns,
                source=f"llava-instruct:{src.name}",
                converter="llava-instruct",
            ),
        )
