"""Step 2-1's target choice in the pipeline (issue 19, points 5 and 6): K, the granularity
mix, the part-whole rule, and facts about regions shared by every provider."""

from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pytest
from pycocotools import mask as coco_mask

from prist_builder.pipeline.manifest import BuildConfig
from prist_builder.pipeline.targets import choose_targets
from prist_builder.providers.regions import position_words, region_relations, share_words
from prist_builder.records import RLE, Element, ElementsRecord, ImageRecord, SourceRegion
from prist_builder.records.granularity import granularity

SIZE = 1024


def region(region_id: str, box: tuple[int, int, int, int], label: str = "thing") -> SourceRegion:
    x, y, w, h = box
    mask = np.zeros((SIZE, SIZE), dtype=np.uint8)
    mask[y : y + h, x : x + w] = 1
    rle = coco_mask.encode(np.asfortranarray(mask))
    return SourceRegion(
        region_id=region_id,
        label=label,
        shape_types=["rectangle"],
        source=f"x.json#shapes[{region_id[1:]}]",
        mask=RLE(size=[SIZE, SIZE], counts=rle["counts"].decode("ascii")),
        area=w * h,
        bbox=[x, y, w, h],
    )


def record_of(regions: list[SourceRegion], context: int = 0) -> ElementsRecord:
    image = ImageRecord(
        image_id="img",
        path="/x/img.png",
        width=SIZE,
        height=SIZE,
        sha256="0" * 64,
        mime="image/png",
        source="labelme",
        annotation_path="/x/img.json",
        regions=regions,
    )
    elements = [
        Element(element_id=f"e{i}", name=f"{r.label} {i}", description="d", region_id=r.region_id)
        for i, r in enumerate(regions)
    ]
    elements += [
        Element(element_id=f"e{len(regions) + j}", name=f"logo {j}", description="d", region_id=None)
        for j in range(context)
    ]
    return ElementsRecord(image_id="img", provider="openai", image=image, elements=elements)


def mixed_record() -> ElementsRecord:
    """Four regions of each granularity class, side by side (no overlaps)."""
    sides = {"coarse": 300, "medium": 100, "fine": 30}
    regions = []
    for row, (_, side) in enumerate(sides.items()):
        for column in range(3):
            regions.append(region(f"r{len(regions)}", (column * 340, row * 340, side, side)))
    return record_of(regions)


def test_k_defaults_to_three_and_context_elements_are_never_targets() -> None:
    record = record_of([region(f"r{i}", (i * 200, 0, 150, 150)) for i in range(5)], context=3)
    for seed in range(20):
        targets = choose_targets(record, random.Random(seed))
        assert len(targets) == 3 and all(t.region_id is not None for t in targets)
    assert len(choose_targets(record, random.Random(0), k=4)) == 4
    assert (
        len(choose_targets(record_of([region("r0", (0, 0, 9, 9)), region("r1", (50, 0, 9, 9))]), random.Random(0))) == 2
    )
    assert BuildConfig().targets == 3 and BuildConfig().granularity_mix == [22.0, 25.0, 53.0]


def test_targets_follow_the_granularity_mix() -> None:
    record = mixed_record()
    klass = {e.element_id: granularity(record.image.region(e.region_id).area, SIZE, SIZE) for e in record.elements}
    assert Counter(klass.values()) == {"coarse": 3, "medium": 3, "fine": 3}
    drawn = Counter(
        klass[t.element_id]
        for seed in range(600)
        for t in choose_targets(record, random.Random(seed), k=1, min_share=0.0)
    )
    shares = {k: v / 600 for k, v in drawn.items()}
    assert shares["fine"] == pytest.approx(0.53, abs=0.07)
    assert shares["coarse"] == pytest.approx(0.22, abs=0.07)
    only_fine = Counter(
        klass[t.element_id]
        for seed in range(50)
        for t in choose_targets(record, random.Random(seed), 3, (0, 0, 1), min_share=0.0)
    )
    assert set(only_fine) == {"fine"}


def test_a_part_is_never_a_target_together_with_its_whole() -> None:
    dog = region("r0", (100, 100, 600, 500), "dog")
    collar = region("r1", (300, 200, 80, 30), "collar")
    ball = region("r2", (800, 800, 60, 60), "ball")
    cat = region("r3", (750, 100, 200, 200), "cat")
    relations = region_relations([dog, collar, ball, cat])
    assert [(r.subject, r.kind, r.other) for r in relations] == [("r1", "part of", "r0")]
    record = record_of([dog, collar, ball, cat])
    for seed in range(100):
        chosen = {t.region_id for t in choose_targets(record, random.Random(seed))}
        assert len(chosen) == 3 and not {"r0", "r1"} <= chosen
    # when the pair is all there is, both stay (K >= 2), and steps 2 and 3 are told
    pair = record_of([dog, collar])
    assert {t.region_id for t in choose_targets(pair, random.Random(0))} == {"r0", "r1"}


def test_overlaps_and_positions_and_tiny_shares_are_said_in_words() -> None:
    a, b = region("r0", (0, 0, 200, 200)), region("r1", (150, 150, 200, 200))
    assert [(r.subject, r.kind, r.other) for r in region_relations([a, b])] == [("r0", "overlaps", "r1")]
    assert position_words([0, 0, 10, 10], 300, 300) == "top left"
    assert position_words([140, 140, 20, 20], 300, 300) == "centre"
    assert position_words([280, 140, 20, 20], 300, 300) == "middle right"
    assert share_words(12, 1000, 1000) == "<0.01%"
    assert share_words(400, 1000, 1000) == "0.04%"
    assert share_words(310_000, 1000, 1000) == "31%"
    assert "0.0%" not in share_words(1, 4000, 3000)


