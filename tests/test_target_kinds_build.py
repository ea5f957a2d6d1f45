"""Issue 22, build side: ``--multi-share`` / ``--empty-share`` through the offline provider.

Empty targets must be truly absent, multi-target dialogues must name each target once, the
shares must leave a default build byte for byte as it was, and ``prist stats`` reports them.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from conftest import read_jsonl, run_cli

from prist_builder.pipeline.targets import choose_slots, choose_targets, kinds_rng, target_sets
from prist_builder.providers.absent import absent_conflict, forms
from prist_builder.providers.offline.knowledge import lookup
from prist_builder.records import DialogueRecord, ElementsRecord, TreeRecord
from prist_builder.records.limits import OBJ_TOKEN, SEG_TOKEN

SHARES = ("--multi-share", "0.2", "--empty-share", "0.1")


@pytest.fixture(scope="module")
def mixed_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``prist demo --multi-share 0.2 --empty-share 0.1``: the run folder (printed output beside it)."""
    out = tmp_path_factory.mktemp("mixed") / "demo"
    result = run_cli("demo", "--out", out, *SHARES)
    assert result.exit_code == 0, result.output
    (out / "output.txt").write_text(result.output, encoding="utf-8")
    return out / "run"


def _records(run: Path) -> tuple[dict[str, ElementsRecord], list[TreeRecord], list[DialogueRecord]]:
    elements = {r["image_id"]: ElementsRecord.model_validate(r) for r in read_jsonl(run / "elements.jsonl")}
    trees = [TreeRecord.model_validate(r) for r in read_jsonl(run / "trees.jsonl")]
    dialogues = [DialogueRecord.model_validate(r) for r in read_jsonl(run / "dialogues.jsonl")]
    return elements, trees, dialogues


def _names_in_image(record: ElementsRecord) -> set[str]:
    """Every region label and element name of an image, in all forms, with the knowledge
    table's name and aliases of each (the independent side of the absent check)."""
    out: set[str] = set()
    for label in [r.label for r in record.image.regions] + [e.name for e in record.elements]:
        out |= forms(label)
        category = lookup(label)
        if category.known:
            for name in (category.name, *category.aliases):
                out |= forms(name)
    return out


def test_empty_targets_are_truly_absent(mixed_demo: Path) -> None:
    elements, trees, dialogues = _records(mixed_demo)
    empty = [d for d in dialogues if d.kind == "empty"]
    assert empty, "the mixed demo wrote no empty-target dialogue"
    for dialogue in empty:
        record = elements[dialogue.image_id]
        thing = dialogue.focus
        assert absent_conflict(thing, record) is None
        wanted = forms(thing) | ({lookup(thing).name, *lookup(thing).aliases} if lookup(thing).known else set())
        wanted = {f for w in wanted for f in forms(w)}
        present = _names_in_image(record)
        assert not wanted & present, f"{dialogue.sample_id}: {thing!r} is in the image as {wanted & present}"
        for label in present:  # no label holds the thing as its head noun ("office chair" / "chair")
            assert not any(label.endswith(" " + w) or w.endswith(" " + label) for w in wanted), (thing, label)
        for element in record.elements:
            words = f" {element.description.lower()} "
            assert not any(f" {w} " in words or f" {w}." in words for w in wanted), (thing, element.description)
        final = dialogue.turns[-1].content
        assert SEG_TOKEN not in final and OBJ_TOKEN not in final and thing in final
        assert dialogue.target_element_id.startswith("none") and dialogue.mask is None
        tree = next(t for t in trees if t.image_id == dialogue.image_id)
        path = next(p for p in tree.paths if p.target_element_id == dialogue.target_element_id)
        assert path.kind == "empty" and path.absent == thing
        assert tree.node(path.node_ids[-1]).answer.startswith(("No", "Sadly not"))


