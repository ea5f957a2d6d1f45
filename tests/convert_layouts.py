"""Tiny slices of public datasets written in each one's own layout (for ``prist convert`` tests).

Layouts follow the projects' own code and docs: COCO-Stuff's README (``images/``,
``annotations/`` label maps), COCO panoptic (``panoptic_*.json`` + RGB PNG ids), ADE20K's
``ADEChallengeData2016``, lichengunc/refer (``refs(unc).p`` + ``instances.json``), LISA's
ReasonSeg and ``utils/data_processing.py``, facebookresearch/paco's ``PACO_DATASET.md``, and
LLaVA-Instruct's JSON list.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as coco_mask

W, H = 40, 30
"""Width and height in pixels of every test image."""


def photo(path: Path, seed: int, size: tuple[int, int] = (W, H)) -> Path:
    """A random RGB JPEG of ``size`` (width, height)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, quality=90)
    return path


def label_map(path: Path, regions: dict[int, tuple[slice, slice]], fill: int) -> np.ndarray:
    """An 8-bit label map: ``fill`` everywhere, ``value`` in each ``(rows, cols)`` region."""
    label = np.full((H, W), fill, dtype=np.uint8)
    for value, (rows, cols) in regions.items():
        label[rows, cols] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(label).save(path)
    return label


def cocostuff(root: Path) -> dict[str, np.ndarray]:
    """COCO-Stuff 164k: a train image (person 0, sky 156, wall-brick 171, rest 255 unlabeled),
    a val image (tree 168), a label map without its image, and a 3-channel (broken) label map."""
    labels = {
        "000000000009": label_map(
            root / "annotations/train2017/000000000009.png",
            {0: (slice(5, 15), slice(5, 15)), 156: (slice(0, 4), slice(None)), 171: (slice(20, 30), slice(0, 10))},
            255,
        ),
        "000000000139": label_map(
            root / "annotations/val2017/000000000139.png", {168: (slice(10, 20), slice(20, 30))}, 255
        ),
    }
    photo(root / "images/train2017/000000000009.jpg", 1)
    photo(root / "images/val2017/000000000139.jpg", 2)
    label_map(root / "annotations/train2017/000000000025.png", {0: (slice(0, 2), slice(0, 2))}, 255)  # no image
    Image.new("RGB", (W, H)).save(root / "annotations/train2017/000000000030.png")
    photo(root / "images/train2017/000000000030.jpg", 3)
    return labels


