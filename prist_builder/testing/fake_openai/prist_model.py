"""A scripted stand-in for GPT-4o that answers ``prist``'s three prompts validly.

It reads what the prompts list (marked regions, elements, targets, paths, turn bounds)
and writes a minimal but rule-abiding answer, deterministically. Tests and benchmarks use
it as the fake server's responder; faults (4 children, bad JSON, ...) are scripted on top
with fault rules.
"""

from __future__ import annotations

import re
from typing import Any

from prist_builder.testing.fake_openai.chat import message_text

_REGION = re.compile(r"^- (r\d+): '(.*?)', box", re.MULTILINE)
_ELEMENT = re.compile(r"^- (e\d+): (.*?) — ", re.MULTILINE)
_TARGETS = re.compile(r"Targets, one reasoning path each: (.*?)\.\n")
_PATH_NODES = re.compile(r"a path is (\d+) to (\d+) nodes long")
_TURNS = re.compile(r"conversation of (\d+) to (\d+) turns")
_PATH = re.compile(r"^Path to (e\d+) \((.*?)\); reasoning question: (.*)$", re.MULTILINE)
_NODE = re.compile(r"^  \d+\. Q: (.*?) A: (.*)$", re.MULTILINE)
MAX_CHILDREN = 3


def _step(body: dict[str, Any]) -> str:
    fmt = body.get("response_format") or {}
    name = (fmt.get("json_schema") or {}).get("name", "")
    system = message_text(body["messages"][0]).lower()
    if name == "ElementsAnswer" or "catalogue" in system:
        return "elements"
    if name == "TreeAnswer" or "as a tree" in system:
        return "tree"
    return "dialogues"


def _elements(prompt: str) -> dict:
    regions = _REGION.findall(prompt)
    if not regions:
        regions = [(None, name) for name in ("red sign", "blue door", "white bicycle")]
    return {
        "elements": [
            {
                "name": label,
                "description": f"A {label} seen clearly in the picture.",
                "colour": None,
                "position": "center",
                "count": None,
                "visible_text": None,
                "region_id": region,
            }
            for region, label in regions
        ]
    }


def _tree(prompt: str) -> dict:
    names = dict(_ELEMENT.findall(prompt))
    targets = re.findall(r"(e\d+) \(", _TARGETS.search(prompt).group(1))
    low, _ = (int(v) for v in _PATH_NODES.search(prompt).groups())
    nodes = [
        {
            "id": "root",
            "question": "What is going on in this picture?",
            "answer": "Several things are in view.",
            "element_id": None,
        }
    ]
    edges, paths = [], []
    groups = (
        [targets[i : i + 2] for i in range(0, len(targets), 2)]
        if len(targets) > MAX_CHILDREN
        else [[t] for t in targets]
    )
    for g, group in enumerate(groups):
        group_id = f"g{g}"
        nodes.append(
            {
                "id": group_id,
                "question": f"What about part {g + 1} of the scene?",
                "answer": f"It holds {', '.join(names.get(t, t) for t in group)}.",
                "element_id": None,
            }
        )
        edges.append({"parent": "root", "child": group_id})
        for target in group:
            chain, parent = ["root", group_id], group_id
            for extra in range(max(0, low - 3)):
                node_id = f"{target}-x{extra}"
                nodes.append(
                    {
                        "id": node_id,
                        "question": f"What detail of the {names.get(target, target)} helps?",
                        "answer": "Its shape and colour.",
                        "element_id": None,
                    }
                )
                edges.append({"parent": parent, "child": node_id})
                chain.append(node_id)
                parent = node_id
            leaf = f"{target}-leaf"
            nodes.append(
                {
                    "id": leaf,
                    "question": "Which object is it?",
                    "answer": f"The {names.get(target, target)}.",
                    "element_id": target,
                }
            )
            edges.append({"parent": parent, "child": leaf})
            paths.append(
                {
                    "target_element_id": target,
                    "reasoning_question": f"Which thing is the {names.get(target, target)}?",
                    "node_ids": chain + [leaf],
                }
            )
    return {"root": "root", "nodes": nodes, "edges": edges, "paths": paths}


def _dialogues(prompt: str) -> dict:
    low, high = (int(v) for v in _TURNS.search(prompt).groups())
    blocks = _PATH.split(prompt)[1:]  # target, name, question, body, ...
    dialogues = []
    for index in range(0, len(blocks), 4):
        target, name, _, body = blocks[index : index + 4]
        turns = [{"question": q, "answer": a} for q, a in _NODE.findall(body)][: high - 1]
        while len(turns) < low - 1:
            turns.append({"question": f"What else is true of the {name}?", "answer": f"The {name} is easy to spot."})
        turns.append({"question": "Please segment the object we talked about.", "answer": f"[OBJ]{name}[SEG]"})
        dialogues.append({"target_element_id": target, "focus": name, "turns": turns})
    return {"dialogues": dialogues}


def prist_responder(body: dict[str, Any]) -> dict:
    """Answer one ``prist`` request (any of the three steps, first ask or re-ask)."""
    prompt = message_text(body["messages"][1])
    return {"elements": _elements, "tree": _tree, "dialogues": _dialogues}[_step(body)](prompt)
