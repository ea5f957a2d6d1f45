"""GRES scoring in ``prist evaluate``: empty and multi-target samples against an independent computation.

The references are a ``prist export`` folder with the ``target_kind`` column (0..n targets per
row); the predictions file mixes the new contract (``masks`` per ``[SEG]``) with lines that give
only ``mask``. Expected figures are worked out twice: by hand in comments and literals, and by a
dense-numpy re-computation of GRES's definitions (Liu et al., CVPR 2023) with brute-force matching.
"""

from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import read_jsonl, run_cli

from prist_builder.annotation.masks import encode
from prist_builder.evaluate.references import ReferenceError, load_references
from prist_builder.evaluate.targets import target_ious

H = W = 6
ASK = [("user", "Where could I sit down?"), ("assistant", "Let us look at the furniture."), ("user", "Segment it.")]


def _mask(rows: slice, cols: slice) -> np.ndarray:
    m = np.zeros((H, W), dtype=bool)
    m[rows, cols] = True
    return m


A = _mask(slice(0, 2), slice(0, 2))  # 4 px, first target of m1
B = _mask(slice(4, 6), slice(4, 6))  # 4 px, second target of m1
S = _mask(slice(2, 4), slice(2, 4))  # 4 px, target of s1 and s2
EMPTY = np.zeros((H, W), dtype=bool)

# sample id -> (kind, target masks, predicted masks or None for a missing line, how the line is written)
CASES: dict[str, tuple[str, list[np.ndarray], list[np.ndarray] | None, str]] = {
    "e1": ("empty", [], [], "masks"),  # no [SEG]: answered empty -> IoU 1, N-acc right
    "e2": ("empty", [], [_mask(slice(0, 1), slice(3, 6))], "masks"),  # 3 px predicted -> IoU 0, U += 3
    "e3": ("empty", [], None, "missing"),  # no prediction: no answer -> IoU 0, N-acc wrong
    "e4": ("empty", [], [EMPTY], "masks"),  # a [SEG] whose mask has no pixel: answered empty -> IoU 1
    # two targets, one missed: P1 (6 px) covers B, P2 (1 px) hits nothing; given in the other order
    "m1": ("multi", [A, B], [_mask(slice(4, 6), slice(3, 6)), _mask(slice(0, 1), slice(3, 4))], "masks"),
    "s1": ("single", [S], [], "mask_only"),  # "mask": null only: read as no target -> T-acc wrong
    "s2": ("single", [S], [_mask(slice(2, 4), slice(2, 5))], "mask_only"),  # 6 px over S's 4: IoU 4/6
}


def _rle(mask: np.ndarray) -> dict:
    return encode(mask).model_dump()


def _final(kind: str) -> str:
    return {
        "empty": "There is no bench in this image.",
        "multi": "[OBJ]the chair[SEG] and [OBJ]the stool[SEG].",
        "single": "[OBJ]the sofa[SEG].",
    }[kind]


def write_gres_export(folder: Path, with_kind: bool = True) -> None:
    """An export folder (contract columns + ``target_kind``) holding :data:`CASES` as its test split."""
    from datasets import Dataset

    rows = []
    for sid, (kind, targets, _, _) in CASES.items():
        row = {
            "sample_id": sid,
            "image_id": f"img-{sid}",
            "width": W,
            "height": H,
            "turns": [{"role": r, "content": c} for r, c in ASK] + [{"role": "assistant", "content": _final(kind)}],
            "focus": "a seat",
            "targets": [
                {"focus": f"t{i}", "mask": _rle(t), "box": [0.0, 0.0, 1.0, 1.0], "area": int(t.sum())}
                for i, t in enumerate(targets)
            ],
        }
        if with_kind:
            row["target_kind"] = kind
        rows.append(row)
    (folder / "data").mkdir(parents=True)
    Dataset.from_list(rows).to_parquet(str(folder / "data" / "test-00000-of-00001.parquet"))