def test_absent_conflict_names_labels_synonyms_parts_and_descriptions(mixed_demo: Path) -> None:
    elements, _, _ = _records(mixed_demo)
    record = next(iter(elements.values()))
    label = record.image.regions[0].label
    assert absent_conflict(label, record) is not None
    assert absent_conflict(f"a {label}s", record) is not None  # article and plural
    assert absent_conflict("zebra crossing sign with a hat", record) is None
    chair = record.model_copy(deep=True)
    chair.elements[0].name = "office chair"
    assert "office chair" in (absent_conflict("chairs", chair) or "")
    sofa = record.model_copy(deep=True)
    sofa.elements[0].name = lookup("couch").name  # the table's category of "couch"
    assert absent_conflict("couch", sofa) is not None
    described = record.model_copy(deep=True)
    described.elements[0].description = "A man resting on a wooden bench."
    assert "bench" in (absent_conflict("bench", described) or "")


def test_multi_target_dialogues_validate(mixed_demo: Path) -> None:
    elements, trees, dialogues = _records(mixed_demo)
    multi = [d for d in dialogues if d.kind == "multi"]
    assert multi, "the mixed demo wrote no multi-target dialogue"
    for dialogue in multi:
        final = dialogue.turns[-1].content
        assert final.count(SEG_TOKEN) == final.count(OBJ_TOKEN) == len(dialogue.targets) >= 2
        ids = [t.element_id for t in dialogue.targets]
        assert dialogue.target_element_id == "+".join(ids)
        record = elements[dialogue.image_id]
        kinds = {lookup(record.element(i).name).name for i in ids}
        assert len(kinds) == 1 and len(ids) <= 4
        for target in dialogue.targets:
            assert target.mask == record.image.region(record.element(target.element_id).region_id).mask
        assert dialogue.mask is not None
        tree = next(t for t in trees if t.image_id == dialogue.image_id)
        path = next(p for p in tree.paths if p.target_element_id == dialogue.target_element_id)
        assert path.kind == "multi" and path.target_element_ids == ids
    for tree in trees:  # the tree's bounds hold with the new kinds
        assert 2 <= len(tree.paths) <= 4


def test_stats_report_the_shares_and_count_targets(mixed_demo: Path) -> None:
    output = (mixed_demo.parent / "output.txt").read_text(encoding="utf-8")
    assert "single : multi : empty" in output
    stats = json.loads(run_cli("stats", mixed_demo, "--json").output)
    _, _, dialogues = _records(mixed_demo)
    kinds = [d.kind for d in dialogues]
    assert stats["targets"] == sum(len(d.target_list()) for d in dialogues)
    assert stats["targets"] == kinds.count("single") + sum(len(d.targets) for d in dialogues if d.kind == "multi")
    for kind in ("single", "multi", "empty"):
        assert abs(stats[kind] - 100.0 * kinds.count(kind) / len(kinds)) < 0.1
    assert stats["multi"] > 0 and stats["empty"] > 0
    assert abs(stats["coarse"] + stats["medium"] + stats["fine"] - 100.0) < 0.2
    manifest = json.loads((mixed_demo / "manifest.json").read_text())
    assert manifest["config"]["multi_share"] == 0.2 and manifest["config"]["empty_share"] == 0.1


def test_default_build_is_unchanged_by_zero_shares(voc: Path, tmp_path: Path) -> None:
    plain, zero = tmp_path / "plain", tmp_path / "zero"
    assert run_cli("build", "all", "--run", plain, "--labelme", voc, "--workers", "1").exit_code == 0
    args = ("--multi-share", "0", "--empty-share", "0")
    assert run_cli("build", "all", "--run", zero, "--labelme", voc, "--workers", "1", *args).exit_code == 0
    for name in ("elements.jsonl", "trees.jsonl", "dialogues.jsonl", "rejects.jsonl"):
        assert (plain / name).read_bytes() == (zero / name).read_bytes(), name
    for run in (plain, zero):
        config = json.loads((run / "manifest.json").read_text())["config"]
        assert "multi_share" not in config and "empty_share" not in config
    assert "multi" not in run_cli("stats", plain).output


