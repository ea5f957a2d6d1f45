"""SAM pre-labels with a tiny random ``SamConfig`` on CPU (no weights from a hub).

Skips with the reason when torch or transformers is missing (the ``model`` extra).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import read_jsonl, run_cli

from prist_builder.annotation.agreement import score_pair
from prist_builder.annotation.masks import decode
from prist_builder.annotation.polygons import MIN_ROUND_TRIP_IOU, fit_polygons, polygons_to_mask

torch = pytest.importorskip("torch", reason="torch is not installed (pip install torch==2.13.0, then '.[model]')")
transformers = pytest.importorskip("transformers", reason="transformers is not installed (the 'model' extra)")

TINY_SIDE = 64
"""Input side in pixels of the tiny model (the real SAM uses 1024)."""


def tiny_sam(folder: Path) -> Path:
    """Save a tiny random SAM model and its Pillow processor to ``folder``."""
    from transformers import SamConfig, SamModel, SamProcessor
    from transformers.models.sam.image_processing_pil_sam import SamImageProcessorPil

    config = SamConfig(
        vision_config={
            "hidden_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": TINY_SIDE,
            "patch_size": 8,
            "mlp_dim": 64,
            "output_channels": 16,
            "global_attn_indexes": [1],
            "window_size": 4,
            "num_pos_feats": 8,
        },
        prompt_encoder_config={"hidden_size": 16, "image_size": TINY_SIDE, "patch_size": 8, "mask_input_channels": 4},
        mask_decoder_config={
            "hidden_size": 16,
            "mlp_dim": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "iou_head_hidden_dim": 16,
        },
    )
    torch.manual_seed(0)
    SamModel(config).save_pretrained(folder)
    processor = SamProcessor(
        SamImageProcessorPil(
            size={"longest_edge": TINY_SIDE},
            pad_size={"height": TINY_SIDE, "width": TINY_SIDE},
            mask_size={"longest_edge": TINY_SIDE // 4},
            mask_pad_size={"height": TINY_SIDE // 4, "width": TINY_SIDE // 4},
        )
    )
    processor.save_pretrained(folder)
    return folder


def test_prelabel_then_export_prefills_the_polygons(voc: Path, tmp_path: Path) -> None:
    run, sam, pkg = tmp_path / "run", tiny_sam(tmp_path / "sam"), tmp_path / "pkg"
    assert run_cli("build", "all", "--labelme", voc, "--run", run).exit_code == 0
    dialogues = read_jsonl(run / "dialogues.jsonl")
    # Pretend the build had no masks (a run from bare photos): boxes come from a file.
    for record in dialogues:
        record.update(mask=None, target_region_ids=[])
    (run / "dialogues.jsonl").write_text("".join(json.dumps(r) + "\n" for r in dialogues))
    boxes = tmp_path / "boxes.jsonl"
    boxes.write_text(
        "".join(json.dumps({"sample_id": r["sample_id"], "box": [50, 40, 200, 150]}) + "\n" for r in dialogues[:2])
    )
    result = run_cli("annotate", "prelabel", run, "--sam", sam, "--boxes", boxes)
    assert result.exit_code == 0, result.output
    assert "pre-labelled 2" in result.output
    prelabels = read_jsonl(run / "prelabels.jsonl")
    assert [p["sample_id"] for p in prelabels] == [r["sample_id"] for r in dialogues[:2]]
    for prelabel in prelabels:
        mask = decode(prelabel["mask"])
        assert mask.shape == (338, 500) or mask.shape[0] > 0
        assert prelabel["box"] == [50, 40, 200, 150] and prelabel["model"] == str(sam)
        redrawn = polygons_to_mask(prelabel["polygons"], *mask.shape)  # the recorded IoU is the true one
        assert prelabel["polygon_iou"] == pytest.approx(score_pair(mask, redrawn).iou, abs=1e-12)
    again = run_cli("annotate", "prelabel", run, "--sam", sam, "--boxes", boxes)
    assert "pre-labelled 0" in again.output  # done before: not redone

    assert run_cli("annotate", "export", run, "--out", pkg, "--annotators", "a,b", "--groups", "1").exit_code == 0
    first = json.loads((pkg / "a" / f"{dialogues[0]['sample_id']}.json").read_text())
    expected = prelabels[0]["polygons"] if decode(prelabels[0]["mask"]).any() else []
    assert [s["points"] for s in first["shapes"]] == expected
    unprompted = json.loads((pkg / "a" / f"{dialogues[-1]['sample_id']}.json").read_text())
    assert unprompted["shapes"] == []


def test_smooth_masks_keep_the_promised_polygon_iou() -> None:
    """A real SAM answers with smooth blobs; their polygons keep IoU >= 0.95 (random tiny SAM does not)."""
    yy, xx = np.mgrid[:300, :400]
    for cx, cy, rx, ry in ((200, 150, 120, 80), (50, 40, 6, 5), (390, 290, 30, 30)):
        blob = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1.0
        polygons, iou = fit_polygons(blob)
        assert iou >= MIN_ROUND_TRIP_IOU and len(polygons) == 1


def test_prelabeler_returns_the_best_candidate(tmp_path: Path) -> None:
    from PIL import Image

    from prist_builder.annotation.sam import SamPrelabeler

    model = SamPrelabeler.from_folder(tiny_sam(tmp_path / "sam"))
    image = Image.fromarray((np.random.default_rng(0).random((90, 120, 3)) * 255).astype(np.uint8))
    result = model.predict_box(image, [10, 20, 50, 50])
    assert result.mask.shape == (90, 120) and result.mask.dtype == bool
    assert 0.0 <= result.polygon_iou <= 1.0
    with pytest.raises(FileNotFoundError):
        SamPrelabeler.from_folder(tmp_path / "absent")


def test_multi_target_prelabels_fill_each_target_label(voc: Path, tmp_path: Path) -> None:
    from test_annotate_kinds import add_kinds

    run, sam, pkg = tmp_path / "run", tiny_sam(tmp_path / "sam"), tmp_path / "pkg"
    assert run_cli("build", "all", "--labelme", voc, "--run", run).exit_code == 0
    multi, _ = add_kinds(run)
    # The multi-target sample without masks (a run from bare photos): one box per target from a file.
    lines = (run / "dialogues.jsonl").read_text().splitlines()
    record = json.loads(lines[-2])
    record.update(mask=None, target_region_ids=[])
    for target in record["targets"]:
        target.update(mask=None, region_ids=[])
    lines[-2] = json.dumps(record)
    (run / "dialogues.jsonl").write_text("\n".join(lines) + "\n")
    boxes = tmp_path / "boxes.jsonl"
    given = {1: [20, 30, 120, 150], 2: [200, 40, 100, 90]}
    boxes.write_text(
        "".join(json.dumps({"sample_id": multi.sample_id, "target": k, "box": b}) + "\n" for k, b in given.items())
    )
    result = run_cli("annotate", "prelabel", run, "--sam", sam, "--boxes", boxes)
    assert result.exit_code == 0, result.output
    assert "and 2 targets of multi-target samples" in result.output
    made = [p for p in read_jsonl(run / "prelabels.jsonl") if p["sample_id"] == multi.sample_id]
    assert [(p["target"], p["box"]) for p in made] == [(k, b) for k, b in given.items()]
    assert all("target" not in p for p in read_jsonl(run / "prelabels.jsonl") if p["sample_id"] != multi.sample_id)
    assert "and 2 targets" not in run_cli("annotate", "prelabel", run, "--sam", sam, "--boxes", boxes).output

    assert run_cli("annotate", "export", run, "--out", pkg, "--annotators", "a,b", "--groups", "1").exit_code == 0
    data = json.loads((pkg / "a" / f"{multi.sample_id}.json").read_text())
    labels = [t["label"] for t in data["prist"]["targets"]]
    assert data["shapes"] and all(s["label"] in labels for s in data["shapes"])
    for k, prelabel in enumerate(made):
        expected = prelabel["polygons"] if decode(prelabel["mask"]).any() else []
        assert [s["points"] for s in data["shapes"] if s["label"] == labels[k]] == expected
