"""What the model is asked to return at each step (JSON), and how that becomes records.

These models are the model-facing contract: small, flat, every field required (nullable
where optional), so they convert to OpenAI strict structured outputs. The pipeline's
records (``prist_builder.records``) stay the storage contract.

Ids are restricted to the request's own: :func:`elements_answer`, :func:`tree_answer` and
:func:`dialogues_answer` build, per set of ids, a model whose id fields are ``Literal``
(``enum`` in the JSON Schema), so that strict decoding cannot produce an unknown id. Field
order is the order the model writes in: the region id before its description, the
reasoning questions before the tree (question-first, section 3.2.2), the focus before
the turns. Models are made once per id set (:func:`functools.lru_cache`).
"""

from __future__ import annotations

import functools
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

ID_MODELS = 512
"""Answer model classes kept per step (one per distinct id set)."""


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _ids(ids: tuple[str, ...]) -> Any:
    return Literal[ids]  # type: ignore[valid-type]


@functools.lru_cache(maxsize=ID_MODELS)
def elements_answer(region_ids: tuple[str, ...]) -> type[BaseModel]:
    """Step 1's answer model for an image whose marked regions are ``region_ids`` (empty: a
    bare image, ``region_id`` is then always null).

    Fields of an element: ``region_id`` (one of the ids, or null for an unmarked context
    element), ``name``, ``description``, ``colour``, ``position``, ``count``,
    ``visible_text`` (a list of strings, empty when nothing is written on it).
    """
    region: Any = (_ids(region_ids) | None) if region_ids else None
    element = create_model(
        "ElementAnswer",
        __base__=_Answer,
        __doc__="One visible element (step 1).",
        region_id=(region, ...),
        name=(str, ...),
        description=(str, ...),
        colour=(str | None, ...),
        position=(str | None, ...),
        count=(int | None, ...),
        visible_text=(list[str], Field(...)),
    )
    return create_model(
        "ElementsAnswer",
        __base__=_Answer,
        __doc__="Step 1 answer: the elements of one image.",
        elements=(list[element], ...),  # type: ignore[valid-type]
    )


class RootAnswer(_Answer):
    """The tree's root: the question about the whole scene and its answer."""

    question: str
    answer: str


@functools.lru_cache(maxsize=ID_MODELS)
def tree_answer(target_ids: tuple[str, ...], absent_ids: tuple[str, ...] = ()) -> type[BaseModel]:
    """Step 2's answer model for the targets ``target_ids``: the reasoning questions first
    (``questions``: ``target_element_id``, ``reasoning_question``), then the tree: the
    ``root`` (the scene question and its answer) and the ``nodes`` below it, each naming
    its ``parent``; a target's path runs from the root down to the node whose
    ``element_id`` is the target (so paths and edges cannot disagree with the nodes).

    ``target_ids`` are path ids: an element id, a set's ids joined by ``+`` (a multi-target
    path) or ``none...`` (an empty-target path, issue 22). With ``absent_ids`` (the empty
    paths) each question also carries ``absent_thing`` before its question: the thing the
    image does not hold (null on the other paths). Without them the model is exactly the
    single-target one.
    """
    target: Any = _ids(target_ids)
    fields: dict[str, Any] = {"target_element_id": (target, ...)}
    if absent_ids:
        fields["absent_thing"] = (str | None, ...)
    fields["reasoning_question"] = (str, ...)
    question = create_model(
        "ReasoningQuestion",
        __base__=_Answer,
        __doc__="A target's reasoning question (step 2-1).",
        **fields,
    )
    node = create_model(
        "NodeAnswer",
        __base__=_Answer,
        __doc__="One node below the root: a sub-question and its answer.",
        id=(str, ...),
        parent=(str, ...),
        question=(str, ...),
        answer=(str, ...),
        element_id=(target | None, ...),
    )
    return create_model(
        "TreeAnswer",
        __base__=_Answer,
        __doc__="Step 2 answer: reasoning questions, then the reasoning tree.",
        questions=(list[question], ...),  # type: ignore[valid-type]
        root=(RootAnswer, ...),
        nodes=(list[node], ...),  # type: ignore[valid-type]
    )


class TurnAnswer(_Answer):
    """One turn: the user's question and the assistant's answer."""

    question: str
    answer: str


@functools.lru_cache(maxsize=ID_MODELS)
def dialogues_answer(target_ids: tuple[str, ...], member_ids: tuple[str, ...] = ()) -> type[BaseModel]:
    """Step 3's answer model: per target, its ``focus`` then the reasoning ``turns`` (the
    final segmentation turn is added in code).

    With ``member_ids`` (the elements of the multi-target paths, issue 22) each
    conversation also lists ``member_foci`` after its ``focus``: one ``element_id`` and
    ``focus`` per member of a set, in answer order (an empty list on other paths). Without
    them the model is exactly the single-target one.
    """
    fields: dict[str, Any] = {"target_element_id": (_ids(target_ids), ...), "focus": (str, ...)}
    if member_ids:
        member = create_model(
            "MemberFocus",
            __base__=_Answer,
            __doc__="The focus of one member of a set (multi-target path).",
            element_id=(_ids(member_ids), ...),
            focus=(str, ...),
        )
        fields["member_foci"] = (list[member], ...)  # type: ignore[valid-type]
    fields["turns"] = (list[TurnAnswer], ...)
    dialogue = create_model(
        "DialogueAnswer",
        __base__=_Answer,
        __doc__="One conversation about one target, without its final segmentation turn.",
        **fields,
    )
    return create_model(
        "DialoguesAnswer",
        __base__=_Answer,
        __doc__="Step 3 answer: one conversation per reasoning path.",
        dialogues=(list[dialogue], ...),  # type: ignore[valid-type]
    )
