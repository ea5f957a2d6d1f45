"""Multi-target and empty-target samples through ``prist export`` (every format), ``read_split``
and ``prist import prist-json`` (issue 22: the paper's Limitations section, GRES)."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import run_cli
from export_helpers import build_demo, copy_run
from kinds_helpers import Kinds, add_kinds, union
from PIL import Image, ImageDraw

from prist_builder.annotation.masks import area, decode
from prist_builder.export.lisa import read_lisa_targets
from prist_builder.export.reader import load_export
from prist_builder.export.splits import SPLITS
from prist_builder.exported import read_split
from prist_builder.records.rle import RLE
from prist_builder.samples import iter_samples
from prist_builder.stats import granularity

datasets.disable_progress_bars()

MIN_POLYGON_IOU = 0.9
"""Masks redrawn from LISA polygons must match the run's this well (IoU)."""


@pytest.fixture(scope="module")
def kinds_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Kinds]:
    demo = build_demo(tmp_path_factory.mktemp("demo"))
    run = copy_run(demo, tmp_path_factory.mktemp("kinds") / "run")
    return run, add_kinds(run)


def _rows(folder: Path) -> dict[str, dict]:
    return {row["sample_id"]: row for split in SPLITS for row in read_split(folder, split)}


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def _export(run: Path, out: Path, *args: str) -> str:
    result = run_cli("export", run, "--out", out, *args)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("layout", ["sample", "image"])
def test_multi_and_empty_samples_export_and_read_back(
    kinds_run: tuple[Path, Kinds], tmp_path: Path, layout: str
) -> None:
    run, kinds = kinds_run
    out = tmp_path / "hf"
    _export(run, out, "--rows", layout)
    manifest = json.loads((out / "export.json").read_text())
    assert manifest["left_out"] == {} and sum(manifest["splits"].values()) == 19
    rows = _rows(out)
    samples = {s.sample_id: s for s in iter_samples(run)}
    assert set(rows) == set(samples)
    for sample_id, row in rows.items():
        columns = list(row)
        assert columns[columns.index("targets") + 1] == "target_kind"
        assert row["target_kind"] == samples[sample_id].kind
    multi = rows[kinds.multi_id]
    assert multi["target_kind"] == "multi" and multi["focus"] == "both things that could hold a cup"
    assert [t["focus"] for t in multi["targets"]] == kinds.foci
    assert [t["element_id"] for t in multi["targets"]] == kinds.element_ids
    height, width = multi["height"], multi["width"]
    for target, mask in zip(multi["targets"], kinds.masks, strict=True):
        assert target["mask"] == {"size": list(mask.size), "counts": mask.counts}
        assert target["area"] == area(mask) and target["granularity"] == granularity(area(mask), height, width)
    empty = rows[kinds.empty_id]
    assert empty["target_kind"] == "empty" and empty["targets"] == [] and empty["focus"] == kinds.absent
    assert "[SEG]" not in empty["turns"][-1]["content"]
    singles = [row for row in rows.values() if row["target_kind"] == "single"]
    assert len(singles) == 17 and all(len(row["targets"]) == 1 for row in singles)


def test_card_counts_samples_per_target_kind(kinds_run: tuple[Path, Kinds], tmp_path: Path) -> None:
    run, _ = kinds_run
    out = tmp_path / "hf"
    _export(run, out, "--one-split", "train")
    card = (out / "README.md").read_text()
    assert "## Target kinds" in card
    assert "| single (one target) | 17 | 0 | 0 | 17 |" in card
    assert "| multi (two or more) | 1 | 0 | 0 | 1 |" in card
    assert "| empty (no target) | 1 | 0 | 0 | 1 |" in card
    assert "| targets | 19 | 0 | 0 | 19 |" in card  # 17 + 2 masks, none for the empty sample


def _without_key(value: object, key: str) -> object:
    if isinstance(value, dict):
        return {k: _without_key(v, key) for k, v in value.items() if k != key}
    if isinstance(value, list):
        return [_without_key(v, key) for v in value]
    return value


