"""Boxes from general MLLMs' text answers, turned into masks (Appendix C.3).

General MLLMs cannot draw masks, so the paper asks them for
``<box>(x1, y1), (x2, y2)</box>`` (top-left and bottom-right corners) or ``no detected``, and
scores the box filled as a mask. Models write boxes loosely; the parser accepts:

- tags ``<box>...</box>`` (closing tag optional) or Qwen's ``<|box_start|>...<|box_end|>``, or
  no tags when the answer holds two bracketed corner pairs or one bracketed list of four numbers;
- any brackets (``()``, ``[]``, ``{}``) and any spacing or separators between the four numbers;
- coordinates in pixels, normalised to 0-1, or normalised to 0-1000 (Qwen2-VL), chosen by
  :data:`BoxConvention` (a model's convention is a property of the model, so it is a flag,
  not guessed per answer).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from prist_builder.annotation.masks import encode, rasterize
from prist_builder.records.rle import RLE

BoxConvention = Literal["pixel", "unit", "thousand"]
"""Coordinate convention of a model's boxes: pixels, 0-1, or 0-1000 of the image side."""
CONVENTION_SCALE = {"pixel": None, "unit": 1.0, "thousand": 1000.0}
"""Full image side in each normalised convention (``None``: coordinates are pixels)."""
NUMBER = r"[-+]?\d+(?:\.\d+)?"
_NUM = re.compile(NUMBER)
_TAGGED = re.compile(
    r"<\s*(?:\|\s*)?box(?:_start)?\s*(?:\|\s*)?>(?P<body>.*?)(?:<\s*(?:\|\s*)?/?\s*box(?:_end)?\s*(?:\|\s*)?>|$)",
    re.IGNORECASE | re.DOTALL,
)
_PAIRS = re.compile(
    rf"[\(\[\{{]\s*({NUMBER})\s*[,;\s]\s*({NUMBER})\s*[\)\]\}}]\s*[,;]?\s*(?:to|-)?\s*"
    rf"[\(\[\{{]\s*({NUMBER})\s*[,;\s]\s*({NUMBER})\s*[\)\]\}}]"
)
_QUAD = re.compile(
    rf"[\(\[\{{]\s*({NUMBER})\s*[,;\s]\s*({NUMBER})\s*[,;\s]\s*({NUMBER})\s*[,;\s]\s*({NUMBER})\s*[\)\]\}}]"
)
_NONE = re.compile(r"\bno[t]?[\s_-]*(?:object[\s_-]*)?detected\b", re.IGNORECASE)

ParseKind = Literal["box", "no_detected", "unparsed"]


@dataclass(frozen=True)
class ParsedBox:
    """What a text answer says about the target's location.

    Attributes:
        kind: ``box`` (a box was read), ``no_detected`` (the model says the target is not
            there) or ``unparsed`` (neither could be read).
        coords: ``(x1, y1, x2, y2)`` as written, in the model's convention; ``None`` unless ``box``.
    """

    kind: ParseKind
    coords: tuple[float, float, float, float] | None = None


def parse_box(text: str) -> ParsedBox:
    """Read the first box of ``text``, or ``no detected``.

    A box wins over a ``no detected`` phrase in the same answer. A tag holding other than
    four numbers makes the answer ``unparsed``.
    """
    tagged = _TAGGED.search(text)
    if tagged:
        numbers = _NUM.findall(tagged.group("body"))
        if len(numbers) == 4:
            return ParsedBox("box", tuple(float(n) for n in numbers))  # type: ignore[arg-type]
    else:
        found = _PAIRS.search(text) or _QUAD.search(text)
        if found:
            return ParsedBox("box", tuple(float(n) for n in found.groups()))  # type: ignore[arg-type]
    if _NONE.search(text):
        return ParsedBox("no_detected")
    return ParsedBox("unparsed")


def to_pixels(
    coords: tuple[float, float, float, float], convention: BoxConvention, height: int, width: int
) -> tuple[float, float, float, float]:
    """``(x1, y1, x2, y2)`` in pixels of a ``height x width`` image, corners sorted, clipped to the image.

    Raises:
        ValueError: unknown ``convention``.
    """
    if convention not in CONVENTION_SCALE:
        raise ValueError(f"box convention must be one of {', '.join(CONVENTION_SCALE)}, got {convention!r}")
    x1, y1, x2, y2 = coords
    full = CONVENTION_SCALE[convention]
    if full is not None:
        x1, x2 = x1 / full * width, x2 / full * width
        y1, y2 = y1 / full * height, y2 / full * height
    x1, x2 = sorted((min(max(x1, 0.0), float(width)), min(max(x2, 0.0), float(width))))
    y1, y2 = sorted((min(max(y1, 0.0), float(height)), min(max(y2, 0.0), float(height))))
    return x1, y1, x2, y2


def box_mask(
    coords: tuple[float, float, float, float], convention: BoxConvention, height: int, width: int
) -> RLE | None:
    """The box filled as a ``(height, width)`` mask (COCO RLE); ``None`` when the box has no area in the image.

    Drawn by the project's one rasteriser (a Labelme ``rectangle``), so a box scores like an
    annotated rectangle.
    """
    x1, y1, x2, y2 = to_pixels(coords, convention, height, width)
    if x2 <= x1 or y2 <= y1:
        return None
    return encode(rasterize("rectangle", [(x1, y1), (x2, y2)], height, width))