def test_tiny_regions_are_targets_only_when_larger_ones_do_not_fill_k() -> None:
    """A person under 1% of the image beside people 4+ times larger (the top of a head
    behind a counter) is not drawn while K other regions remain; it fills a slot only when
    they do not. A small thing with no larger look-alike stays a candidate."""
    large = [region(f"r{i}", (i * 250, 0, 200, 200), "person") for i in range(3)]  # 3.8% each
    tiny = region("r3", (0, 600, 60, 60), "person")  # 0.34%
    record = record_of([*large, tiny])
    assert tiny.area / SIZE**2 < 0.01 <= large[0].area / SIZE**2
    for seed in range(30):
        assert "r3" not in {t.region_id for t in choose_targets(record, random.Random(seed))}
    assert "r3" in {t.region_id for t in choose_targets(record, random.Random(0), k=4)}
    two = record_of([large[0], tiny, region("r4", (500, 600, 50, 50))])
    assert {t.region_id for t in choose_targets(two, random.Random(0))} == {"r0", "r3", "r4"}
    from prist_builder.pipeline.targets import MIN_TARGET_SHARE
    from prist_builder.providers.offline.provider import OfflineProvider
    from prist_builder.providers.openai.provider import OpenAIProvider

    assert OpenAIProvider.tiny_target_share == MIN_TARGET_SHARE and OfflineProvider.tiny_target_share == 0.0
    alone = record_of([*large, region("r3", (0, 600, 60, 60), "cup")])  # small, but the only cup
    assert any("r3" in {t.region_id for t in choose_targets(alone, random.Random(s))} for s in range(30))
    assert any(
        "r3" in {t.region_id for t in choose_targets(record, random.Random(s), min_share=0.0)} for s in range(30)
    )


def _blob_region(region_id: str, rng: random.Random, size: tuple[int, int]) -> SourceRegion:
    height, width = size
    mask = np.zeros(size, dtype=np.uint8)
    yy, xx = np.ogrid[:height, :width]
    for _ in range(rng.randint(1, 3)):
        cx, cy, r = rng.randrange(width), rng.randrange(height), rng.randint(1, 40)
        if rng.random() < 0.5:
            mask[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = 1
        else:
            mask[max(0, cy - r) : cy + r, max(0, cx - r) : cx + r // 2 + 1] = 1
    rle = coco_mask.encode(np.asfortranarray(mask))
    x, y, w, h = (int(v) for v in coco_mask.toBbox(rle))
    counts = rle["counts"].decode("ascii")
    return SourceRegion(
        region_id=region_id,
        label="blob",
        shape_types=["polygon"],
        source=f"x.json#shapes[{region_id[1:]}]",
        mask=RLE(size=[height, width], counts=counts),
        area=int(mask.sum()),
        bbox=[x, y, w, h],
    )


def test_touching_is_a_square_dilation_of_the_whole_masks_and_answers_are_remembered() -> None:
    """The touch test works in the pair's shared window with running sums; it must say
    what a square dilation of the whole mask says (scipy, the plain definition)."""
    from scipy import ndimage

    from prist_builder.providers import regions as module

    rng = random.Random(5)
    seen = Counter()
    for _ in range(120):
        size = rng.choice([(90, 120), (200, 150)])
        blobs = [_blob_region(f"r{i}", rng, size) for i in range(rng.randint(2, 5))]
        gap = max(1, round(module.TOUCH_GAP * max(size)) + rng.randint(0, 6))
        for a in blobs:
            for b in blobs:
                if a is b:
                    continue
                whole = coco_mask.decode({"size": list(size), "counts": a.mask.counts.encode("ascii")}).astype(bool)
                grown = ndimage.binary_dilation(whole, np.ones((2 * gap + 1, 2 * gap + 1), dtype=bool))
                other = coco_mask.decode({"size": list(size), "counts": b.mask.counts.encode("ascii")}).astype(bool)
                expected = bool((grown & other).any())
                assert module._touch(a, b, gap) == expected
                seen[expected] += 1
        first = region_relations(blobs)
        first.append(None)  # the caller's list: the memo keeps its own
        assert region_relations(list(blobs)) == first[:-1]
    assert seen[True] > 20 and seen[False] > 20


def test_a_window_of_a_mask_is_the_crop_of_the_whole_decoded_mask() -> None:
    """``window_mask`` reads the runs of the window's columns only (the Set-of-Mark drawing
    and the touch test use it); it must give pycocotools' pixels, for empty, full, edge and
    large masks (runs longer than one 5-bit group, negative differences)."""
    from prist_builder.providers.regions import window_mask

    rng = random.Random(9)
    cases = [np.zeros((40, 30), np.uint8), np.ones((40, 30), np.uint8)]
    for size in [(50, 70), (300, 200), (1200, 1600)]:
        for _ in range(4):
            mask = np.zeros(size, np.uint8)
            for _ in range(rng.randint(1, 4)):
                y, x = rng.randrange(size[0]), rng.randrange(size[1])
                mask[y : y + rng.randint(1, size[0]), x : x + rng.randint(1, size[1])] ^= 1
            cases.append(mask)
    for mask in cases:
        rle = coco_mask.encode(np.asfortranarray(mask))
        stored = RLE(size=list(mask.shape), counts=rle["counts"].decode("ascii"))
        whole = coco_mask.decode(rle).astype(bool)
        height, width = mask.shape
        for _ in range(6):
            left, top = rng.randrange(width), rng.randrange(height)
            right, bottom = rng.randint(left + 1, width), rng.randint(top + 1, height)
            assert np.array_equal(window_mask(stored, left, top, right, bottom), whole[top:bottom, left:right])
        assert np.array_equal(window_mask(stored, 0, 0, width, height), whole)