def _drop_target_kind(folder: Path) -> None:
    """Rewrite every shard of ``folder`` without ``target_kind`` (column and declared feature),
    as exports were written before it existed."""
    for path in sorted((folder / "data").glob("*.parquet")):
        table = pq.read_table(path)
        if "samples" in table.column_names:
            nested = table.column("samples").combine_chunks()
            entries = nested.flatten()
            keep = [f.name for f in entries.type if f.name != "target_kind"]
            struct = pa.StructArray.from_arrays([entries.field(n) for n in keep], names=keep)
            column = pa.ListArray.from_arrays(nested.offsets, struct)
            table = table.set_column(table.column_names.index("samples"), "samples", column)
        else:
            table = table.drop_columns(["target_kind"])
        metadata = dict(table.schema.metadata or {})
        info = json.loads(metadata[b"huggingface"])
        metadata[b"huggingface"] = json.dumps(_without_key(info, "target_kind")).encode()
        pq.write_table(table.replace_schema_metadata(metadata), path)


@pytest.mark.parametrize("layout", ["sample", "image"])
def test_exports_without_target_kind_read_with_it_derived(
    kinds_run: tuple[Path, Kinds], tmp_path: Path, layout: str
) -> None:
    run, kinds = kinds_run
    out = tmp_path / "old"
    _export(run, out, "--rows", layout)
    _drop_target_kind(out)
    assert "target_kind" not in str(pq.read_schema(next((out / "data").glob("train-*.parquet"))))
    rows = _rows(out)
    assert rows[kinds.multi_id]["target_kind"] == "multi"
    # an older export knew no empty target: a row without targets reads as an unfinished single
    assert rows[kinds.empty_id]["target_kind"] == "single"
    assert {row["target_kind"] for sid, row in rows.items() if sid not in (kinds.multi_id, kinds.empty_id)} == {
        "single"
    }
    for split in SPLITS:
        columns = read_split(out, split).column_names
        assert columns[columns.index("targets") + 1] == "target_kind"
    loaded = load_export(out)  # declares FEATURES, which the old shards lack a column of
    assert {row["sample_id"]: row["target_kind"] for split in SPLITS for row in loaded[split]} == {
        sid: row["target_kind"] for sid, row in rows.items()
    }


def lisa_mask(anno: dict, height: int, width: int) -> np.ndarray:
    """The mask LISA reads from a ReasonSeg JSON, after ``utils/data_processing.py``
    ``get_mask_from_json``: shapes labelled ``flag`` skipped, the rest painted largest first,
    ``ignore`` shapes with 255 and every other one with 1, whatever their number; the target
    is the pixels left at 1."""
    shapes = [s for s in anno["shapes"] if s["label"].lower() != "flag"]

    def filled(points: list) -> np.ndarray:
        canvas = Image.new("L", (width, height), 0)
        ImageDraw.Draw(canvas).polygon([tuple(p) for p in points], fill=1, outline=1)
        return np.asarray(canvas, dtype=bool)

    areas = [filled(s["points"]).sum() for s in shapes]
    mask = np.zeros((height, width), dtype=np.uint8)
    for index in np.argsort(areas)[::-1]:
        shape = shapes[index]
        mask[filled(shape["points"])] = 255 if "ignore" in shape["label"].lower() else 1
    return mask == 1


def test_lisa_layout_query_with_several_shapes_reads_as_one_mask() -> None:
    # A ReasonSeg file as LISA's release writes them: several queries sharing the file's mask,
    # several target shapes (their union is the target), an ignore shape and a deprecated flag.
    anno = {
        "text": ["the things a tired visitor could sit on", "where can I sit?"],
        "is_sentence": True,
        "shapes": [
            {"label": "target", "points": [[2, 2], [20, 2], [20, 20], [2, 20]]},
            {"label": "target", "points": [[30, 5], [45, 5], [45, 25], [30, 25]]},
            {"label": "ignore", "points": [[8, 8], [12, 8], [12, 12], [8, 12]]},
            {"label": "flag", "points": [[0, 0], [5, 0], [5, 5]]},
        ],
    }
    truth = lisa_mask(anno, 30, 50)
    (ours,) = read_lisa_targets(anno, 30, 50)
    assert truth[3, 3] and truth[10, 40] and not truth[10, 10] and not truth[27, 25]
    assert (ours == truth).mean() > 0.99


