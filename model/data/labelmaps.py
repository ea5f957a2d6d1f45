"""Semantic segmentation from label maps: COCO-Stuff, COCO panoptic and ADE20K (``prist convert
cocostuff|ade20k``).

Layouts (each dataset's own):

- COCO-Stuff 164k: ``SRC/images/{train2017,val2017}/*.jpg`` and, from
  ``stuffthingmaps_trainval2017.zip``, ``SRC/annotations/{train2017,val2017}/*.png`` (one 8-bit
  label map per image; values in :data:`~prist_builder.model.data.classes.COCOSTUFF`, 255 unlabeled).
- COCO panoptic (also ``cocostuff``, when ``SRC/annotations/panoptic_*.json`` exists):
  ``SRC/annotations/panoptic_{split}.json`` (``images``, ``annotations[].segments_info``,
  ``categories``) with the RGB PNGs in ``SRC/annotations/panoptic_{split}/`` (segment id
  ``R + 256 G + 256^2 B``) and the images in ``SRC/{split}/``. The segments of one category are
  united into one class mask.
- ADE20K SceneParsing (``ADEChallengeData2016``): ``SRC/images/{training,validation}/*.jpg`` and
  ``SRC/annotations/{training,validation}/*.png`` (0 = other, ``v`` = class ``v - 1`` of
  :data:`~prist_builder.model.data.classes.ADE20K`).

Each image gives ``ceil(classes / classes_per_sample)`` samples: its classes in a seeded order,
asked ``classes_per_sample`` at a time (a single question, one ``[OBJ]{class}[SEG]`` per class).
Images and label maps are read one at a time; rows are streamed.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from prist_builder.model.data.classes import ADE20K, COCOSTUFF
from prist_builder.model.data.rows import (
    ConvertError,
    ImageFile,
    Item,
    Options,
    Reject,
    encode_mask,
    export_split,
    limited,
    make_row,
    read_image,
    wanted,
)
from prist_builder.model.data.templates import class_turns


def _chunks(items: Sequence, size: int) -> list[Sequence]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def class_rows(
    dataset: str,
    stem: str,
    image: ImageFile,
    masks: list[tuple[str, Callable[[], np.ndarray]]],
    options: Options,
    source: str,
    encoded: bool = False,
) -> Iterator[dict]:
    """The rows of one image: its ``(name, mask maker)`` classes shuffled by the seed, asked
    ``options.classes_per_sample`` at a time. A mask maker returns a ``(H, W)`` bool mask, or
    the COCO RLE dict when ``encoded``."""
    order = list(masks)
    random.Random(f"{options.seed}:{stem}").shuffle(order)
    size = max(1, options.classes_per_sample)
    for index, group in enumerate(_chunks(order, size)):
        sample_id = f"{dataset}-{stem}-{index}"
        yield make_row(
            sample_id=sample_id,
            image_id=f"{dataset}-{stem}",
            image=image,
            turns=class_turns([name for name, _ in group], sample_id, options.seed),
            targets=[(name, make() if encoded else encode_mask(make())) for name, make in group],
            source=source,
            converter=dataset,
        )


def _label_map(path: Path) -> np.ndarray:
    with Image.open(path) as picture:
        label = np.asarray(picture)
    if label.ndim != 2:
        raise ValueError(f"a label map has one channel, this one has shape {label.shape}")
    return label


def _label_maps(
    src: Path, options: Options, dataset: str, names: Sequence[str], offset: int, skip_compound: bool
) -> Iterator[Item]:
    annotations = src / "annotations"
    if not annotations.is_dir():
        raise ConvertError(f"{annotations}: no such folder (expected annotations/<split>/*.png label maps)")
    images = options.images or src / "images"
    folders = sorted(p for p in annotations.iterdir() if p.is_dir() and wanted(p.name, options))
    if not folders:
        raise ConvertError(f"{annotations}: no split folder of label maps (e.g. train2017/, training/)")
    for folder in folders:
        split = export_split(folder.name)
        for png in sorted(folder.glob("*.png")):
            try:
                label = _label_map(png)
            except (OSError, UnidentifiedImageError, ValueError) as exc:
                yield Reject(str(png), "label map", str(exc))
                continue
            picture = images / folder.name / f"{png.stem}.jpg"
            if not picture.is_file():
                yield Reject(str(picture), "image", "no such file")
                continue
            try:
                image = read_image(picture, label.shape)
            except ValueError as exc:
                yield Reject(str(picture), "image", str(exc))
                continue
            masks, unknown = [], []
            for value in np.unique(label).tolist():
                index = value - offset
                if value == 255 or index < 0:
                    continue
                if index >= len(names):
                    unknown.append(value)
                    continue
                if skip_compound and "-" in names[index]:
                    continue
                masks.append((names[index], lambda value=value, label=label: label == value))
            if unknown:
                yield Reject(str(png), "label map", f"pixel values {unknown} name no class of {dataset}")
                continue
            if not masks:
                yield Reject(str(png), "label map", "no labelled class to ask for")
                continue
            for row in class_rows(dataset, png.stem, image, masks, options, f"{dataset}:{folder.name}/{png.name}"):
                yield split, row


def _category_name(name: str) -> str:
    """A panoptic category as a phrase: ``wall-other-merged`` -> ``wall``, ``wall-stone`` -> ``wall stone``."""
    return name.replace("-merged", "").replace("-other", "").replace("-", " ").replace("_", " ").strip()


def _panoptic(src: Path, index_files: list[Path], options: Options) -> Iterator[Item]:
    for path in index_files:
        split_name = path.stem.removeprefix("panoptic_")
        if not wanted(split_name, options):
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            names = {int(c["id"]): _category_name(str(c["name"])) for c in data["categories"]}
            images = {int(i["id"]): i for i in data["images"]}
            annotations = data["annotations"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConvertError(f"{path}: field images/annotations/categories: {exc}") from None
        png_dir = path.parent / path.stem
        image_dir = (options.images or src) / split_name
        for number, ann in enumerate(annotations):
            where = f"annotations[{number}]"
            try:
                info = images[int(ann["image_id"])]
                png = png_dir / ann["file_name"]
                segments = [(int(s["id"]), int(s["category_id"])) for s in ann["segments_info"]]
            except (KeyError, TypeError, ValueError) as exc:
                yield Reject(str(path), where, f"needs image_id (of images), file_name and segments_info: {exc}")
                continue
            try:
                with Image.open(png) as picture:
                    rgb = np.asarray(picture.convert("RGB")).astype(np.uint32)
            except (OSError, UnidentifiedImageError) as exc:
                yield Reject(str(png), "panoptic png", str(exc))
                continue
            ids = rgb[..., 0] + 256 * rgb[..., 1] + 256 * 256 * rgb[..., 2]
            picture_path = image_dir / str(info.get("file_name"))
            try:
                image = read_image(picture_path, ids.shape)
            except ValueError as exc:
                yield Reject(str(picture_path), "image", str(exc))
                continue
            by_class: dict[str, list[int]] = {}
            bad = [c for _, c in segments if c not in names]
            if bad:
                yield Reject(str(path), f"{where}.segments_info", f"category_id {bad[0]} is not in categories")
                continue
            for segment, category in segments:
                by_class.setdefault(names[category], []).append(segment)
            masks = [(name, lambda s=tuple(seg), ids=ids: np.isin(ids, s)) for name, seg in by_class.items()]
            if not masks:
                yield Reject(str(path), where, "no segment")
                continue
            stem = Path(str(info.get("file_name"))).stem
            for row in class_rows("cocostuff", stem, image, masks, options, f"coco-panoptic:{split_name}/{stem}"):
                yield export_split(split_name), row


def convert_cocostuff(src: Path, options: Options) -> Iterator[Item]:
    """COCO-Stuff label maps, or COCO panoptic when ``SRC/annotations/panoptic_*.json`` exists.

    Raises:
        ConvertError: no ``annotations`` folder, no split folder, or an unreadable panoptic index.
    """
    src = Path(src)
    panoptic = sorted((src / "annotations").glob("panoptic_*.json"))
    if panoptic:
        return limited(_panoptic(src, panoptic, options), options.limit)
    return limited(_label_maps(src, options, "cocostuff", COCOSTUFF, 0, skip_compound=True), options.limit)


def convert_ade20k(src: Path, options: Options) -> Iterator[Item]:
    """ADE20K SceneParsing label maps (``ADEChallengeData2016``).

    Raises:
        ConvertError: no ``annotations`` folder or no split folder.
    """
    return limited(_label_maps(Path(src), options, "ade20k", ADE20K, 1, skip_compound=False), options.limit)
