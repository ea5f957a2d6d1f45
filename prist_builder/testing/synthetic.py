"""Synthetic annotated images for tests and benchmarks: painted shapes with Labelme files.

Each image gets a few filled shapes (rectangles, circles, polygons) on a textured
background, and a Labelme file that outlines exactly those shapes, so that every region
is real, non-empty and inside the image.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from PIL import Image, ImageDraw

LABELS = ("ball", "box", "cup", "book", "lamp", "plant", "chair", "bottle")
PALETTE = ((200, 40, 40), (40, 160, 60), (40, 70, 200), (230, 200, 40), (120, 60, 20), (240, 240, 240), (30, 30, 30))


def _shape(rng: random.Random, width: int, height: int) -> tuple[str, list[list[float]]]:
    kind = rng.choice(("rectangle", "circle", "polygon"))
    cx, cy = rng.uniform(0.15, 0.85) * width, rng.uniform(0.15, 0.85) * height
    size = rng.uniform(0.06, 0.2) * min(width, height)
    if kind == "rectangle":
        return kind, [[cx - size, cy - size * 0.7], [cx + size, cy + size * 0.7]]
    if kind == "circle":
        return kind, [[cx, cy], [cx + size, cy]]
    corners = [
        [cx - size, cy + size],
        [cx, cy - size],
        [cx + size, cy + size * 0.8],
        [cx + size * 0.2, cy + size * 0.4],
    ]
    return kind, corners


def write_synthetic(
    folder: Path,
    count: int,
    seed: int = 0,
    size: tuple[int, int] = (320, 240),
    shapes: tuple[int, int] = (3, 6),
    first: int = 0,
    digits: int = 4,
    compress_level: int = 6,
) -> list[Path]:
    """Write ``count`` PNG images and Labelme files ``img_0000.{png,json}`` into ``folder``.

    Args:
        folder: output folder (created).
        count: number of images.
        seed: seed of the shapes and colours.
        size: ``(width, height)`` in pixels.
        shapes: inclusive range of shapes per image.
        first: number of the first image (``img_<first>``).
        digits: zero-padded digits of the numbers in the names (at least).
        compress_level: PNG zlib level (Pillow's default 6; 1 writes noise about 5x faster,
            and smaller).

    Returns:
        The Labelme file paths.
    """
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    width, height = size
    written = []
    for index in range(first, first + count):
        image = Image.effect_noise((width, height), 40).convert("RGB")
        draw = ImageDraw.Draw(image)
        records = []
        for _ in range(rng.randint(*shapes)):
            kind, points = _shape(rng, width, height)
            colour = rng.choice(PALETTE)
            if kind == "rectangle":
                draw.rectangle([tuple(points[0]), tuple(points[1])], fill=colour)
            elif kind == "circle":
                (cx, cy), (px, _) = points
                r = abs(px - cx)
                draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)
            else:
                draw.polygon([tuple(p) for p in points], fill=colour)
            records.append(
                {
                    "label": rng.choice(LABELS),
                    "points": points,
                    "group_id": None,
                    "description": "",
                    "shape_type": kind,
                    "flags": {},
                    "mask": None,
                }
            )
        name = f"img_{index:0{digits}d}"
        image.save(folder / f"{name}.png", compress_level=compress_level)
        doc = {
            "version": "5.5.0",
            "flags": {},
            "shapes": records,
            "imagePath": f"{name}.png",
            "imageData": None,
            "imageHeight": height,
            "imageWidth": width,
        }
        path = folder / f"{name}.json"
        path.write_text(json.dumps(doc), encoding="utf-8")
        written.append(path)
    return written