def test_lisa_export_lists_every_target_and_refuses_empty(kinds_run: tuple[Path, Kinds], tmp_path: Path) -> None:
    run, kinds = kinds_run
    out = tmp_path / "lisa"
    output = _export(run, out, "--format", "lisa", "--one-split", "train")
    assert f"{kinds.empty_id}: refused by --format lisa: an empty-target sample" in output
    manifest = json.loads((out / "export.json").read_text())
    [(reason, entry)] = manifest["left_out"].items()
    assert reason.startswith("refused by --format lisa") and entry["sample_ids"] == [kinds.empty_id]
    assert not (out / "train" / f"{kinds.empty_id}.json").exists()
    anno = json.loads((out / "train" / f"{kinds.multi_id}.json").read_text())
    height, width = anno["imageHeight"], anno["imageWidth"]
    assert anno["target_kind"] == "multi"
    assert [t["focus"] for t in anno["targets"]] == kinds.foci
    assert {s["group_id"] for s in anno["shapes"]} == {0, 1}
    # LISA itself trains on the union of the targets
    assert _iou(lisa_mask(anno, height, width), decode(union(kinds.masks))) >= MIN_POLYGON_IOU
    for drawn, mask in zip(read_lisa_targets(anno, height, width), kinds.masks, strict=True):
        assert _iou(drawn, decode(mask)) >= MIN_POLYGON_IOU
    single = next(p for p in sorted((out / "train").glob("*.json")) if p.stem not in (kinds.multi_id,))
    single_anno = json.loads(single.read_text())
    assert "targets" not in single_anno and {s["group_id"] for s in single_anno["shapes"]} == {None}
    assert len(read_lisa_targets(single_anno, single_anno["imageHeight"], single_anno["imageWidth"])) == 1


def test_llava_export_carries_every_kind_as_text(kinds_run: tuple[Path, Kinds], tmp_path: Path) -> None:
    run, kinds = kinds_run
    out = tmp_path / "llava"
    _export(run, out, "--format", "llava", "--one-split", "train")
    items = {item["id"]: item for item in json.loads((out / "train.json").read_text())}
    samples = {s.sample_id: s for s in iter_samples(run)}
    assert set(items) == set(samples)
    for sample_id in (kinds.multi_id, kinds.empty_id):
        values = [c["value"] for c in items[sample_id]["conversations"]]
        assert values[0].startswith("<image>\n")
        assert values[1:] == [t.content for t in samples[sample_id].dialogue.turns[1:]]
    assert items[kinds.multi_id]["conversations"][-1]["value"].count("[SEG]") == 2
    assert "[SEG]" not in items[kinds.empty_id]["conversations"][-1]["value"]


def _write_masks(entries: list[dict], samples: dict, kinds: Kinds, folder: Path) -> dict[str, str]:
    """Mask PNGs for an import of ``entries`` (``MASKS/<id>.png``; ``MASKS/<id>/<k>.png`` for the
    multi-target one); returns original sample id -> imported sample id."""
    seen: dict[str, int] = {}
    renamed = {}
    by_text = {tuple(t.content for t in s.dialogue.turns): sid for sid, s in samples.items()}
    for entry in entries:
        stem = Path(entry["img_id"]).stem
        new_id = f"{stem}-{seen.get(stem, 0)}"
        seen[stem] = seen.get(stem, 0) + 1
        old_id = by_text[tuple(m["value"] for m in entry["dialogue"])]
        renamed[old_id] = new_id
        sample = samples[old_id]
        if old_id == kinds.multi_id:
            (folder / new_id).mkdir(parents=True)
            for k, mask in enumerate(kinds.masks):
                Image.fromarray(decode(mask).astype(np.uint8) * 255).save(folder / new_id / f"{k}.png")
        elif old_id != kinds.empty_id:
            folder.mkdir(exist_ok=True)
            Image.fromarray(decode(sample.mask).astype(np.uint8) * 255).save(folder / f"{new_id}.png")
    return renamed


