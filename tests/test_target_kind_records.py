"""Multi-target and empty-target records (issue 22): the final answer is checked against the
target count, and single-target records serialise exactly as before."""

from __future__ import annotations

import random

import pytest
from pydantic import ValidationError

from prist_builder.providers.final_turn import empty_final_turn, final_turn, multi_final_turn
from prist_builder.records import DialogueRecord, Target, TreePath
from prist_builder.records.prediction import Prediction

LEAD = [{"role": "user", "content": "q1"}, {"role": "assistant", "content": "a1"}] * 2


def _record(final: tuple, **fields) -> DialogueRecord:
    turns = LEAD + [t.model_dump() for t in final]
    base = {"sample_id": "img-x", "image_id": "img", "provider": "test", "turns": turns}
    return DialogueRecord.model_validate(base | fields)


def test_single_target_record_serialises_without_the_new_fields():
    record = _record(final_turn("the cup", random.Random(1)), focus="the cup", target_element_id="e0")
    data = record.model_dump()
    assert "kind" not in data and "targets" not in data
    assert [t.element_id for t in record.target_list()] == ["e0"]


def test_multi_target_answer_names_each_target_in_order():
    targets = [Target(element_id="e0", focus="the red cup"), Target(element_id="e2", focus="the blue cup")]
    final = multi_final_turn(["the red cup", "the blue cup"], random.Random(2))
    record = _record(final, focus="both cups", target_element_id="e0+e2", kind="multi", targets=targets)
    assert record.model_dump()["kind"] == "multi"
    assert [t.focus for t in record.target_list()] == ["the red cup", "the blue cup"]
    swapped = multi_final_turn(["the blue cup", "the red cup"], random.Random(2))
    with pytest.raises(ValidationError, match="segments"):
        _record(swapped, focus="both cups", target_element_id="e0+e2", kind="multi", targets=targets)
    one = final_turn("the red cup", random.Random(2))
    with pytest.raises(ValidationError, match="1 \\[SEG\\] for 2 targets"):
        _record(one, focus="both cups", target_element_id="e0+e2", kind="multi", targets=targets)


def test_empty_target_answer_holds_no_seg():
    record = _record(
        empty_final_turn("bicycle", random.Random(3)), focus="bicycle", target_element_id="none", kind="empty"
    )
    assert record.target_list() == []
    with pytest.raises(ValidationError, match="no \\[OBJ\\]/\\[SEG\\]"):
        _record(final_turn("bicycle", random.Random(3)), focus="bicycle", target_element_id="none", kind="empty")


def test_tree_path_kinds():
    assert "kind" not in TreePath(target_element_id="e0", reasoning_question="q", node_ids=["n0", "n1"]).model_dump()
    TreePath(
        target_element_id="e0+e1",
        reasoning_question="q",
        node_ids=["n0", "n1"],
        kind="multi",
        target_element_ids=["e0", "e1"],
    )
    with pytest.raises(ValidationError):
        TreePath(
            target_element_id="e0",
            reasoning_question="q",
            node_ids=["n0", "n1"],
            kind="multi",
            target_element_ids=["e0", "e1"],
        )
    with pytest.raises(ValidationError):
        TreePath(target_element_id="e0", reasoning_question="q", node_ids=["n0", "n1"], kind="empty", absent="bicycle")
    TreePath(target_element_id="none", reasoning_question="q", node_ids=["n0", "n1"], kind="empty", absent="bicycle")


def test_prediction_lines_with_only_mask_stay_valid():
    rle = {"size": [2, 2], "counts": "04"}
    assert len(Prediction.model_validate({"sample_id": "s", "mask": rle}).target_masks()) == 1
    assert Prediction.model_validate({"sample_id": "s", "mask": None}).target_masks() == []
    assert Prediction.model_validate({"sample_id": "s", "masks": [], "mask": None}).target_masks() == []
    assert len(Prediction.model_validate({"sample_id": "s", "masks": [rle, rle], "mask": rle}).target_masks()) == 2
