"""Cost per model (issue 19, point 7): each family's published image rule, schema tokens,
the dry-run table naming the rule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cli
from PIL import Image

from prist_builder.llm.images import image_rule, image_tokens
from prist_builder.llm.pricing import load_prices
from prist_builder.llm.strict_schema import schema_tokens
from prist_builder.providers.openai import answers
from prist_builder.providers.openai.estimate import estimate, slot_rule_tokens
from prist_builder.sources import discover

FIXTURES = Path(__file__).resolve().parents[1] / ".." / "shared" / "fixtures"


@pytest.mark.parametrize(
    ("model", "size", "detail", "tokens"),
    [
        ("gpt-4o-2024-08-06", (1024, 1024), "high", 765),  # 4 tiles: 85 + 4 * 170 (published example)
        ("gpt-4o", (2048, 4096), "high", 1105),  # 6 tiles (published example)
        ("gpt-4o", (4096, 8192), "low", 85),
        ("gpt-4o-mini-2024-07-18", (1024, 1024), "high", 2833 + 4 * 5667),
        ("gpt-4o-mini", (640, 480), "low", 2833),
        ("gpt-4.1", (1024, 1024), "high", 765),
        ("gpt-4.1-mini", (1024, 1024), "high", 1659),  # 1024 patches * 1.62
        ("gpt-4.1-mini", (1800, 2400), "high", 2353),  # shrunk to 1452 patches (published example) * 1.62
        ("gpt-4.1-nano", (1024, 1024), "low", 2520),  # patches ignore detail: 1024 * 2.46
        ("o4-mini", (512, 512), "high", 441),  # 256 * 1.72
    ],
)
def test_image_tokens_follow_each_model_family_rule(
    model: str, size: tuple[int, int], detail: str, tokens: int
) -> None:
    assert image_tokens(*size, detail, model) == tokens


def test_unknown_models_say_they_assume_gpt4o() -> None:
    assert image_rule("llava-13b").name == "gpt-4o (assumed)"
    assert image_rule("openai/gpt-4o-mini").name == "gpt-4o-mini"


def test_schema_tokens_are_counted_and_grow_with_the_ids() -> None:
    small = schema_tokens(answers.elements_answer(("r0", "r1")))
    large = schema_tokens(answers.elements_answer(tuple(f"r{i}" for i in range(25))))
    assert 100 < small < large


def _inputs(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    Image.new("RGB", (1024, 768)).save(folder / "a.png")
    doc = {
        "version": "5.4.1",
        "flags": {},
        "shapes": [
            {
                "label": "cup",
                "points": [[10, 10], [100, 100]],
                "group_id": None,
                "shape_type": "rectangle",
                "flags": {},
            },
            {
                "label": "cup",
                "points": [[200, 10], [300, 100]],
                "group_id": None,
                "shape_type": "rectangle",
                "flags": {},
            },
            {
                "label": "__ignore__",
                "points": [[0, 0], [5, 5]],
                "group_id": None,
                "shape_type": "rectangle",
                "flags": {},
            },
        ],
        "imagePath": "a.png",
        "imageData": None,
        "imageHeight": 768,
        "imageWidth": 1024,
    }
    (folder / "a.json").write_text(json.dumps(doc))
    return folder


def test_estimate_prices_images_per_model_and_counts_schemas(tmp_path: Path) -> None:
    items, _ = discover(labelme=_inputs(tmp_path))
    prices = load_prices(None)
    four = estimate(items, "gpt-4o", "high", 1024, prices)
    mini = estimate(items, "gpt-4o-mini", "high", 1024, prices)
    assert [s.image_tokens for s in four] == [765] * 3
    assert [s.image_tokens for s in mini] == [2833 + 4 * 5667] * 3
    both = estimate(items, "gpt-4o", "high", 1024, prices, clean_too=True)
    assert [s.image_tokens for s in both] == [2 * 765] * 3  # the marked and the clean image
    schema = schema_tokens(answers.elements_answer(("r0", "r1")))
    assert four[0].prompt_tokens > 765 + schema


def test_dry_run_table_names_the_model_rule(tmp_path: Path) -> None:
    folder = _inputs(tmp_path)
    args = ["build", "all", "--labelme", str(folder), "--run", str(tmp_path / "run"), "--provider", "openai"]
    for model, rule in (("gpt-4o-mini", "2833 + 5667 per 512px tile"), ("gpt-4.1-nano", "2.46 x 32px patches")):
        result = run_cli(*args, "--model", model, "--api-key", "sk-test", "--dry-run")
        assert result.exit_code == 0, result.output
        assert rule in " ".join(result.output.split())


@pytest.mark.skipif(not FIXTURES.exists(), reason="shared fixtures absent")
def test_dry_run_on_the_fixtures_counts_their_regions() -> None:
    items, _ = discover(labelme=FIXTURES / "labelme_voc")
    rows = estimate(items, "gpt-4o", "high", 1024, load_prices(None))
    assert rows[0].image_tokens == 3 * 255  # three VOC photos of 500 px: one tile each


def test_estimate_adds_set_and_none_paths_in_expectation(tmp_path: Path) -> None:
    """Issue 22's shares: the none path's ``absent_thing``, the sets' ``member_foci`` and both
    paths' rules are priced; shares of 0 leave the single-target estimate as it was."""
    items, _ = discover(labelme=_inputs(tmp_path))
    prices = load_prices(None)
    base = {s.step: s for s in estimate(items, "gpt-4o", "high", 1024, prices)}
    zero = {s.step: s for s in estimate(items, "gpt-4o", "high", 1024, prices, multi_share=0.0, empty_share=0.0)}
    assert zero == base
    empty = {s.step: s for s in estimate(items, "gpt-4o", "high", 1024, prices, empty_share=1.0)}
    multi = {s.step: s for s in estimate(items, "gpt-4o", "high", 1024, prices, multi_share=1.0)}
    assert empty["elements"] == base["elements"] and multi["elements"] == base["elements"]
    # two regions, so two paths: every one a none path (its rule and the absent_thing field)
    rules = slot_rule_tokens()
    grown = empty["tree"].prompt_tokens - base["tree"].prompt_tokens
    assert grown > 2 * rules["tree"]["empty"]  # the rule twice, plus the schema's absent_thing
    assert empty["tree"].completion_tokens > base["tree"].completion_tokens
    assert multi["dialogues"].prompt_tokens - base["dialogues"].prompt_tokens > 2 * rules["dialogues"]["multi"]
    assert multi["dialogues"].completion_tokens > base["dialogues"].completion_tokens
    assert empty["dialogues"].prompt_tokens - base["dialogues"].prompt_tokens == 2 * rules["dialogues"]["empty"]


def test_slot_rules_are_priced_from_the_rendered_prompt_text() -> None:
    rules = slot_rule_tokens()
    for step in ("tree", "dialogues"):
        for kind in ("multi", "empty"):
            assert 40 < rules[step][kind] < 300, (step, kind, rules[step][kind])
