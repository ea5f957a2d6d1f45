"""Build invariants: worker processes change nothing, EXIF orientation is honoured, and the
granularity bins have the bounds ``prist stats`` documents."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from conftest import run_cli
from PIL import Image

from prist_builder.annotation.masks import decode
from prist_builder.pipeline.build import MIN_INPUTS_FOR_POOL
from prist_builder.stats import COARSE_ABOVE, FINE_BELOW, STANDARD_SIDE, granularity
from prist_builder.testing.synthetic import write_synthetic

STEP_FILES = ("elements.jsonl", "trees.jsonl", "dialogues.jsonl", "rejects.jsonl")


def test_pool_and_no_pool_runs_are_byte_identical(tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    write_synthetic(inputs, MIN_INPUTS_FOR_POOL + 2)
    runs = {}
    for workers in (1, 2):
        run = tmp_path / f"run{workers}"
        result = run_cli("build", "all", "--labelme", inputs, "--run", run, "--workers", workers, "--no-fsync")
        assert result.exit_code == 0, result.output
        runs[workers] = {name: (run / name).read_bytes() for name in STEP_FILES}
    assert runs[1] == runs[2]
    assert runs[1]["dialogues.jsonl"].count(b"\n") >= MIN_INPUTS_FOR_POOL


def test_exif_rotated_photo_is_annotated_in_its_display_frame(tmp_path: Path) -> None:
    stored_w, stored_h = 80, 48  # pixels as stored; orientation 6 displays them 48 wide, 80 high
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    Image.new("RGB", (stored_w, stored_h), (200, 30, 30)).save(buffer, "JPEG", exif=exif)
    (tmp_path / "rot.jpg").write_bytes(buffer.getvalue())
    shapes = [  # in the displayed frame (48 x 80), as Labelme shows and saves it
        {"label": "top", "points": [[2, 2], [40, 2], [40, 30]], "shape_type": "polygon", "group_id": None, "flags": {}},
        {"label": "bottom", "points": [[4, 50], [44, 76]], "shape_type": "rectangle", "group_id": None, "flags": {}},
    ]
    (tmp_path / "rot.json").write_text(
        json.dumps(
            {
                "version": "5.4.1",
                "flags": {},
                "shapes": shapes,
                "imagePath": "rot.jpg",
                "imageData": None,
                "imageHeight": stored_w,
                "imageWidth": stored_h,
            }
        )
    )
    run = tmp_path / "run"
    result = run_cli("build", "elements", "--labelme", tmp_path, "--run", run)
    assert result.exit_code == 0, result.output
    (record,) = [json.loads(line) for line in (run / "elements.jsonl").read_text().splitlines()]
    image = record["image"]
    assert (image["width"], image["height"]) == (stored_h, stored_w)
    bottom = next(r for r in image["regions"] if r["label"] == "bottom")
    mask = decode(bottom["mask"])
    assert mask.shape == (stored_w, stored_h)
    assert mask[60, 20] and not mask[10, 20] and bottom["bbox"] == [4, 50, 41, 27]


@pytest.mark.parametrize(("height", "width"), [(STANDARD_SIDE, STANDARD_SIDE), (512, 256), (2048, 1536)])
def test_granularity_bounds_scale_with_the_image(height: int, width: int) -> None:
    per_pixel = (STANDARD_SIDE * STANDARD_SIDE) / (height * width)  # standard pixels per image pixel

    def area_for(scaled: float) -> int:
        return int(scaled / per_pixel)

    assert granularity(0, height, width) == "fine"
    assert granularity(max(1, area_for(FINE_BELOW) - 2), height, width) == "fine"
    assert granularity(area_for(FINE_BELOW) + 2, height, width) == "medium"
    assert granularity(area_for(COARSE_ABOVE) - 2, height, width) == "medium"
    assert granularity(area_for(COARSE_ABOVE) + 2, height, width) == "coarse"
    assert granularity(height * width, height, width) == "coarse"


def test_probing_an_image_gives_what_decoding_gives(tmp_path: Path) -> None:
    """Step 1 readers of the openai provider only probe the image (a JPEG at 1/8 scale):
    the same oriented size and MIME type as a full decode, and the same rejects."""
    from prist_builder.sources import InputRejected, decode_image, probe_image

    exif = Image.Exif()
    exif[0x0112] = 6  # stored 80x48, shown 48x80
    buffers = {}
    for name, fmt, extra in (("jpeg-exif", "JPEG", {"exif": exif.tobytes()}), ("png", "PNG", {})):
        buffer = io.BytesIO()
        Image.effect_noise((80, 48), 40).convert("RGB").save(buffer, format=fmt, **extra)
        buffers[name] = buffer.getvalue()
    for name, data in buffers.items():
        image, mime = decode_image(data, name)
        assert probe_image(data, name) == (image.width, image.height, mime)
    assert probe_image(buffers["jpeg-exif"], "x")[:2] == (48, 80)
    for broken in (buffers["jpeg-exif"][: len(buffers["jpeg-exif"]) // 2], b"not an image"):
        with pytest.raises(InputRejected, match="unreadable image") as probed:
            probe_image(broken, "broken.jpg")
        with pytest.raises(InputRejected) as decoded:
            decode_image(broken, "broken.jpg")
        assert probed.value.reason.split(" (")[0] == decoded.value.reason.split(" (")[0]


def test_readers_leave_one_core_to_the_event_loop() -> None:
    from prist_builder.pipeline.build import reader_count

    assert [reader_count(w, cores=2) for w in (1, 2, 8)] == [1, 1, 1]
    assert [reader_count(w, cores=8) for w in (2, 7, 16)] == [2, 7, 7]
    assert reader_count(4, cores=1) == 1


def test_heavy_readers_take_every_core() -> None:
    """Readers that draw Set-of-Mark images (the openai provider on annotated inputs) are
    what step 1 waits for: one per core, within ``--workers``."""
    from prist_builder.pipeline.build import reader_count
    from prist_builder.providers.offline.provider import OfflineProvider
    from prist_builder.providers.openai.provider import OpenAIProvider

    assert [reader_count(w, cores=2, heavy=True) for w in (1, 2, 8)] == [1, 2, 2]
    assert [reader_count(w, cores=8, heavy=True) for w in (2, 8, 16)] == [2, 8, 8]
    assert OpenAIProvider.heavy_annotated_reads and not OfflineProvider.heavy_annotated_reads


def test_the_step_1_reader_batches_inputs_and_lets_each_batch_go(tmp_path: Path) -> None:
    """Readers take READ_BATCH inputs per task (the first READ_BATCH one by one), hand each
    unit its own input (a bad one raises for that unit only), and keep nothing once a batch
    is taken: memory does not grow with the run. An input asked again (a later pass) is
    read alone."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from prist_builder.pipeline import steps
    from prist_builder.sources import InputRejected, discover

    write_synthetic(tmp_path / "in", 2 * steps.READ_BATCH + 1)
    items, _ = discover(labelme=tmp_path / "in")
    (tmp_path / "in" / f"{items[1].image_id}.json").write_text("{broken")
    tasks = []

    class Counting(ThreadPoolExecutor):
        def submit(self, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
            tasks.append(len(args[0]))
            return super().submit(fn, *args, **kwargs)

    async def read_all() -> list[object]:
        with Counting(2) as pool:
            reader = steps._Reader(pool, items, lambda item: True, False, "openai", False, None)
            results = await asyncio.gather(*(reader.read(i) for i in items), return_exceptions=True)
            assert not reader._tasks
            again = await reader.read(items[0])
            assert again.record == results[0].record  # type: ignore[union-attr]
            return results

    results = asyncio.run(read_all())
    assert tasks == [1] * steps.READ_BATCH + [steps.READ_BATCH, 1, 1]  # the first inputs one per task
    assert isinstance(results[1], InputRejected)
    assert [r.record.image_id for r in results if not isinstance(r, Exception)] == [
        i.image_id for n, i in enumerate(items) if n != 1
    ]
    assert all(r.data for r in results if not isinstance(r, Exception))  # the bytes, read again here
