"""The LLM judge (Table 4) against the project's fake OpenAI server, through the real openai client:
5 repeats per dimension, averages and win rate, re-asks of malformed answers, failures reported,
the response cache, --dry-run and --batch."""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import run_cli

from prist_builder.annotation.masks import encode
from prist_builder.testing import FakeOpenAIServer

H, W = 16, 16
MODEL_MARK = "MODELSAYS"
SCRIPT = {  # focus -> side -> the score of each of the 5 repeats (all four dimensions alike)
    "red cup": {"model": [1, 2, 3, 4, 5], "human": [4, 4, 4, 4, 4]},  # model 3.0 < human 4.0: a loss
    "blue jar": {"model": [5, 5, 5, 5, 4.5], "human": [4, 4, 4, 3.5, 4]},  # 4.9 > 3.9: a win
}


def _sample(index: int, focus: str) -> dict[str, Any]:
    mask = np.zeros((H, W), bool)
    mask[2:8, 2:8] = True
    rle = encode(mask)
    turns = [
        ("user", f"What is near the {focus}?"),
        ("assistant", f"A plate stands next to the {focus}."),
        ("user", "Which object holds the drink?"),
        ("assistant", f"The {focus} holds the drink."),
        ("user", "Segment it."),
        ("assistant", f"Certainly, [OBJ]{focus}[SEG]."),
    ]
    return {
        "sample_id": f"s{index}",
        "image_id": f"img{index}",
        "width": W,
        "height": H,
        "turns": [{"role": r, "content": c} for r, c in turns],
        "focus": focus,
        "targets": [
            {
                "focus": focus,
                "mask": {"size": rle.size, "counts": rle.counts},
                "box": [2.0, 2.0, 6.0, 6.0],
                "area": 36,
                "granularity": "coarse",
                "element_id": "e0",
            }
        ],
    }


@pytest.fixture
def dataset(tmp_path: Path) -> tuple[Path, Path]:
    """An export folder with one sample per scripted focus, and a predictions file for it."""
    from datasets import Dataset

    rows = [_sample(i, focus) for i, focus in enumerate(SCRIPT)]
    export = tmp_path / "export"
    (export / "data").mkdir(parents=True)
    Dataset.from_list(rows).to_parquet(str(export / "data" / "test-00000-of-00001.parquet"))
    preds = tmp_path / "model.jsonl"
    preds.write_text(
        "".join(
            json.dumps(
                {
                    "sample_id": r["sample_id"],
                    "mask": r["targets"][0]["mask"],
                    "responses": [
                        f"{MODEL_MARK} I see the {r['focus']}.",
                        f"{MODEL_MARK} It is the {r['focus']}.",
                        "Certainly, [SEG].",
                    ],
                }
            )
            + "\n"
            for r in rows
        ),
        encoding="utf-8",
    )
    return export, preds


class ScriptedJudge:
    """A responder grading by script; the n-th call for a (focus, side) gets the n-th score."""

    def __init__(self, garbage: dict[str, int] | None = None) -> None:
        self.calls: dict[tuple[str, str], int] = defaultdict(int)
        self.garbage = garbage or {}  # focus -> first answers that are malformed, per (focus, side)
        self.reasks = 0
        self.lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> str:
        messages = body["messages"]
        first_user = messages[1]["content"]
        focus = next(f for f in SCRIPT if f"Focus object: {f}" in first_user)
        side = "model" if MODEL_MARK in first_user else "human"
        with self.lock:
            if len(messages) > 2:
                self.reasks += 1
                assert "does not satisfy the rules" in messages[-1]["content"]
            else:
                self.calls[(focus, side)] += 1
            n = self.calls[(focus, side)]
            if len(messages) > 2 and focus in self.garbage:  # a re-ask of a malformed first answer: still wrong
                return json.dumps(
                    {
                        "progression": 9,
                        "logical_coherence": 4,
                        "content_consistency": 4,
                        "target_relevance": 4,
                        "total": 21,
                        "summary": "out of range",
                    }
                )
            if self.garbage.get(focus, 0) >= n:
                return "Scores: progression 4, looks fine"
        score = SCRIPT[focus][side][n - 1]
        return json.dumps(
            {
                "progression": score,
                "logical_coherence": score,
                "content_consistency": score,
                "target_relevance": score,
                "total": 4 * score,
                "summary": "ok",
            }
        )


def _evaluate(export: Path, preds: Path, out: Path, server: FakeOpenAIServer, cache: Path, *extra: str):
    return run_cli(
        "evaluate",
        preds,
        "--data",
        export,
        "--out",
        out,
        "--judge",
        "--base-url",
        server.base_url,
        "--api-key",
        "sk-test-judge",
        "--cache-dir",
        cache,
        "--max-attempts",
        "1",
        *extra,
    )


