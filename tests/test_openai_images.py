"""Images as the model sees them: orientation, format, size, token estimate, box scaling."""

from __future__ import annotations

import base64
import io

from PIL import Image

from prist_builder.llm.images import image_tokens, prepare_image
from prist_builder.providers.openai.messages import regions_block
from prist_builder.records import RLE, SourceRegion


def _encode(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def _decoded(url: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))


def test_small_supported_images_go_as_their_own_bytes() -> None:
    data = _encode(Image.new("RGB", (40, 30), "red"), "PNG")
    prepared = prepare_image(data, "image/png", 1024)
    assert prepared.url == "data:image/png;base64," + base64.b64encode(data).decode()
    assert (prepared.width, prepared.height, prepared.scale) == (40, 30, 1.0)


def test_large_images_are_downscaled_and_keep_their_format() -> None:
    data = _encode(Image.new("RGB", (2000, 1000), "blue"), "JPEG")
    prepared = prepare_image(data, "image/jpeg", 1000)
    assert prepared.url.startswith("data:image/jpeg;base64,")
    assert _decoded(prepared.url).size == (1000, 500) and prepared.scale == 0.5


def test_exif_orientation_is_applied_like_the_annotations() -> None:
    image = Image.new("RGB", (60, 20), "green")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    prepared = prepare_image(_encode(image, "JPEG", exif=exif), "image/jpeg", 1024)
    assert (prepared.width, prepared.height) == (20, 60)
    assert _decoded(prepared.url).size == (20, 60)


def test_formats_the_api_refuses_become_png() -> None:
    prepared = prepare_image(_encode(Image.new("RGB", (10, 10)), "BMP"), "image/bmp", 1024)
    assert prepared.url.startswith("data:image/png;base64,")


def test_token_estimate_follows_the_tile_rule() -> None:
    assert image_tokens(1024, 1024) == 85 + 170 * 4  # fitted to 768x768: 2x2 tiles
    assert image_tokens(2048, 4096) == 85 + 170 * 6  # 1024x2048 -> 768x1536: 2x3 tiles
    assert image_tokens(4000, 3000, "low") == 85


def test_region_boxes_are_given_in_sent_pixels() -> None:
    region = SourceRegion(
        region_id="r0",
        label="cup",
        shape_types=["polygon"],
        source="x.json#shapes[0]",
        mask=RLE(size=[960, 1280], counts="0"),
        area=25600,
        bbox=[491, 658, 160, 160],
    )
    text = regions_block([region], 1024, 768, scale=0.8)
    assert "- r0: labelled 'cup'; box x 393-521, y 526-654; bottom centre;" in text


def test_mark_outlines_are_the_edge_widened_by_four_neighbour_steps() -> None:
    """The Set-of-Mark outline (array slices) against its definition with a padded array."""
    import numpy as np

    from prist_builder.providers.openai.marks import _outline

    def reference(mask: np.ndarray, thick: int) -> np.ndarray:
        padded = np.pad(mask, 1)
        inner = padded[1:-1, 1:-1] & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
        edge = mask & ~inner
        for _ in range(thick - 1):
            grown = np.pad(edge, 1)
            edge = grown[1:-1, 1:-1] | grown[:-2, 1:-1] | grown[2:, 1:-1] | grown[1:-1, :-2] | grown[1:-1, 2:]
        return edge

    rng = np.random.default_rng(4)
    for shape in [(1, 1), (1, 7), (5, 1), (2, 2), (30, 40), (64, 17)]:
        for density in (0.0, 0.3, 0.8, 1.0):
            mask = rng.random(shape) < density
            for thick in (1, 2, 3, 5):
                assert np.array_equal(_outline(mask, thick), reference(mask, thick))


def test_mark_tag_point_is_the_farthest_cell_of_the_whole_grid() -> None:
    """The tag's place, searched on the set cells' box only, is the point the distance
    transform of the whole grid gives (the first of equals in row-major order)."""
    import numpy as np
    from scipy import ndimage

    from prist_builder.providers.openai.marks import INNER_POINT_SIDE, _inner_point

    def reference(mask: np.ndarray) -> tuple[int, int]:
        step = max(1, max(mask.shape) // INNER_POINT_SIDE)
        coarse = mask[step // 2 :: step, step // 2 :: step]
        if not coarse.any():
            coarse, step = mask, 1
        distance = ndimage.distance_transform_edt(np.pad(coarse, 1))[1:-1, 1:-1]
        y, x = np.unravel_index(int(np.argmax(distance)), distance.shape)
        offset = step // 2 if step > 1 else 0
        return int(x) * step + offset, int(y) * step + offset

    rng = np.random.default_rng(7)
    masks = [np.zeros((9, 4), bool), np.ones((1, 1), bool), np.ones((3, 300), bool), np.ones((40, 40), bool)]
    for _ in range(120):
        height, width = (int(v) for v in rng.integers(1, 400, 2))
        blobs = ndimage.gaussian_filter(rng.random((height, width)), float(rng.uniform(0.5, 12)))
        masks.append(blobs > np.quantile(blobs, float(rng.uniform(0.2, 0.95))))
        masks[-1][: int(rng.integers(0, height + 1))] = False  # a cut-out, as a smaller region's leaves
    for mask in masks:
        assert _inner_point(mask) == reference(mask)
