"""Reasoning segmentation: LISA's ReasonSeg (``prist convert reasonseg``).

Layout: ``SRC/{train,val,test}/`` holding ``<name>.jpg`` and ``<name>.json`` per image; the
JSON has ``text`` (a query, or a list of queries), ``is_sentence`` (``true``: a full question
or instruction; ``false``: a short phrase) and Labelme-style ``shapes`` (``label``,
``points``; label ``target`` for the answer, a label containing ``ignore`` for regions left
out of the evaluation, ``flag`` for deprecated marks, skipped).

The mask is painted as LISA paints it: shapes largest first, each filling its polygon with
1 (target) or "ignore", so a smaller shape inside a larger one wins; the target mask is the
pixels left at 1 (ignored pixels count as background). Polygons go through the project's
rasteriser. One sample per query: a phrase is asked as an expression and answered
``[OBJ]{phrase}[SEG]``, a sentence is asked as is and answered with a bare ``[SEG]``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from prist_builder.annotation.masks import polygon_area, rasterize
from prist_builder.model.data.rows import (
    ConvertError,
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
from prist_builder.model.data.templates import expression_turns, sentence_turns

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def reasonseg_mask(shapes: list, height: int, width: int) -> np.ndarray:
    """The ``(H, W)`` bool target mask of a ReasonSeg ``shapes`` list (see the module docstring).

    Raises:
        ValueError: a shape lacks ``label`` or has fewer than 3 finite points (names the index).
    """
    painted = []
    for index, shape in enumerate(shapes):
        try:
            label = str(shape["label"]).lower()
            points = [(float(x), float(y)) for x, y in shape["points"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"shapes[{index}]: needs label and points [[x, y], ...] ({exc})") from None
        if label == "flag":
            continue
        if len(points) < 3:
            raise ValueError(f"shapes[{index}].points: a polygon needs 3 points, got {len(points)}")
        painted.append((abs(polygon_area(points)), "ignore" not in label, points))
    canvas = np.zeros((height, width), dtype=np.uint8)  # 0 background, 1 target, 2 ignore
    for _, target, points in sorted(painted, key=lambda item: -item[0]):
        canvas[rasterize("polygon", points, height, width)] = 1 if target else 2
    return canvas == 1


def convert_reasonseg(src: Path, options: Options) -> Iterator[Item]:
    """Samples of a ReasonSeg folder.

    Raises:
        ConvertError: no ``train``/``val``/``test`` folder in ``SRC``.
    """
    return limited(_convert(Path(src), options), options.limit)


def _image_of(json_path: Path) -> Path | None:
    for suffix in IMAGE_SUFFIXES:
        if json_path.with_suffix(suffix).is_file():
            return json_path.with_suffix(suffix)
    return None


def _convert(src: Path, options: Options) -> Iterator[Item]:
    folders = [src / name for name in ("train", "val", "test") if (src / name).is_dir() and wanted(name, options)]
    if not folders:
        raise ConvertError(f"{src}: no train/, val/ or test/ folder of <image>.jpg + <image>.json (LISA's ReasonSeg)")
    for folder in folders:
        for path in sorted(folder.glob("*.json")):
            try:
                raw = path.read_bytes()
                try:
                    anno = json.loads(raw.decode("utf-8"))
                except UnicodeDecodeError:
                    anno = json.loads(raw.decode("cp1252"))  # a few files of the release are cp1252
            except (OSError, ValueError) as exc:
                yield Reject(str(path), "file", f"not JSON: {exc}")
                continue
            texts = anno.get("text") if isinstance(anno, dict) else None
            texts = [texts] if isinstance(texts, str) else texts
            if not isinstance(texts, list) or not texts or not all(isinstance(t, str) and t.strip() for t in texts):
                yield Reject(str(path), "text", "missing, empty or not a string / list of strings")
                continue
            if not isinstance(anno.get("is_sentence"), bool) or not isinstance(anno.get("shapes"), list):
                field = "is_sentence" if not isinstance(anno.get("is_sentence"), bool) else "shapes"
                yield Reject(str(path), field, "missing or ill-typed")
                continue
            picture = _image_of(path)
            if picture is None:
                yield Reject(str(path.with_suffix(".jpg")), "image", "no such file")
                continue
            try:
                image = read_image(picture)
            except ValueError as exc:
                yield Reject(str(picture), "image", str(exc))
                continue
            try:
                mask = reasonseg_mask(anno["shapes"], image.height, image.width)
            except ValueError as exc:
                field, _, reason = str(exc).partition(": ")
                yield Reject(str(path), field, reason)
                continue
            if not mask.any():
                yield Reject(str(path), "shapes", "no target pixel")
                continue
            rle = encode_mask(mask)
            for number, text in enumerate(texts):
                sample_id = f"reasonseg-{folder.name}-{path.stem}-{number}"
                if anno["is_sentence"]:
                    turns = sentence_turns(text, sample_id, options.seed)
                else:
                    turns = expression_turns(text, sample_id, options.seed)
                yield (
                    export_split(folder.name),
                    make_row(
                        sample_id=sample_id,
                        image_id=f"reasonseg-{path.stem}",
                        image=image,
                        turns=turns,
                        targets=[(text.strip().rstrip("."), rle)],
                        source=f"reasonseg:{folder.name}/{path.name}",
                        converter="reasonseg",
                    ),
                )