def test_shares_are_checked_and_fixed_once_trees_exist(voc: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    bad = run_cli("build", "all", "--run", run, "--labelme", voc, "--multi-share", "0.7", "--empty-share", "0.5")
    assert bad.exit_code == 2 and "above 1" in bad.output
    assert run_cli("build", "elements", "--run", run, "--labelme", voc, "--workers", "1").exit_code == 0
    assert run_cli("build", "trees", "--run", run, "--multi-share", "0.5", "--empty-share", "0.5").exit_code == 0
    kinds = {p.get("kind", "single") for t in read_jsonl(run / "trees.jsonl") for p in t["paths"]}
    assert kinds & {"multi", "empty"}
    again = run_cli("build", "trees", "--run", run, "--multi-share", "0")
    assert again.exit_code == 1 and "multi_share" in again.output
    assert run_cli("build", "dialogues", "--run", run).exit_code == 0
    _, trees, dialogues = _records(run)
    assert len(dialogues) == sum(len(t.paths) for t in trees)
    assert {d.kind for d in dialogues} == kinds


def test_slots_keep_the_targets_and_draw_sets_of_one_kind(voc: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert run_cli("build", "elements", "--run", run, "--labelme", voc, "--workers", "1").exit_code == 0
    for line in read_jsonl(run / "elements.jsonl"):
        record = ElementsRecord.model_validate(line)
        targets = choose_targets(record, random.Random(0))
        for members in target_sets(record):
            assert 2 <= len(members) <= 4 and len({lookup(e.name).name for e in members}) == 1
        never = choose_slots(record, targets, kinds_rng(0, record.image_id), 0.0, 0.0)
        assert [(s.kind, s.elements) for s in never] == [("single", (t,)) for t in targets]
        always = choose_slots(record, targets, kinds_rng(0, record.image_id), 0.0, 1.0)
        assert [s.kind for s in always] == ["empty"] * len(targets)
        multi = choose_slots(record, targets, kinds_rng(0, record.image_id), 1.0, 0.0)
        assert len(multi) == len(targets)
        sets = [tuple(e.element_id for e in s.elements) for s in multi if s.kind == "multi"]
        valid = [tuple(e.element_id for e in m) for m in target_sets(record)]
        assert len(sets) == len(set(sets)) and all(m in valid for m in sets)
        assert bool(sets) == bool(valid)


def test_reference_comparison_reads_multi_and_empty_samples(mixed_demo: Path, tmp_path: Path) -> None:
    result = run_cli("stats", mixed_demo, "--reference", mixed_demo, "--out", tmp_path)
    assert result.exit_code == 0, result.output
    table = (tmp_path / "reference.md").read_text(encoding="utf-8")
    row = next(line for line in table.splitlines() if line.startswith("| samples single : multi : empty"))
    _, _, dialogues = _records(mixed_demo)
    multi = round(100.0 * sum(d.kind == "multi" for d in dialogues) / len(dialogues))
    assert f": {multi} :" in row
    kinds = json.loads((tmp_path / "reference.json").read_text())["run"]["kinds"]
    assert kinds["empty"] > 0 and kinds["multi"] > 0


def test_sets_group_by_region_label_not_by_the_written_name(voc: Path, tmp_path: Path) -> None:
    """A model-written step 1 names each instance apart ("woman in a denim jacket"); the set is
    still every instance of the region label (the issue 22 relay run formed none by name)."""
    run = tmp_path / "run"
    assert run_cli("build", "elements", "--run", run, "--labelme", voc, "--workers", "1").exit_code == 0
    found = 0
    for line in read_jsonl(run / "elements.jsonl"):
        record = ElementsRecord.model_validate(line)
        renamed = record.model_copy(
            update={
                "elements": [
                    e.model_copy(update={"name": f"{e.name} number {i} holding a cup"})
                    for i, e in enumerate(record.elements)
                ]
            }
        )
        by_label = [tuple(e.element_id for e in s) for s in target_sets(record)]
        assert [tuple(e.element_id for e in s) for s in target_sets(renamed)] == by_label
        found += len(by_label)
    assert found  # the fixture has repeated labels
