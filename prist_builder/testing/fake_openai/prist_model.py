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

_REGION = re.compile(r"^- (r\d+): labelled '(.*?)'; box", re.MULTILINE)
_ELEMENT = re.compile(r"^- (e\d+) \((?:marked r\d+|unmarked context)\): (.*?)\. ", re.MULTILINE)
_TARGETS = re.compile(r"Targets, one question and one path each: (.*?)\.\n")
_PATH_NODES = re.compile(r"its own chain of (\d+) nodes?\b")
_FOLLOW_UPS = (
    ("Who would need the {name} most?", "Anyone here who has a task the {name} helps with."),
    ("What tells the {name} apart?", "What it is used for and the text on it."),
    ("What state is the {name} in?", "It looks ready to be used."),
)
_PATH = re.compile(r"^Path for (e\d+) \((.*?)\), \d+ nodes?; reasoning question: (.*)$", re.MULTILINE)
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
    seen: dict[str, int] = {}
    totals = {label: sum(1 for _, other in regions if other == label) for _, label in regions}
    elements = []
    for region, label in regions:
        seen[label] = seen.get(label, 0) + 1
        name = label if seen[label] == 1 else f"{label} number {seen[label]}"  # names must differ
        elements.append(
            {
                "region_id": region,
                "name": name,
                "description": f"A {label} seen clearly in the picture.",
                "colour": None,
                "position": "centre",
                "count": totals[label],  # all of its kind, this one included
                "visible_text": [],
            }
        )
    return {"elements": elements}


def _tree(prompt: str) -> dict:
    names = dict(_ELEMENT.findall(prompt))
    targets = re.findall(r"(e\d+) \(", _TARGETS.search(prompt).group(1))
    low = int(_PATH_NODES.search(prompt).group(1))
    questions, nodes = [], []
    themed = targets[: len(targets) - MAX_CHILDREN + 1] if len(targets) > MAX_CHILDREN else []
    if themed:  # the root holds at most three children: two targets share a theme node
        nodes.append(
            {
                "id": "theme",
                "parent": "root",
                "question": "What do these things have in common?",
                "answer": "They are used together.",
                "element_id": None,
            }
        )
    for target in targets:
        name = names.get(target, target)
        questions.append({"target_element_id": target, "reasoning_question": f"What is the {name} there for?"})
        parent = "theme" if target in themed else "root"
        follow_ups = [(q.format(name=name), a.format(name=name)) for q, a in _FOLLOW_UPS]  # no question twice
        follow_ups += [(f"What else about the {name} matters, point {n}?", "Its use here.") for n in range(low)]
        for depth in range(low):
            leaf = depth == low - 1
            node_id = f"{target}-n{depth}"
            nodes.append(
                {
                    "id": node_id,
                    "parent": parent,
                    "question": f"What is the {name} there for?" if depth == 0 else follow_ups[depth - 1][0],
                    "answer": f"The {name} serves the people here." if depth == 0 else follow_ups[depth - 1][1],
                    "element_id": target if leaf else None,
                }
            )
            parent = node_id
    return {
        "questions": questions,
        "root": {"question": "What is going on in this picture?", "answer": "Several things are in view."},
        "nodes": nodes,
    }


def _dialogues(prompt: str) -> dict:
    blocks = _PATH.split(prompt)[1:]  # target, name, question, body, ...
    dialogues = []
    for index in range(0, len(blocks), 4):
        target, name, _, body = blocks[index : index + 4]
        turns = [{"question": q, "answer": a} for q, a in _NODE.findall(body)]
        dialogues.append({"target_element_id": target, "focus": name, "turns": turns})
    return {"dialogues": dialogues}


def prist_responder(body: dict[str, Any]) -> dict:
    """Answer one ``prist`` request (any of the three steps, first ask or re-ask)."""
    prompt = message_text(body["messages"][1])
    return {"elements": _elements, "tree": _tree, "dialogues": _dialogues}[_step(body)](prompt)