def write_predictions(path: Path) -> None:
    lines = []
    for sid, (kind, _, predicted, how) in CASES.items():
        if predicted is None:
            continue
        union = np.logical_or.reduce(predicted) if predicted else None
        line: dict = {"sample_id": sid, "responses": ["Let us look at the furniture.", _final(kind)]}
        if how == "masks":
            line["masks"] = [_rle(m) for m in predicted]
        line["mask"] = _rle(union) if union is not None else None
        lines.append(json.dumps(line))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _brute_force_target_ious(predicted: list[np.ndarray], targets: list[np.ndarray]) -> list[float]:
    """Each target's IoU under the one-to-one matching with the largest summed IoU (all permutations)."""

    def iou(p: np.ndarray, t: np.ndarray) -> float:
        union = (p | t).sum()
        return float((p & t).sum() / union) if union else 0.0

    slots = predicted + [None] * len(targets)  # None: left unmatched
    best: list[float] = [0.0] * len(targets)
    for chosen in itertools.permutations(range(len(slots)), len(targets)):
        values = [0.0 if slots[c] is None else iou(slots[c], t) for c, t in zip(chosen, targets, strict=True)]
        if sum(values) > sum(best):
            best = values
    return best


def independent(ids: list[str]) -> dict[str, float | None]:
    """GRES figures of the samples ``ids`` from dense masks: gIoU, cIoU, N-acc, T-acc, target mIoU (percent)."""
    ious, inter, union, n_right, t_right, per_target = [], 0, 0, [], [], []
    for sid in ids:
        kind, targets, predicted, _ = CASES[sid]
        gt = np.logical_or.reduce(targets) if targets else EMPTY
        pred = np.logical_or.reduce(predicted) if predicted else EMPTY
        answered_empty = predicted is not None and not pred.any()
        i, u = int((pred & gt).sum()), int((pred | gt).sum())
        inter, union = inter + i, union + u
        if kind == "empty":
            ious.append(1.0 if answered_empty else 0.0)
            n_right.append(answered_empty)
        else:
            ious.append(i / u)
            t_right.append(predicted is not None and not answered_empty)
            per_target += _brute_force_target_ious(predicted or [], targets)

    def pct(values: list) -> float | None:
        return 100 * sum(values) / len(values) if values else None

    return {
        "gIoU": pct(ious),
        "cIoU": None if all(CASES[sid][0] == "empty" for sid in ids) else 100 * inter / union,
        "N_acc": pct(n_right),
        "T_acc": pct(t_right),
        "target_mIoU": pct(per_target),
    }


