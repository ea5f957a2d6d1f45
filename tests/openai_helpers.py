"""Shared helpers of the ``openai`` provider tests: inputs, a fake server, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

from prist_builder.testing.build_args import openai_build_args
from prist_builder.testing.synthetic import write_synthetic

TREE_PROMPT = "as a tree"
DIALOGUES_PROMPT = "turn reasoning paths"


def tagged_inputs(folder: Path, count: int, seed: int = 5) -> Path:
    """Synthetic Labelme inputs whose labels name their image (``ball-img3``), so faults can aim at one image."""
    write_synthetic(folder, count, seed=seed)
    for index, path in enumerate(sorted(folder.glob("*.json"))):
        doc = json.loads(path.read_text())
        for shape in doc["shapes"]:
            shape["label"] = f"{shape['label']}-img{index}"
        path.write_text(json.dumps(doc))
    return folder


def openai_args(server, run: Path, inputs: Path, *extra: object) -> list[str]:
    """``prist build all`` arguments for the openai provider against a fake server."""
    return openai_build_args(server.base_url, inputs, run, *extra, api_key="sk-SECRET-123")


FOUR_CHILDREN_TREE = json.dumps(
    {
        "questions": [{"target_element_id": f"e{i}", "reasoning_question": "Which?"} for i in range(4)],
        "root": {"question": "What is here?", "answer": "Things."},
        "nodes": [
            {"id": f"c{i}", "parent": "root", "question": f"Part {i}?", "answer": "A part.", "element_id": f"e{i}"}
            for i in range(4)
        ],
    }
)
"""A well-formed tree answer whose root has 4 children, naming targets e0..e3 whether or not the
request has them (the strict schema's ``enum`` then refuses it)."""

SCHEMA_VIOLATING = json.dumps({"elements": [{"name": "cup"}]})
"""JSON that parses but misses required fields."""
