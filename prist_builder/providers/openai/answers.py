"""What the model is asked to return at each step (JSON), and how that becomes records.

These models are the model-facing contract: small, flat, every field required (nullable
where optional), so they convert to OpenAI strict structured outputs. The pipeline's
records (``prist_builder.records``) stay the storage contract.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ElementAnswer(_Answer):
    """One visible element (step 1)."""

    name: str
    description: str
    colour: str | None
    position: str | None
    count: int | None
    visible_text: str | None
    region_id: str | None


class ElementsAnswer(_Answer):
    """Step 1 answer: the elements of one image."""

    elements: list[ElementAnswer]


class NodeAnswer(_Answer):
    """One reasoning-tree node: a sub-question and its answer."""

    id: str
    question: str
    answer: str
    element_id: str | None


class EdgeAnswer(_Answer):
    """A parent -> child edge."""

    parent: str
    child: str


class PathAnswer(_Answer):
    """The path of one target, with its reasoning question."""

    target_element_id: str
    reasoning_question: str
    node_ids: list[str]


class TreeAnswer(_Answer):
    """Step 2 answer: reasoning questions and the reasoning tree."""

    root: str
    nodes: list[NodeAnswer]
    edges: list[EdgeAnswer]
    paths: list[PathAnswer]


class TurnAnswer(_Answer):
    """One turn: the user's question and the assistant's answer."""

    question: str
    answer: str


class DialogueAnswer(_Answer):
    """One conversation about one target."""

    target_element_id: str
    focus: str
    turns: list[TurnAnswer]


class DialoguesAnswer(_Answer):
    """Step 3 answer: one conversation per reasoning path."""

    dialogues: list[DialogueAnswer]
