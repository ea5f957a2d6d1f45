"""Record validators: reasoning-tree shape, dialogue rules, JSON Schema output."""

from __future__ import annotations

import json

import networkx as nx
import pytest
from conftest import run_cli
from pydantic import ValidationError

from prist_builder.records import SCHEMAS, DialogueRecord, TreeRecord


def tree_data(**changes) -> dict:
    """A valid tree: root n0 with children n1 (-> leaf n3 for e0) and n2 (leaf for e1)."""
    data = {
        "image_id": "img",
        "provider": "test",
        "root": "n0",
        "nodes": [
            {"id": "n0", "question": "What is here?", "answer": "A cup and a spoon."},
            {"id": "n1", "question": "What is on the left?", "answer": "A cup."},
            {"id": "n2", "question": "Which one is small?", "answer": "The spoon.", "element_id": "e1"},
            {"id": "n3", "question": "Which one is it?", "answer": "The cup.", "element_id": "e0"},
        ],
        "edges": [["n0", "n1"], ["n0", "n2"], ["n1", "n3"]],
        "paths": [
            {"target_element_id": "e0", "reasoning_question": "What holds coffee?", "node_ids": ["n0", "n1", "n3"]},
            {"target_element_id": "e1", "reasoning_question": "What stirs it?", "node_ids": ["n0", "n2"]},
        ],
    }
    data.update(changes)
    return data


def test_valid_tree_and_networkx_view() -> None:
    tree = TreeRecord.model_validate(tree_data())
    graph = tree.to_networkx()
    assert isinstance(graph, nx.DiGraph)
    assert set(graph.edges) == {("n0", "n1"), ("n0", "n2"), ("n1", "n3")}
    assert graph.nodes["n3"]["element_id"] == "e0"


def test_tree_rejects_a_fourth_child() -> None:
    data = tree_data()
    for index in range(4, 7):
        data["nodes"].append({"id": f"n{index}", "question": "q?", "answer": "a."})
        data["edges"].append(["n0", f"n{index}"])
    with pytest.raises(ValidationError, match="'n0' has 5 children; at most 3"):
        TreeRecord.model_validate(data)


def test_tree_child_limit_comes_from_context() -> None:
    with pytest.raises(ValidationError, match="at most 1 allowed"):
        TreeRecord.model_validate(tree_data(), context={"max_children": 1})


@pytest.mark.parametrize(
    ("edges", "message"),
    [
        ([["n0", "n1"], ["n0", "n2"], ["n1", "n3"], ["n3", "n1"]], "cycle"),
        ([["n0", "n1"], ["n0", "n2"]], "not connected"),
        ([["n0", "n1"], ["n0", "n2"], ["n1", "n3"], ["n2", "n3"]], "two parents"),
        ([["n0", "n1"], ["n0", "n2"], ["n1", "n9"]], "unknown node"),
    ],
)
def test_tree_shape_errors(edges: list, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        TreeRecord.model_validate(tree_data(edges=edges))


def test_each_target_must_be_a_leaf_reached_along_edges() -> None:
    data = tree_data()
    data["paths"][0]["node_ids"] = ["n0", "n1"]
    with pytest.raises(ValidationError, match="not a leaf"):
        TreeRecord.model_validate(data)
    data = tree_data()
    data["paths"][0]["node_ids"] = ["n0", "n3"]
    with pytest.raises(ValidationError, match="not an edge"):
        TreeRecord.model_validate(data)
    data = tree_data()
    data["paths"][1]["target_element_id"] = "e5"
    with pytest.raises(ValidationError, match="element_id is 'e1'"):
        TreeRecord.model_validate(data)


def test_target_count_bounds() -> None:
    data = tree_data()
    data["paths"] = data["paths"][:1]
    with pytest.raises(ValidationError, match="1 target paths; expected 2 to 4"):
        TreeRecord.model_validate(data)


def dialogue_data(turns: int = 3, **changes) -> dict:
    messages = []
    for index in range(turns - 1):
        messages += [
            {"role": "user", "content": f"Question {index}?"},
            {"role": "assistant", "content": f"Answer {index}."},
        ]
    messages += [
        {"role": "user", "content": "Please segment it."},
        {"role": "assistant", "content": "Sure, [OBJ]red cup[SEG]."},
    ]
    data = {
        "sample_id": "img-e0",
        "image_id": "img",
        "provider": "test",
        "turns": messages,
        "focus": "red cup",
        "target_element_id": "e0",
    }
    data.update(changes)
    return data


def test_valid_dialogue_counts_turns() -> None:
    dialogue = DialogueRecord.model_validate(dialogue_data(4))
    assert dialogue.num_turns == 4
    assert dialogue.mask is None


@pytest.mark.parametrize("turns", [2, 8])
def test_turn_bounds_default_to_3_to_7(turns: int) -> None:
    with pytest.raises(ValidationError, match=f"{turns} turns; expected 3 to 7"):
        DialogueRecord.model_validate(dialogue_data(turns))


def test_turn_bounds_are_configurable() -> None:
    DialogueRecord.model_validate(dialogue_data(2), context={"min_turns": 2, "max_turns": 2})
    with pytest.raises(ValidationError, match="expected 5 to 6"):
        DialogueRecord.model_validate(dialogue_data(4), context={"min_turns": 5, "max_turns": 6})


def test_final_turn_rule() -> None:
    data = dialogue_data()
    data["turns"][-1]["content"] = "Here it is: [SEG]."
    with pytest.raises(ValidationError, match=r"\[OBJ\]<focus>\[SEG\] exactly once"):
        DialogueRecord.model_validate(data)
    data = dialogue_data(focus="blue cup")
    with pytest.raises(ValidationError, match="segments 'red cup' but focus is 'blue cup'"):
        DialogueRecord.model_validate(data)
    data = dialogue_data()
    data["turns"][1]["content"] = "It is [OBJ]red cup[SEG]."
    with pytest.raises(ValidationError, match=r"turns\[1\] uses"):
        DialogueRecord.model_validate(data)


def test_roles_alternate_starting_with_the_user() -> None:
    data = dialogue_data()
    data["turns"][0]["role"] = "assistant"
    with pytest.raises(ValidationError, match=r"turns\[0\].role is 'assistant'"):
        DialogueRecord.model_validate(data)
    data = dialogue_data()
    data["turns"].append({"role": "user", "content": "one more?"})
    with pytest.raises(ValidationError, match="ends with the assistant"):
        DialogueRecord.model_validate(data)


@pytest.mark.parametrize("step", [*SCHEMAS, "tree", "dialogue"])
def test_schema_command_prints_json_schema(step: str) -> None:
    result = run_cli("schema", step)
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert schema["type"] == "object" and "properties" in schema


def test_schema_command_rejects_unknown_step() -> None:
    result = run_cli("schema", "nonsense")
    assert result.exit_code == 2