def coco_panoptic(root: Path) -> np.ndarray:
    """COCO panoptic val2017 with one image: two ``person`` segments and one ``sky-other-merged``."""
    ids = np.zeros((H, W), dtype=np.uint32)
    ids[0:5, :] = 300
    ids[10:20, 0:10] = 7
    ids[10:20, 20:30] = 8
    rgb = np.stack([ids % 256, ids // 256 % 256, ids // 65536], axis=-1).astype(np.uint8)
    (root / "annotations/panoptic_val2017").mkdir(parents=True)
    Image.fromarray(rgb).save(root / "annotations/panoptic_val2017/000000000785.png")
    photo(root / "val2017/000000000785.jpg", 4)
    index = {
        "images": [{"id": 785, "file_name": "000000000785.jpg", "height": H, "width": W}],
        "annotations": [
            {
                "image_id": 785,
                "file_name": "000000000785.png",
                "segments_info": [
                    {"id": 7, "category_id": 1, "iscrowd": 0},
                    {"id": 8, "category_id": 1, "iscrowd": 0},
                    {"id": 300, "category_id": 187, "iscrowd": 0},
                ],
            }
        ],
        "categories": [
            {"id": 1, "name": "person", "isthing": 1, "supercategory": "person"},
            {"id": 187, "name": "sky-other-merged", "isthing": 0, "supercategory": "sky"},
        ],
    }
    (root / "annotations/panoptic_val2017.json").write_text(json.dumps(index), encoding="utf-8")
    return ids


def ade20k(root: Path) -> np.ndarray:
    """ADEChallengeData2016 with one training image: wall (1), sky (3), other (0)."""
    photo(root / "images/training/ADE_train_00000001.jpg", 5)
    regions = {1: (slice(0, 10), slice(None)), 3: (slice(10, 20), slice(0, 20))}
    return label_map(root / "annotations/training/ADE_train_00000001.png", regions, 0)


def _polygon(x0: int, y0: int, x1: int, y1: int) -> list[list[float]]:
    return [[x0, y0, x1, y0, x1, y1, x0, y1]]


def refcoco(root: Path) -> Path:
    """``refer_seg/refcoco`` (refs(unc).p, protocol-2 pickle, + instances.json) and the COCO
    train2014 images under ``refer_seg/images/mscoco/images/train2014``; one ref per split,
    and one ref whose ``ann_id`` is not in instances.json."""
    folder = root / "refcoco"
    folder.mkdir(parents=True)
    images = root / "images/mscoco/images/train2014"
    for image_id in (9, 25):
        photo(images / f"COCO_train2014_{image_id:012d}.jpg", image_id)
    instances = {
        "images": [{"id": i, "file_name": f"COCO_train2014_{i:012d}.jpg", "height": H, "width": W} for i in (9, 25)],
        "annotations": [
            {"id": 101, "image_id": 9, "category_id": 1, "segmentation": _polygon(2, 2, 12, 20), "iscrowd": 0},
            {"id": 102, "image_id": 9, "category_id": 1, "segmentation": _polygon(20, 5, 35, 25), "iscrowd": 0},
            {"id": 103, "image_id": 25, "category_id": 3, "segmentation": _polygon(0, 0, 39, 10), "iscrowd": 0},
        ],
        "categories": [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}],
    }
    (folder / "instances.json").write_text(json.dumps(instances), encoding="utf-8")

    def ref(ref_id: int, ann_id: int, image_id: int, split: str, *sentences: str) -> dict:
        sents = [
            {"tokens": s.split(), "raw": s, "sent_id": ref_id * 10 + n, "sent": s} for n, s in enumerate(sentences)
        ]
        return {
            "ref_id": ref_id, "ann_id": ann_id, "image_id": image_id, "split": split, "sentences": sents,
            "file_name": f"COCO_train2014_{image_id:012d}_{ann_id}.jpg", "category_id": 1,
            "sent_ids": [s["sent_id"] for s in sents],
        }  # fmt: skip

    refs = [
        ref(1, 101, 9, "train", "man on the left", "left guy"),
        ref(2, 102, 9, "val", "man on the right"),
        ref(3, 101, 9, "testA", "left person"),
        ref(4, 103, 25, "testB", "white car"),
        ref(5, 999, 25, "train", "a ghost"),
    ]
    with open(folder / "refs(unc).p", "wb") as handle:
        pickle.dump(refs, handle, protocol=2)
    return folder


def reasonseg(root: Path) -> None:
    """ReasonSeg: ``train/`` with a sentence query (target with an ignore hole), ``val/`` with a
    phrase query and a file that is not JSON."""
    photo(root / "train/img_a.jpg", 7)
    shapes = [
        {"label": "target", "points": [[5, 5], [30, 5], [30, 25], [5, 25]], "shape_type": "polygon", "flags": {}},
        {"label": "ignore", "points": [[10, 10], [15, 10], [15, 15], [10, 15]], "shape_type": "polygon", "flags": {}},
        {"label": "flag", "points": [[0, 0], [1, 0], [1, 1]], "shape_type": "polygon", "flags": {}},
    ]
    doc = {"text": ["What could a hungry person eat here?"], "is_sentence": True, "shapes": shapes}
    (root / "train/img_a.json").write_text(json.dumps(doc), encoding="utf-8")
    photo(root / "val/img_b.jpg", 8)
    doc = {"text": "the object used to cut bread", "is_sentence": False, "shapes": shapes[:1]}
    (root / "val/img_b.json").write_text(json.dumps(doc), encoding="utf-8")
    photo(root / "val/img_c.jpg", 9)
    (root / "val/img_c.json").write_text("{not json", encoding="utf-8")


def paco(root: Path) -> Path:
    """``paco_lvis_v1_val.json`` (RLE segmentations, ``mug`` and ``mug:handle``) and COCO's
    ``val2017/`` image it names."""
    photo(root / "coco/val2017/000000000042.jpg", 10)

    def rle(rows: slice, cols: slice) -> dict:
        mask = np.zeros((H, W), dtype=np.uint8)
        mask[rows, cols] = 1
        encoded = coco_mask.encode(np.asfortranarray(mask))
        return {"size": [H, W], "counts": encoded["counts"].decode("ascii")}

    data = {
        "images": [{"id": 42, "file_name": "val2017/000000000042.jpg", "height": H, "width": W, "license": 1}],
        "annotations": [
            {"id": 1, "image_id": 42, "category_id": 10, "segmentation": rle(slice(5, 25), slice(5, 20))},
            {"id": 2, "image_id": 42, "category_id": 11, "segmentation": rle(slice(10, 15), slice(20, 25))},
        ],
        "categories": [
            {"id": 10, "name": "mug", "supercategory": "OBJECT"},
            {"id": 11, "name": "mug:handle", "supercategory": "OBJECT"},
        ],
    }  # fmt: skip
    path = root / "paco/annotations/paco_lvis_v1_val.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def llava_instruct(root: Path) -> Path:
    """``llava_instruct_150k.json``: two good conversations and one that starts with gpt."""
    photo(root / "train2017/000000000009.jpg", 11)
    items = [
        {
            "id": "000000000009",
            "image": "000000000009.jpg",
            "conversations": [
                {"from": "human", "value": "What is in the photo?\n<image>"},
                {"from": "gpt", "value": "Random noise."},
                {"from": "human", "value": "Any colour?"},
                {"from": "gpt", "value": "Many."},
            ],
        },
        {
            "id": "x2",
            "image": "000000000009.jpg",
            "conversations": [{"from": "human", "value": "<image>\nHi?"}, {"from": "gpt", "value": "Hello."}],
        },
        {"id": "bad", "image": "000000000009.jpg", "conversations": [{"from": "gpt", "value": "Answer first."}]},
    ]
    path = root / "llava_instruct_150k.json"
    path.write_text(json.dumps(items), encoding="utf-8")
    return path