def test_prist_json_export_and_import_round_trip_every_kind(kinds_run: tuple[Path, Kinds], tmp_path: Path) -> None:
    run, kinds = kinds_run
    out = tmp_path / "pj"
    _export(run, out, "--format", "prist-json", "--one-split", "test")
    entries = json.loads((out / "test.json").read_text())
    samples = {s.sample_id: s for s in iter_samples(run)}
    assert len(entries) == 19
    kinds_out = [e.get("target_kind") for e in entries]
    assert kinds_out.count(None) == 17 and kinds_out.count("multi") == kinds_out.count("empty") == 1
    assert all(set(e) - {"target_kind"} == {"img_id", "dialogue", "focus"} for e in entries)
    renamed = _write_masks(entries, samples, kinds, tmp_path / "masks")
    images = Path(samples[kinds.multi_id].image.path).parent
    back = tmp_path / "imported"
    result = run_cli(
        "import", "prist-json", out / "test.json", "--run", back, "--images", images, "--masks", tmp_path / "masks"
    )
    assert result.exit_code == 0, result.output
    assert (back / "rejects.jsonl").read_text() == ""
    imported = {s.sample_id: s for s in iter_samples(back)}
    assert len(imported) == 19
    multi = imported[renamed[kinds.multi_id]]
    assert multi.kind == "multi" and [t.focus for t in multi.dialogue.target_list()] == kinds.foci
    assert [m.counts for m in multi.masks] == [m.counts for m in kinds.masks] and multi.mask_rule == "grounded"
    empty = imported[renamed[kinds.empty_id]]
    assert empty.kind == "empty" and empty.dialogue.focus == kinds.absent and empty.masks == []
    assert empty.mask is not None and area(empty.mask) == 0
    for old_id, new_id in renamed.items():
        assert [t.content for t in imported[new_id].dialogue.turns] == [
            t.content for t in samples[old_id].dialogue.turns
        ]
        if samples[old_id].kind == "single":
            assert imported[new_id].mask.counts == samples[old_id].mask.counts
    again = tmp_path / "again"
    _export(back, again, "--format", "prist-json", "--one-split", "test")
    assert (again / "test.json").read_bytes() == (out / "test.json").read_bytes()
    hf = tmp_path / "hf"
    _export(back, hf, "--one-split", "test")
    rows = _rows(hf)
    assert rows[renamed[kinds.multi_id]]["target_kind"] == "multi"
    assert [t["mask"]["counts"] for t in rows[renamed[kinds.multi_id]]["targets"]] == [m.counts for m in kinds.masks]
    assert rows[renamed[kinds.empty_id]]["targets"] == [] and rows[renamed[kinds.empty_id]]["target_kind"] == "empty"


