"""A scripted stand-in for GPT-4o that answers ``prist``'s three prompts validly.

It reads what the prompts list (marked regions, elements, targets, paths, turn bounds)
and writes a minimal but rule-abiding answer, deterministically. Multi-target paths (ids
joined by ``+``) end in the set; empty-target paths (``none...``) name as their absent
thing the first of :data:`ABSENT_THINGS` the prompt does not mention. Tests and benchmarks use
it as the fake server's responder; faults (4 children, bad JSON, ...) are scripted on top
with fault rules.
"""

from __future__ import annotations

import json
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
    ("Why would someone reach for the {name}?", "It does a job that people here have."),
)
_PATH = re.compile(r"^Path for ([\w+-]+) \((.*?)\), \d+ nodes?; reasoning question: (.*)$", re.MULTILINE)
_ABSENT_PATH = re.compile(r"^no (.*) in the image$")
ABSENT_THINGS = ("umbrella", "bicycle pump", "fire extinguisher", "ladder", "kettle", "first aid kit")
"""Things an empty-target path asks for, tried in order against the prompt's text."""
_NODE = re.compile(r"^  \d+\. Q: (.*?) A: (.*)$", re.MULTILINE)
MAX_CHILDREN = 3
_ORDINALS = ("", "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth")


def _step(body: dict[str, Any]) -> str:
    fmt = body.get("response_format") or {}
    name = (fmt.get("json_schema") or {}).get("name", "")
    system = message_text(body["messages"][0]).lower()
    if name == "ElementsAnswer" or "catalogue" in system:
        return "elements"
    if name == "TreeAnswer" or "as a tree" in system:
        return "tree"
    return "dialogues"


def _nth(n: int, label: str) -> str:
    """``"second person"``: a repeated label's name, distinct but of the same kind."""
    return f"{_ORDINALS[n]} {label}" if n < len(_ORDINALS) else f"{label} number {n}"


def _elements(prompt: str) -> dict:
    regions = _REGION.findall(prompt)
    if not regions:
        regions = [(None, name) for name in ("red sign", "blue door", "white bicycle")]
    seen: dict[str, int] = {}
    totals = {label: sum(1 for _, other in regions if other == label) for _, label in regions}
    elements = []
    for region, label in regions:
        seen[label] = seen.get(label, 0) + 1
        name = label if seen[label] == 1 else _nth(seen[label], label)  # names must differ
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


def _absent_thing(prompt: str, path_id: str = "none") -> str:
    """The first of :data:`ABSENT_THINGS` that the prompt's element list does not mention
    (the second such for ``none-1``, and so on)."""
    listed = prompt.split("Relations between the targets:")[0].lower()
    index = int(path_id.rpartition("-")[2]) if "-" in path_id else 0
    return [thing for thing in ABSENT_THINGS if thing not in listed][index]


def _path_name(target: str, names: dict[str, str], prompt: str) -> str:
    """What a path's questions call its target: an element's name, a set, an absent thing."""
    if target.startswith("none"):
        return _absent_thing(prompt, target)
    if "+" in target:
        return "set of " + " and ".join(names.get(e, e) for e in target.split("+"))
    return names.get(target, target)


def _tree(prompt: str, absent: bool = False) -> dict:
    names = dict(_ELEMENT.findall(prompt))
    targets = re.findall(r"([\w+-]+) \(", _TARGETS.search(prompt).group(1))
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
        name = _path_name(target, names, prompt)
        question = {"target_element_id": target, "reasoning_question": f"What is the {name} there for?"}
        if absent:
            question = {"target_element_id": target, "absent_thing": None, **question}
            if target.startswith("none"):
                question["absent_thing"] = name
        questions.append(question)
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
            if leaf and target.startswith("none"):
                nodes[-1]["answer"] = f"Nothing in this image is a {name}; none is in view."
            parent = node_id
    return {
        "questions": questions,
        "root": {"question": "What is going on in this picture?", "answer": "Several things are in view."},
        "nodes": nodes,
    }


def _dialogues(prompt: str, members: bool = False) -> dict:
    names = dict(_ELEMENT.findall(prompt))
    blocks = _PATH.split(prompt)[1:]  # target, name, question, body, ...
    dialogues = []
    for index in range(0, len(blocks), 4):
        target, name, _, body = blocks[index : index + 4]
        turns = [{"question": q, "answer": a} for q, a in _NODE.findall(body)]
        absent = _ABSENT_PATH.match(name)
        focus = absent.group(1) if absent else name
        dialogue: dict[str, Any] = {"target_element_id": target, "focus": focus}
        if members:
            ids = target.split("+") if "+" in target else []
            dialogue["member_foci"] = [{"element_id": e, "focus": names.get(e, e)} for e in ids]
        dialogues.append({**dialogue, "turns": turns})
    return {"dialogues": dialogues}


def prist_responder(body: dict[str, Any]) -> dict:
    """Answer one ``prist`` request (any of the three steps, first ask or re-ask)."""
    prompt = message_text(body["messages"][1])
    schema = json.dumps(body.get("response_format") or {}) + prompt  # JSON mode: the schema is in the prompt
    step = _step(body)
    if step == "tree":
        return _tree(prompt, absent='"absent_thing"' in schema)
    if step == "dialogues":
        return _dialogues(prompt, members='"member_foci"' in schema)
    return _elements(prompt)