def test_nacc_tacc_and_empty_aware_giou_equal_an_independent_computation(tmp_path: Path) -> None:
    export = tmp_path / "export"
    write_gres_export(export)
    preds = tmp_path / "miras.jsonl"
    write_predictions(preds)
    out = tmp_path / "eval"
    result = run_cli("evaluate", preds, "--data", export, "--out", out)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "results.json").read_text())
    seg = summary["segmentation"]

    # by hand: IoUs e1 1, e2 0, e3 0, e4 1, m1 4/11 (I 4, U 7+8-4), s1 0, s2 4/6
    assert seg["gIoU"] == pytest.approx(100 * (1 + 0 + 0 + 1 + 4 / 11 + 0 + 4 / 6) / 7)
    assert seg["cIoU"] == pytest.approx(100 * (4 + 4) / (3 + 11 + 4 + 6))  # empties add only predicted pixels to U
    assert seg["N_acc"] == pytest.approx(100 * 2 / 4)  # e1 and e4 answered empty; e2 segmented, e3 missing
    assert seg["T_acc"] == pytest.approx(100 * 2 / 3)  # m1 and s2 answered; s1 answered "no target"
    assert seg["target_mIoU"] == pytest.approx(100 * (0 + 4 / 6 + 0 + 4 / 6) / 4)  # m1: A missed, B 4/6
    assert seg["targets"] == 4

    # and against the dense re-computation, overall and per kind
    for key, value in independent(list(CASES)).items():
        assert seg[key] == pytest.approx(value), key
    kinds = summary["target_kinds"]
    assert list(kinds) == ["single", "multi", "empty"]
    for kind in kinds:
        ids = [sid for sid, case in CASES.items() if case[0] == kind]
        assert kinds[kind]["samples"] == len(ids)
        for key, value in independent(ids).items():
            got = kinds[kind]["segmentation"][key]
            assert got is None if value is None else got == pytest.approx(value), (kind, key)
    assert (
        kinds["empty"]["segmentation"]["gIoU"] == pytest.approx(50.0)
        and kinds["empty"]["segmentation"]["T_acc"] is None
    )
    assert kinds["single"]["segmentation"]["N_acc"] is None

    rows = {r["sample_id"]: r for r in read_jsonl(out / "per_sample.jsonl")}
    assert rows["m1"]["kind"] == "multi" and rows["m1"]["predicted_targets"] == 2
    assert rows["m1"]["target_IoU"] == pytest.approx([0.0, 100 * 4 / 6])  # in target order, not prediction order
    assert rows["e4"]["answered_empty"] is True and rows["e4"]["IoU"] == pytest.approx(100.0)
    assert rows["e3"]["answered_empty"] is None and rows["e3"]["IoU"] == 0.0
    assert rows["s1"]["answered_empty"] is True and rows["s1"]["mask_source"] == "mask"
    assert summary["problems"]["counts"]["unparsed_box"] == 0 and summary["problems"]["counts"]["missing"] == 1

    # every table splits by kind: Table 3 and granularity get kind rows, the kind table has N-acc/T-acc
    for label in ("miras [single]", "miras [multi]", "miras [empty]", "N-acc", "T-acc", "Target mIoU"):
        assert label in result.output, label
    with (out / "table3.csv").open() as handle:
        assert [r["Model"] for r in csv.DictReader(handle)] == [
            "miras",
            "miras [single]",
            "miras [multi]",
            "miras [empty]",
        ]
    with (out / "kinds.csv").open() as handle:
        table = {r["Kind"]: r for r in csv.DictReader(handle)}
    assert list(table) == ["all", "single", "multi", "empty"]
    assert table["all"]["N-acc"] == "50.00" and table["all"]["T-acc"] == f"{100 * 2 / 3:.2f}"
    assert table["empty"]["T-acc"] == "-" and table["multi"]["Targets"] == "2"
    assert table["empty"]["cIoU"] == table["empty"]["Precision"] == "-"  # no target pixel to pool
    granularity = (out / "granularity.md").read_text()
    assert "[single]" in granularity and "[multi]" in granularity


def test_hungarian_matching_against_brute_force() -> None:
    rng = np.random.default_rng(3)
    for _ in range(40):
        targets = [rng.random((H, W)) < 0.3 for _ in range(int(rng.integers(1, 4)))]
        predicted = [rng.random((H, W)) < 0.3 for _ in range(int(rng.integers(0, 4)))]
        got = target_ious([encode(p) for p in predicted], [encode(t) for t in targets])
        expected = _brute_force_target_ious(predicted, targets)
        assert sum(got) == pytest.approx(sum(expected))  # ties may pair differently; the optimum is unique
        assert len(got) == len(targets)


def test_export_kinds_legacy_rows_and_bad_kind(tmp_path: Path) -> None:
    legacy = tmp_path / "legacy"
    write_gres_export(legacy, with_kind=False)  # an older export: kind follows the number of targets
    refs = {r.sample_id: r for r in load_references(legacy)}
    assert refs["m1"].kind == "multi" and len(refs["m1"].masks) == 2
    assert refs["s1"].kind == "single" and refs["e1"].kind == "single" and refs["e1"].mask is None
    refs = {r.sample_id: r for r in load_references(_kinded(tmp_path))}
    assert refs["e1"].kind == "empty" and refs["e1"].masks == () and refs["e1"].granularity is None
    assert refs["e1"].mask == encode(EMPTY)  # an empty target: a mask of the image's size without pixels
    assert refs["m1"].mask == encode(A | B)

    from datasets import Dataset

    bad = tmp_path / "bad"
    (bad / "data").mkdir(parents=True)
    row = {"sample_id": "x", "image_id": "i", "width": W, "height": H, "turns": [], "focus": "f"}
    row |= {"targets": [{"focus": "t", "mask": _rle(A)}], "target_kind": "empty"}
    Dataset.from_list([row]).to_parquet(str(bad / "data" / "test-00000-of-00001.parquet"))
    with pytest.raises(ReferenceError, match="target_kind is 'empty' but the row has 1 target"):
        load_references(bad)


