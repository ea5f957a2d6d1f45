"""Object and part segmentation: PACO-LVIS (``prist convert paco``).

Layout (facebookresearch/paco): ``paco_lvis_v1_{train,val,test}.json`` in COCO format:
``images`` (``id``, ``file_name`` such as ``train2017/000000123456.jpg``, ``height``, ``width``),
``annotations`` (``image_id``, ``category_id``, ``segmentation`` RLE or polygons) and
``categories`` whose ``name`` is an object (``mug``, ``car_(automobile)``) or an
``object:part`` pair (``mug:handle``). Images are COCO 2017's: ``--images`` is the folder
``file_name`` is relative to (default: the JSON's folder).

Per image, the annotations of one category are united into one class mask; a part is named
``handle of the mug``. The classes are asked ``classes_per_sample`` at a time, as for
semantic segmentation. The annotation JSON is read whole (as pycocotools' ``COCO`` does);
images are read one at a time and rows streamed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

from prist_builder.model.data.labelmaps import class_rows
from prist_builder.model.data.rows import (
    ConvertError,
    Item,
    Options,
    Reject,
    coco_segmentation_rle,
    export_split,
    limited,
    merge_rles,
    read_image,
    wanted,
)


def category_phrase(name: str) -> str:
    """``mug:handle`` -> ``handle of the mug``; ``car_(automobile)`` -> ``car``; ``trash_can`` -> ``trash can``."""

    def clean(word: str) -> str:
        return re.sub(r"_\(.*?\)", "", word).replace("_", " ").strip()

    obj, _, part = name.partition(":")
    return f"{clean(part)} of the {clean(obj)}" if part else clean(obj)


def index_files(src: Path) -> list[Path]:
    """``SRC`` itself (a JSON file) or the ``paco_*.json`` files in the folder ``SRC``.

    Raises:
        ConvertError: none found.
    """
    if src.is_file():
        return [src]
    files = sorted(src.glob("paco_*.json")) if src.is_dir() else []
    if not files:
        raise ConvertError(f"{src}: no paco_*.json annotation file (e.g. paco_lvis_v1_train.json)")
    return files


def _split_of(path: Path) -> str:
    match = re.search(r"_(train|val|test)\w*$", path.stem)
    return match.group(1) if match else "train"


def convert_paco(src: Path, options: Options) -> Iterator[Item]:
    """Samples of PACO-LVIS annotation files (see the module docstring).

    Raises:
        ConvertError: no annotation file, or one without ``images``/``annotations``/``categories``.
    """
    return limited(_convert(Path(src), options), options.limit)


def _convert(src: Path, options: Options) -> Iterator[Item]:
    for path in index_files(src):
        split = _split_of(path)
        if not wanted(split, options):
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            names = {int(c["id"]): category_phrase(str(c["name"])) for c in data["categories"]}
            images = data["images"]
            by_image: dict[int, list[tuple[int, dict]]] = {}
            for number, ann in enumerate(data["annotations"]):
                by_image.setdefault(ann.get("image_id"), []).append((number, ann))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConvertError(f"{path}: field images/annotations/categories: {exc}") from None
        root = options.images or path.parent
        for number, info in enumerate(images):
            try:
                image_id, file_name = int(info["id"]), str(info["file_name"])
                height, width = int(info["height"]), int(info["width"])
            except (KeyError, TypeError, ValueError) as exc:
                yield Reject(str(path), f"images[{number}]", f"needs id, file_name, height and width: {exc}")
                continue
            anns = by_image.get(image_id, [])
            if not anns:
                yield Reject(str(path), f"images[{number}]", "no annotation")
                continue
            by_class: dict[str, list[dict]] = {}
            bad = None
            for index, ann in anns:
                try:
                    by_class.setdefault(names[int(ann["category_id"])], []).append(
                        coco_segmentation_rle(ann["segmentation"], height, width)
                    )
                except (KeyError, TypeError, ValueError) as exc:
                    bad = Reject(str(path), f"annotations[{index}]", f"category_id/segmentation: {exc}")
                    break
            if bad is not None:
                yield bad
                continue
            picture = root / file_name
            if not picture.is_file() and (root / Path(file_name).name).is_file():
                picture = root / Path(file_name).name
            try:
                image = read_image(picture, (height, width))
            except ValueError as exc:
                yield Reject(str(picture), "image", str(exc))
                continue
            rles = {name: merge_rles(parts) for name, parts in by_class.items()}
            masks = [(name, lambda rle=rle: rle) for name, rle in rles.items()]
            stem = Path(file_name).stem
            for row in class_rows("paco", stem, image, masks, options, f"paco:{path.name}", encoded=True):
                yield export_split(split), row