def test_import_reads_kinds_and_rejects_what_names_no_target(tmp_path: Path) -> None:
    turns = [
        {"from": "human", "value": "What is on the table?"},
        {"from": "gpt", "value": "Some dishes."},
        {"from": "human", "value": "Which can I eat from?"},
        {"from": "gpt", "value": "The plates."},
        {"from": "human", "value": "Show them."},
    ]

    def entry(img: str, final: str, focus: str, **extra: str) -> dict:
        return {"img_id": img, "dialogue": [*turns, {"from": "gpt", "value": final}], "focus": focus, **extra}

    entries = [
        entry("a.jpg", "Certainly, [SEG].", "plate"),
        entry("a.jpg", "Here: [SEG] and [SEG].", "plates"),  # released form, two [SEG]: no target named
        entry("b.jpg", "There is no fork.", "fork", target_kind="empty"),
        entry("b.jpg", "There is no knife.", "knife"),  # no [SEG] and no target_kind: a broken entry
        entry("c.jpg", "These: [OBJ]the left plate[SEG] and [OBJ]the right plate[SEG].", "both plates"),
        entry("c.jpg", "This: [OBJ]the cup[SEG].", "the cup", target_kind="multi"),  # contradicts the answer
        entry("d.jpg", "There is no spoon.", "spoon", target_kind="empty"),  # an image asked only about absent things
    ]
    file = tmp_path / "test.json"
    file.write_text(json.dumps(entries), encoding="utf-8")
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    Image.new("RGB", (20, 10), "white").save(images / "c.jpg")
    (masks / "c-0").mkdir(parents=True)  # the mask of target 0 only: the sample's masks are not used
    Image.fromarray(np.eye(10, 20, dtype=np.uint8) * 255).save(masks / "c-0" / "0.png")
    result = run_cli("import", "prist-json", file, "--run", tmp_path / "run", "--images", images, "--masks", masks)
    assert result.exit_code == 0, result.output
    warnings = json.loads((tmp_path / "run" / "manifest.json").read_text())["import"]["warnings"]
    assert warnings == {"4": f"{masks / 'c-0' / '1.png'}: no such file; the sample's masks not used"}
    assert "imported 4 samples" in result.output
    assert "entry [1]:" in result.output and "entry [3]:" in result.output
    assert (
        "entry [5]: " in result.output
        and "target_kind is 'multi' but the final answer reads as 'single'" in result.output
    )
    samples = {s.sample_id: s for s in iter_samples(tmp_path / "run")}
    assert {sid: s.kind for sid, s in samples.items()} == {
        "a-0": "single",
        "b-0": "empty",
        "c-0": "multi",
        "d-0": "empty",
    }
    assert [t.focus for t in samples["c-0"].dialogue.target_list()] == ["the left plate", "the right plate"]
    assert samples["c-0"].mask is None and samples["c-0"].image.width == 20
    assert samples["b-0"].dialogue.focus == "fork" and samples["b-0"].dialogue.target_element_id == "none"
    assert [e.element_id for e in samples["d-0"].elements.elements] == ["scene"]


def test_lisa_and_llava_exports_convert_back_with_the_projects_readers(
    kinds_run: tuple[Path, Kinds], tmp_path: Path
) -> None:
    run, kinds = kinds_run
    samples = {s.sample_id: s for s in iter_samples(run)}
    _export(run, tmp_path / "lisa", "--format", "lisa", "--one-split", "train")
    result = run_cli("convert", "reasonseg", tmp_path / "lisa", "--out", tmp_path / "reasonseg")
    assert result.exit_code == 0, result.output
    rows = {row["source"].rsplit("/", 1)[1]: row for row in read_split(tmp_path / "reasonseg", "train")}
    assert len(rows) == 18 and f"{kinds.empty_id}.json" not in rows
    multi = rows[f"{kinds.multi_id}.json"]
    (target,) = multi["targets"]  # ReasonSeg holds one mask per query: the union of the targets
    assert multi["target_kind"] == "single"  # derived by the converted writer from one target
    assert _iou(decode_row(target["mask"]), decode(union(kinds.masks))) >= MIN_POLYGON_IOU
    _export(run, tmp_path / "llava", "--format", "llava", "--one-split", "train")
    llava = tmp_path / "llava"
    result = run_cli(
        "convert", "llava-instruct", llava / "train.json", "--out", tmp_path / "back", "--images", llava / "images"
    )
    assert result.exit_code == 0, result.output
    back = read_split(tmp_path / "back", "train")
    assert len(back) == 19
    texts = {tuple(t["content"] for t in row["turns"]) for row in back}
    for sample_id in (kinds.multi_id, kinds.empty_id):
        assert tuple(t.content for t in samples[sample_id].dialogue.turns) in texts


def decode_row(mask: dict) -> np.ndarray:
    """A ``targets[].mask`` of an export row as a ``(H, W)`` bool array."""
    return decode(RLE(size=mask["size"], counts=mask["counts"]))
