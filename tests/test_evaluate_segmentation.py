"""Segmentation metrics of ``prist evaluate`` against hand-computed masks and numpy counts."""

from __future__ import annotations

import numpy as np
import pytest

from prist_builder.annotation.masks import area, decode, encode
from prist_builder.evaluate.boxes import box_mask, parse_box, to_pixels
from prist_builder.evaluate.references import Reference
from prist_builder.evaluate.segmentation import by_granularity, count_pairs, summarize
from prist_builder.stats import granularity


def _mask(h: int, w: int, rows: slice, cols: slice) -> np.ndarray:
    m = np.zeros((h, w), dtype=bool)
    m[rows, cols] = True
    return m


def _hand_case():
    """Four 4x4 samples whose counts are worked out by hand in the test below."""
    full = slice(0, 4)
    return [
        (encode(_mask(4, 4, slice(1, 3), full)), encode(_mask(4, 4, slice(0, 2), full))),  # I=4, U=12
        (encode(_mask(4, 4, slice(0, 2), slice(0, 3))), encode(_mask(4, 4, slice(0, 1), slice(0, 2)))),  # I=2, P=6, G=2
        (None, encode(np.zeros((4, 4), bool))),  # both empty
        (None, encode(_mask(4, 4, slice(0, 2), slice(0, 2)))),  # nothing predicted, G=4
    ]


def test_giou_ciou_and_pixel_metrics_match_hand_computation() -> None:
    counts = count_pairs(_hand_case())
    assert [(c.intersection, c.union, c.predicted, c.target) for c in counts] == [
        (4, 12, 8, 8),
        (2, 6, 6, 2),
        (0, 0, 0, 0),
        (0, 4, 0, 4),
    ]
    scores = summarize(counts)
    assert scores is not None and scores.samples == 4
    assert scores.gIoU == pytest.approx(100 * (1 / 3 + 1 / 3 + 1 + 0) / 4)  # an empty union counts 1.0 (LISA)
    assert scores.cIoU == pytest.approx(100 * 6 / 22)
    assert scores.precision == pytest.approx(100 * 6 / 14)  # micro: pooled pixels
    assert scores.recall == pytest.approx(100 * 6 / 14)
    assert scores.F1 == pytest.approx(100 * 6 / 14)
    assert scores.precision_macro == pytest.approx(100 * (0.5 + 1 / 3 + 1 + 0) / 4)
    assert scores.recall_macro == pytest.approx(100 * (0.5 + 1 + 1 + 0) / 4)
    f1s = [0.5, 2 * (1 / 3) * 1 / (1 / 3 + 1), 1.0, 0.0]
    assert scores.F1_macro == pytest.approx(100 * sum(f1s) / 4)


def test_counts_agree_with_numpy_on_random_masks() -> None:
    rng = np.random.default_rng(7)
    pairs, expected = [], []
    for _ in range(300):  # more than 255: pycocotools' area() overflows on one call that large
        h, w = rng.integers(5, 60, size=2)
        p = rng.random((h, w)) < rng.random()
        g = rng.random((h, w)) < rng.random()
        pairs.append((encode(p), encode(g)))
        expected.append((int((p & g).sum()), int((p | g).sum()), int(p.sum()), int(g.sum())))
    got = [(c.intersection, c.union, c.predicted, c.target) for c in count_pairs(pairs)]
    assert got == expected


def test_mismatched_sizes_raise() -> None:
    with pytest.raises(ValueError, match="size"):
        count_pairs([(encode(np.ones((3, 3), bool)), encode(np.ones((4, 3), bool)))])


def test_no_samples_gives_none() -> None:
    assert summarize([]) is None


def test_by_granularity_groups_with_the_stats_definition() -> None:
    h = w = 1024
    sizes = {"fine": 40, "medium": 100, "coarse": 300}  # square sides in pixels
    refs, pairs = [], []
    for name, side in sizes.items():
        target = encode(_mask(h, w, slice(0, side), slice(0, side)))
        ref = Reference(name, "img", h, w, (("user", "q"), ("assistant", "a")), "focus", target)
        assert ref.granularity == granularity(area(target), h, w) == name
        refs.append(ref)
        pairs.append((target, target))
    pairs.append((None, refs[0].mask))  # a second fine sample, missed entirely
    grains = [r.granularity for r in refs] + ["fine"]
    groups = by_granularity(count_pairs(pairs), grains)
    assert set(groups) == {"fine", "medium", "coarse"}
    assert groups["fine"].samples == 2 and groups["fine"].gIoU == pytest.approx(50.0)
    assert groups["coarse"].cIoU == pytest.approx(100.0)


@pytest.mark.parametrize(
    "text, coords",
    [
        ("<box>(10, 20), (110, 220)</box>", (10, 20, 110, 220)),
        ("Sure. <box> ( 10 ,20 ) ( 110 , 220 ) </box> ", (10, 20, 110, 220)),
        ("<box>[10, 20], [110, 220]</box>", (10, 20, 110, 220)),
        ("<box>[10,20,110,220]", (10, 20, 110, 220)),
        ("<|box_start|>(100,200),(500,700)<|box_end|>", (100, 200, 500, 700)),
        ("The logo is at (0.1, 0.2), (0.5, 0.75).", (0.1, 0.2, 0.5, 0.75)),
        ("box: [12.5, 30, 40.25, 60]", (12.5, 30, 40.25, 60)),
        ("<box>(10, 20), (110, 220)</box> no detected elsewhere", (10, 20, 110, 220)),
    ],
)
def test_parse_box_is_tolerant(text: str, coords: tuple) -> None:
    parsed = parse_box(text)
    assert parsed.kind == "box" and parsed.coords == pytest.approx(coords)


@pytest.mark.parametrize(
    "text, kind",
    [
        ("no detected ", "no_detected"),
        ("No Detected.", "no_detected"),
        ("not detected", "no_detected"),
        ("I cannot find it.", "unparsed"),
        ("<box>(10, 20)</box>", "unparsed"),
        ("", "unparsed"),
    ],
)
def test_parse_box_other_answers(text: str, kind: str) -> None:
    assert parse_box(text).kind == kind


def test_box_conventions_scale_to_the_same_pixels() -> None:
    h, w = 200, 400
    pixels = to_pixels((40, 20, 200, 100), "pixel", h, w)
    assert to_pixels((0.1, 0.1, 0.5, 0.5), "unit", h, w) == pytest.approx(pixels)
    assert to_pixels((100, 100, 500, 500), "thousand", h, w) == pytest.approx(pixels)
    assert to_pixels((500, 900, -5, 10), "pixel", h, w) == (0.0, 10.0, 400.0, 200.0)  # sorted and clipped
    with pytest.raises(ValueError, match="convention"):
        to_pixels((0, 0, 1, 1), "percent", h, w)  # type: ignore[arg-type]


def test_box_mask_fills_the_box() -> None:
    mask = decode(box_mask((2, 3, 6, 8), "pixel", 20, 30))
    ys, xs = np.nonzero(mask)
    assert (xs.min(), ys.min(), xs.max(), ys.max()) == (2, 3, 6, 8)  # corners drawn inclusive (Labelme rectangle)
    assert mask.sum() == 5 * 6
    assert box_mask((5, 5, 5, 9), "pixel", 20, 30) is None  # no area
    assert box_mask((50, 50, 60, 60), "pixel", 20, 30) is None  # outside the image