def _kinded(tmp_path: Path) -> Path:
    folder = tmp_path / "kinded"
    write_gres_export(folder)
    return folder


def test_judge_table_has_kind_rows(tmp_path: Path) -> None:
    from prist_builder.testing import FakeOpenAIServer

    export = tmp_path / "export"
    write_gres_export(export)
    preds = tmp_path / "miras.jsonl"
    write_predictions(preds)
    out = tmp_path / "eval"
    with FakeOpenAIServer() as server:  # a schema-valid score sheet for every judge request
        result = run_cli(
            "evaluate", preds, "--data", export, "--out", out, "--judge", "--repeats", "1",
            "--base-url", server.base_url, "--api-key", "sk-test-judge", "--cache-dir", tmp_path / "cache",
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    judge = json.loads((out / "results.json").read_text())["judge"]
    assert {k: v["samples"] for k, v in judge["kinds"].items()} == {"single": 2, "multi": 1, "empty": 4}
    with (out / "table4.csv").open() as handle:
        labels = [r["Model"] for r in csv.DictReader(handle)]
    assert labels[:2] == ["Human", "miras"]
    assert {"Human [empty]", "miras [empty]", "miras [multi]", "miras [single]"} <= set(labels)


def test_run_folder_references_carry_kind_and_per_target_masks(tmp_path: Path) -> None:
    import random

    from prist_builder.providers.final_turn import empty_final_turn, multi_final_turn
    from prist_builder.records import DialogueRecord, Target
    from prist_builder.testing.synthetic import write_synthetic

    write_synthetic(tmp_path / "images", 2, seed=4)
    run = tmp_path / "run"
    assert run_cli("build", "all", "--run", run, "--labelme", tmp_path / "images").exit_code == 0
    lines = (run / "dialogues.jsonl").read_text().splitlines()
    base = DialogueRecord.model_validate_json(lines[0])
    others = [DialogueRecord.model_validate_json(line) for line in lines[1:]]
    second = next(d for d in others if d.image_id == base.image_id and d.target_element_id != base.target_element_id)
    lead = [t.model_dump() for t in base.turns[:-2]]  # the final turn is a request and its answer
    targets = [
        Target(element_id=d.target_element_id, focus=d.focus, region_ids=d.target_region_ids, mask=d.mask)
        for d in (base, second)
    ]
    union = encode(decode_all([base.mask, second.mask]))
    common = base.model_dump(include={"image_id", "provider", "reasoning_question", "path_node_ids"})
    multi = DialogueRecord.model_validate(
        common
        | {
            "sample_id": f"{base.image_id}-{base.target_element_id}+{second.target_element_id}",
            "turns": lead + [t.model_dump() for t in multi_final_turn([base.focus, second.focus], random.Random(1))],
            "focus": "both",
            "target_element_id": f"{base.target_element_id}+{second.target_element_id}",
            "target_region_ids": base.target_region_ids + second.target_region_ids,
            "mask": union.model_dump(),
            "kind": "multi",
            "targets": [t.model_dump() for t in targets],
        }
    )
    empty = DialogueRecord.model_validate(
        common
        | {
            "sample_id": f"{base.image_id}-none",
            "turns": lead + [t.model_dump() for t in empty_final_turn("a bicycle", random.Random(2))],
            "focus": "a bicycle",
            "target_element_id": "none",
            "kind": "empty",
        }
    )
    extra = [multi, empty]
    with (run / "dialogues.jsonl").open("a") as handle:
        handle.writelines(r.model_dump_json() + "\n" for r in extra)
    refs = {r.sample_id: r for r in load_references(run)}
    got_multi, got_empty = refs[multi.sample_id], refs[empty.sample_id]
    assert got_multi.kind == "multi" and got_multi.masks == (base.mask, second.mask) and got_multi.mask == union
    assert got_empty.kind == "empty" and got_empty.masks == () and got_empty.granularity is None
    assert got_empty.mask is not None and not decode_all([got_empty.mask]).any()
    assert refs[base.sample_id].kind == "single" and refs[base.sample_id].target_masks == (base.mask,)


def decode_all(rles: list) -> np.ndarray:
    from prist_builder.annotation.masks import decode

    return np.logical_or.reduce([decode(r) for r in rles])