def test_five_repeats_averages_and_win_rate(dataset: tuple[Path, Path], tmp_path: Path) -> None:
    export, preds = dataset
    judge = ScriptedJudge()
    with FakeOpenAIServer(responder=judge) as server:
        result = _evaluate(export, preds, tmp_path / "out", server, tmp_path / "cache")
        assert result.exit_code == 0, result.output
        assert server.request_count("chat") == 2 * 2 * 5  # samples x sides x repeats
        assert dict(judge.calls) == {(f, s): 5 for f in SCRIPT for s in ("model", "human")}
        summary = json.loads((tmp_path / "out" / "results.json").read_text())
        table = summary["judge"]
        for column in ("PR", "LC", "CC", "TR"):
            assert table["model"][column] == pytest.approx((3.0 + 4.9) / 2)
            assert table["human"][column] == pytest.approx((4.0 + 3.9) / 2)
        assert table["Win Rate"] == pytest.approx(50.0) and table["wins"] == 1 and table["compared"] == 2
        assert table["repeats"] == 5 and table["prompt_version"] == "judge-2"
        rows = {r["sample_id"]: r for r in map(json.loads, (tmp_path / "out" / "per_sample.jsonl").open())}
        assert rows["s0"]["judge_win"] is False and rows["s1"]["judge_win"] is True
        assert rows["s0"]["judge_model"]["PR"] == pytest.approx(3.0)
        table4 = (tmp_path / "out" / "table4.md").read_text()
        assert "| Human |" in table4 and "Win Rate(%)" in table4 and "50.0" in table4
        assert "Table 3" in result.output and "Table 4" in result.output  # both tables printed
        for path in (tmp_path / "out").iterdir():  # the key reaches no file
            assert "sk-test-judge" not in path.read_text(errors="ignore")
        # a second run answers from the cache: nothing is sent again
        again = _evaluate(export, preds, tmp_path / "out2", server, tmp_path / "cache")
        assert again.exit_code == 0, again.output
        assert server.request_count("chat") == 20
        assert json.loads((tmp_path / "out2" / "results.json").read_text())["judge"]["Win Rate"] == pytest.approx(50.0)


def test_malformed_answers_are_reasked_then_reported(dataset: tuple[Path, Path], tmp_path: Path) -> None:
    export, preds = dataset
    # red cup: the first call of each side is malformed and its re-asks too (score 9 is out of range)
    judge = ScriptedJudge(garbage={"red cup": 1})
    with FakeOpenAIServer(responder=judge) as server:
        result = _evaluate(export, preds, tmp_path / "out", server, tmp_path / "cache", "--max-reasks", "1")
        assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "out" / "results.json").read_text())
    assert judge.reasks == 2  # one re-ask per failing request (red cup, both sides)
    assert summary["problems"]["counts"]["judge_failed"] == 2
    assert any("between 0 and 5" in e for e in summary["problems"]["examples"]["judge_failed"])
    # the failed first repeat is left out: red cup's model mean is over scores 2..5 only
    rows = {r["sample_id"]: r for r in map(json.loads, (tmp_path / "out" / "per_sample.jsonl").open())}
    assert rows["s0"]["judge_model"]["PR"] == pytest.approx((2 + 3 + 4 + 5) / 4)
    assert rows["s1"]["judge_model"]["PR"] == pytest.approx(4.9)


def test_dry_run_sends_nothing(dataset: tuple[Path, Path], tmp_path: Path) -> None:
    export, preds = dataset
    with FakeOpenAIServer(responder=ScriptedJudge()) as server:
        result = _evaluate(export, preds, tmp_path / "out", server, tmp_path / "cache", "--dry-run")
        assert result.exit_code == 0, result.output
        assert server.request_count() == 0
    assert "20 judge requests" in result.output and not (tmp_path / "out" / "results.json").exists()


def test_batch_mode_gives_the_same_figures(dataset: tuple[Path, Path], tmp_path: Path) -> None:
    export, preds = dataset
    with FakeOpenAIServer(responder=ScriptedJudge(), batch_polls_until_done=0) as server:
        result = _evaluate(export, preds, tmp_path / "out", server, tmp_path / "cache", "--batch", "--batch-poll", "0")
        assert result.exit_code == 0, result.output
        assert server.request_count("chat") == 0 and server.request_count("batch_lines") == 20
    table = json.loads((tmp_path / "out" / "results.json").read_text())["judge"]
    assert table["Win Rate"] == pytest.approx(50.0)
    assert table["model"]["TR"] == pytest.approx((3.0 + 4.9) / 2)
