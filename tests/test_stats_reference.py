"""``prist stats RUN --reference FILE``: the measures, the files it writes, and the offline targets."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from conftest import fixtures_dir, run_cli
from PIL import Image
from test_offline_geometry import corpus

from prist_builder.pipeline.build import build
from prist_builder.pipeline.manifest import BuildConfig
from prist_builder.stats_reference import Conversation, compare, distinct, load, load_official, measure


@pytest.fixture(scope="module")
def official() -> Path:
    return fixtures_dir("prist_official") / "test.json"


def test_distinct_n_counts_within_each_text() -> None:
    assert distinct(["a b a b"], 1) == pytest.approx(2 / 4)
    assert distinct(["a b a b"], 2) == pytest.approx(2 / 3)
    assert distinct(["a b", "b a"], 2) == pytest.approx(1.0)  # no n-gram spans two answers
    assert distinct([], 2) == 0.0


def test_the_authors_split_measures_as_the_issue_reports(official: Path) -> None:
    dialogues = load_official(official)
    stats = measure(dialogues, sample_size=43, seed=0)
    assert stats.dialogues == 508
    assert (stats.turns_mean, stats.turns_min, stats.turns_max) == (3.88, 3, 5)
    assert stats.turns_histogram == {"3": 65, "4": 439, "5": 4}
    assert stats.selection_questions < 1 and 40 <= stats.function_questions <= 50
    assert stats.position_turns <= 5 and stats.distinct_2 >= 0.75
    assert stats.granularity_source == "paper Table 2" and stats.unknown_labels == -1
    assert 11 <= stats.answer_words <= 14 and 480 <= stats.dialogue_chars <= 500  # issue 19's 12.6 and 492
    assert stats.position_answers <= 6 and stats.position_dialogues <= 15


def test_rules_on_hand_made_dialogues() -> None:
    seg = ("Please segment it.", "[OBJ]cup[SEG].")
    templated = [
        Conversation([("Which of them is on the left?", "The red cup is on the left."), seg], focus="red cup")
        for _ in range(3)
    ]
    reasoning = [Conversation([("Why would I need a cup here?", "To hold tea while you read."), seg], focus="cup")]
    stats = measure(templated + reasoning, sample_size=4)
    assert stats.templated == pytest.approx(75.0)  # six of the eight reasoning messages share one skeleton
    assert stats.selection_questions == pytest.approx(75.0)
    assert stats.function_questions == pytest.approx(25.0)
    assert stats.position_turns == pytest.approx(75.0)
    assert stats.top_opening == "the red cup is" and stats.top_opening_share == pytest.approx(75.0)


def test_the_issue_tables_measures_on_a_tiny_hand_made_reference(tmp_path: Path) -> None:
    """Words per answer, characters per dialogue, position words in answers and dialogues,
    and images whose dialogues open alike, on a reference file written by hand."""
    seg = [{"from": "human", "value": "Can you segment it?"}, {"from": "gpt", "value": "Sure, [OBJ]it[SEG]."}]

    def item(image: str, question: str, answer: str) -> dict:
        return {
            "img_id": image,
            "focus": "it",
            "dialogue": [{"from": "human", "value": question}, {"from": "gpt", "value": answer}, *seg],
        }

    data = [
        item("a", "What keeps tea warm?", "The teapot on the left does."),  # 6 words, a position word
        item("a", "What keeps tea warm?", "A knitted cosy over the pot."),  # opens like the first: image a
        item("b", "Who serves the food?", "The waiter in the white apron."),  # 6 words
        item("b", "What is the sign for?", "It tells drivers to stop here now."),  # 7 words
    ]
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(data))
    conversations = load_official(path)
    assert [c.image for c in conversations] == ["a", "a", "b", "b"]
    stats = measure(conversations, sample_size=4)
    assert stats.answer_words == pytest.approx((6 + 6 + 6 + 7) / 4, abs=0.05)
    chars = [sum(len(m["value"]) for m in d["dialogue"]) for d in data]
    assert stats.dialogue_chars == pytest.approx(sum(chars) / 4, abs=0.05)
    assert stats.position_answers == pytest.approx(25.0)
    assert stats.position_dialogues == pytest.approx(25.0)
    assert (stats.images, stats.images_opening_alike) == (2, 1)
    no_ids = measure([Conversation(c.turns) for c in conversations], sample_size=4)
    assert (no_ids.images, no_ids.images_opening_alike) == (4, 0)  # without ids, each its own image
    from prist_builder.stats_report import markdown

    table = markdown(stats, stats, "run", "ref")
    assert "words per assistant reasoning answer" in table and "| 1 of 2 |" in table.replace("  ", " ")


def test_a_bad_reference_is_one_line_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"not": "a list"}')
    with pytest.raises(ValueError, match="bad.json: expected a JSON list"):
        load_official(bad)
    bad.write_text('[{"dialog": []}]')
    with pytest.raises(ValueError, match="bad.json: item 0 has no 'dialogue' list"):
        load_official(bad)


@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo + Labelme fixtures built offline at seed 0 (the issue's measurement set)."""
    root = tmp_path_factory.mktemp("stats")
    folder = corpus(root / "inputs")
    asyncio.run(build(root / "run", BuildConfig(labelme=str(folder), seed=0), ("elements", "trees", "dialogues")))
    return root / "run"


def test_offline_dialogues_meet_the_targets_against_the_authors_split(corpus_run: Path, official: Path) -> None:
    """Issue 15's acceptance figures at seed 0 on the demo and the fixtures."""
    ours, theirs = compare(load(corpus_run), load(official), seed=0)
    assert abs(ours.turns_mean - theirs.turns_mean) <= 0.3 and ours.turns_min >= 3 and ours.turns_max <= 5
    assert ours.distinct_2 >= 0.6
    assert ours.function_questions >= 40
    assert ours.selection_questions <= 10
    assert ours.position_turns <= 5
    assert ours.top_opening_share <= 10
    assert ours.unknown_labels == 0
    assert ours.granularity_source == "masks" and sum(ours.granularity.values()) == pytest.approx(100, abs=0.5)


def test_stats_reference_command_writes_markdown_json_and_png(corpus_run: Path, official: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = run_cli("stats", corpus_run, "--reference", official, "--out", out)
    assert result.exit_code == 0, result.output
    assert "distinct-2" in result.output and "test.json" in result.output
    data = json.loads((out / "reference.json").read_text())
    assert data["reference"]["dialogues"] == 508 and data["run"]["dialogues"] >= 25
    assert data["names"] == {"run": "run", "reference": "test.json"}
    table = (out / "reference.md").read_text()
    assert table.startswith("| measure | test.json | run |") and "selection questions" in table
    with Image.open(out / "reference.png") as image:
        assert image.size == (900, 360)
    again = run_cli("stats", corpus_run, "--reference", corpus_run, "--out", tmp_path / "self")
    assert again.exit_code == 0, again.output
    same = json.loads((tmp_path / "self" / "reference.json").read_text())
    assert same["run"] == same["reference"]
    as_json = run_cli("stats", corpus_run, "--reference", official, "--out", tmp_path / "j", "--json")
    assert as_json.exit_code == 0 and json.loads(as_json.output)["reference"]["turns_max"] == 5
    missing = run_cli("stats", corpus_run, "--reference", tmp_path / "nope.json")
    assert missing.exit_code != 0 and "nope.json: no such file" in missing.output
