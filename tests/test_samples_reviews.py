"""``iter_samples`` checks reviewers' edits again: a hand-written invalid line never reaches an export."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from conftest import run_cli

from prist_builder.records.curation import REVIEWS_FILE
from prist_builder.samples import iter_samples
from prist_builder.testing.synthetic import write_synthetic


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("reviews")
    write_synthetic(root / "in", 3, seed=4)
    assert run_cli("build", "all", "--labelme", root / "in", "--run", root / "run").exit_code == 0
    return root / "run"


def _line(sample_id: str, index: int, before: str, after: str) -> str:
    decision = {
        "sample_id": sample_id,
        "reviewer": "by-hand",
        "time": "2026-01-01T00:00:00+00:00",
        "action": "edit",
        "turn_index": index,
        "before": before,
        "after": after,
    }
    return json.dumps(decision) + "\n"


def test_invalid_hand_written_edit_is_reported_and_skipped(built: Path, caplog: pytest.LogCaptureFixture) -> None:
    first, second = list(iter_samples(built))[:2]
    last = len(first.dialogue.turns) - 1
    final = first.dialogue.turns[last].content
    # the final answer without [OBJ]{focus}[SEG]: breaks a build rule
    broken = _line(first.sample_id, last, final, "It is the thing over there.")
    # a valid edit of another sample's first question, and one naming a message that does not exist
    question = second.dialogue.turns[0].content
    good = _line(second.sample_id, 0, question, question + " Please look closely.")
    missing = _line(second.sample_id, 99, "", "text")
    (built / REVIEWS_FILE).write_text(broken + good + missing, encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="prist_builder"):
        samples = {s.sample_id: s for s in iter_samples(built)}
    edited_first, edited_second = samples[first.sample_id], samples[second.sample_id]
    assert edited_first.dialogue.turns[last].content == final
    assert "It is the thing over there." not in json.dumps(edited_first.dialogue.model_dump())
    assert edited_first.review.edits == {} and edited_first.review.status == "unreviewed"
    assert edited_second.dialogue.turns[0].content == question + " Please look closely."
    assert edited_second.review.edits == {0: question + " Please look closely."}
    messages = [r.getMessage() for r in caplog.records]
    assert any(REVIEWS_FILE in m and first.sample_id in m and "skipped" in m for m in messages)
    assert any(second.sample_id in m and "message 99" in m for m in messages)
