"""Referring segmentation: RefCOCO, RefCOCO+ and RefCOCOg (``prist convert refcoco``).

Layout of lichengunc/refer (and LISA's ``refer_seg/``): ``SRC/refs(<split_by>).p``, a pickle
of a list of refs ``{ref_id, ann_id, image_id, split, sentences: [{sent_id, sent, raw,
tokens}], category_id, ...}``, beside ``SRC/instances.json`` (COCO instances: ``images``,
``annotations``, ``categories``); images are COCO train2014, by default in
``SRC/../images/mscoco/images/train2014/``. Partitions: RefCOCO and RefCOCO+ ``unc``
(train, val, testA, testB), RefCOCOg ``umd`` (train, val, test) or ``google`` (train, val).

One sample per (ref, sentence): the sentence asked as a referring expression, the answer
``[OBJ]{sentence}[SEG]``, the target the ref's annotation (rasterised by pycocotools, as the
benchmark's ground truth). ``val`` becomes the ``validation`` split; ``testA``/``testB`` keep
their names, so ``prist evaluate --data DIR --split testA`` scores one cell of Table 5.
The pickle is read with an unpickler that refuses every class (plain lists, dicts, strings
and numbers only), so a tampered file cannot run code.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prist_builder.model.data.rows import (
    ConvertError,
    ImageFile,
    Item,
    Options,
    Reject,
    coco_segmentation_rle,
    export_split,
    limited,
    make_row,
    read_image,
    wanted,
)
from prist_builder.model.data.templates import expression_turns

SPLIT_BY = ("unc", "umd", "google")
"""Partitions tried, in order, when ``--split-by`` is not given."""


class _PlainUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refuses to load {module}.{name}: a refs file holds plain data only")


def read_refs(path: Path) -> list[dict[str, Any]]:
    """The refs of a ``refs(*).p`` file (Python 2 or 3 pickle, plain data only).

    Raises:
        ConvertError: unreadable, not a list, or holding objects other than plain data.
    """
    try:
        with open(path, "rb") as handle:
            refs = _PlainUnpickler(handle, encoding="utf-8", errors="replace").load()
    except (OSError, pickle.UnpicklingError, EOFError, ValueError) as exc:
        raise ConvertError(f"{path}: cannot read the refs pickle: {exc}") from None
    if not isinstance(refs, list):
        raise ConvertError(f"{path}: expected a list of refs, got {type(refs).__name__}")
    return refs


def refs_file(src: Path, split_by: str | None) -> Path:
    """``SRC/refs(<split_by>).p``, or the first of :data:`SPLIT_BY` present.

    Raises:
        ConvertError: no such file.
    """
    if split_by:
        path = src / f"refs({split_by}).p"
        if not path.is_file():
            raise ConvertError(f"{path}: no such refs file")
        return path
    for name in SPLIT_BY:
        if (src / f"refs({name}).p").is_file():
            return src / f"refs({name}).p"
    raise ConvertError(f"{src}: no refs(unc|umd|google).p file (the lichengunc/refer layout)")


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def convert_refcoco(src: Path, options: Options) -> Iterator[Item]:
    """Samples of one RefCOCO-family folder (see the module docstring).

    Raises:
        ConvertError: no refs file, an unreadable refs file or ``instances.json``.
    """
    return limited(_convert(Path(src), options), options.limit)


def _convert(src: Path, options: Options) -> Iterator[Item]:
    path = refs_file(src, options.split_by)
    split_by = path.name[len("refs(") : -len(").p")]
    name = options.name or src.name
    refs = read_refs(path)
    instances = src / "instances.json"
    try:
        data = json.loads(instances.read_text(encoding="utf-8"))
        images = {int(i["id"]): i for i in data["images"]}
        annotations = {int(a["id"]): a for a in data["annotations"]}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConvertError(f"{instances}: field images/annotations: {exc}") from None
    image_dir = options.images or src.parent / "images" / "mscoco" / "images" / "train2014"
    order = []
    for index, ref in enumerate(refs):
        where = f"refs[{index}]"
        try:
            key = (int(ref["image_id"]), int(ref["ref_id"]))
            split = _text(ref["split"])
        except (KeyError, TypeError, ValueError) as exc:
            yield Reject(str(path), where, f"needs image_id, ref_id and split: {exc}")
            continue
        if wanted(split, options):
            order.append((key, index, split))
    order.sort()
    cached: tuple[int, ImageFile | Reject] | None = None
    for (image_id, ref_id), index, split in order:
        ref, where = refs[index], f"refs[{index}]"
        info = images.get(image_id)
        ann = annotations.get(ref.get("ann_id"))
        if info is None or ann is None:
            missing = "image_id" if info is None else "ann_id"
            yield Reject(str(path), f"{where}.{missing}", f"{ref.get(missing)} is not in {instances.name}")
            continue
        try:
            height, width = int(info["height"]), int(info["width"])
            rle = coco_segmentation_rle(ann["segmentation"], height, width)
        except (KeyError, TypeError, ValueError) as exc:
            yield Reject(str(instances), f"annotations[id={ann.get('id')}].segmentation", str(exc))
            continue
        if cached is None or cached[0] != image_id:
            picture = image_dir / str(info.get("file_name"))
            try:
                cached = (image_id, read_image(picture, (height, width)))
            except ValueError as exc:
                reason = str(exc) if picture.exists() else "no such file"
                cached = (image_id, Reject(str(picture), "image", reason))
        image = cached[1]
        if isinstance(image, Reject):
            yield Reject(image.file, f"image of {where}", image.reason)
            continue
        sentences = ref.get("sentences")
        if not isinstance(sentences, list) or not sentences:
            yield Reject(str(path), f"{where}.sentences", "missing or empty")
            continue
        for number, sentence in enumerate(sentences):
            text = _text(sentence.get("sent") or sentence.get("raw") or "") if isinstance(sentence, dict) else ""
            if not text.strip():
                yield Reject(str(path), f"{where}.sentences[{number}].sent", "missing or empty")
                continue
            sent_id = sentence.get("sent_id", number)
            sample_id = f"{name}-{split_by}-{ref_id}-{sent_id}"
            yield (
                export_split(split),
                make_row(
                    sample_id=sample_id,
                    image_id=f"coco-{image_id}",
                    image=image,
                    turns=expression_turns(text, sample_id, options.seed),
                    targets=[(text.strip().rstrip("."), rle)],
                    source=f"{name}({split_by}):{split}",
                    converter="refcoco",
                ),
            )
