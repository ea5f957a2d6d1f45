"""Multi-target and empty-target paths of the ``openai`` provider (issue 22).

Requests are rendered through the real provider: with a stub client answering with the
scripted stand-in, and through the fake server with the real client (re-asks).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import re
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli
from openai_helpers import openai_args
from test_openai_prompts import StubClient, build, labelme_input, text_of

from prist_builder.llm.client import AnswerRuleError
from prist_builder.llm.strict_schema import response_format
from prist_builder.pipeline.manifest import BuildConfig
from prist_builder.providers.absent import absent_conflict
from prist_builder.providers.base import StepContext, TargetSlot
from prist_builder.providers.openai.provider import OpenAIProvider
from prist_builder.records import DialogueRecord, ElementsRecord
from prist_builder.sources import load_item
from prist_builder.testing import FakeOpenAIServer
from prist_builder.testing.fake_openai.prist_model import prist_responder
from prist_builder.testing.synthetic import write_synthetic

pytestmark = pytest.mark.usefixtures("private_cache")


def slotted(provider: OpenAIProvider, folder: Path, slots_of: Any) -> tuple[ElementsRecord, Any, list[Any]]:
    """Steps 1-3 of a 3-region input (labels person, person, bottle) with the slots
    ``slots_of(elements)``; the elements record, the tree and the dialogues."""
    loaded = load_item(labelme_input(folder, 3), pixels=False)

    async def steps() -> tuple[ElementsRecord, Any, list[Any]]:
        ctx = StepContext(rng=random.Random(1))
        elements = await provider.elements(loaded, ctx)
        record = ElementsRecord(image_id="img", provider="openai", image=loaded.record, elements=elements)
        tree = await provider.tree(record, [], StepContext(rng=random.Random(1), slots=slots_of(elements)))
        dialogues = await provider.dialogues(record, tree, ctx)
        await provider.aclose()
        return record, tree, dialogues

    return asyncio.run(steps())


def mixed(elements: list[Any]) -> list[TargetSlot]:
    """A single path (the bottle), a set (the two people) and an empty path."""
    return [
        TargetSlot("single", (elements[2],)),
        TargetSlot("multi", (elements[0], elements[1])),
        TargetSlot("empty"),
    ]


def test_requests_without_slots_are_the_single_target_ones(tmp_path: Path) -> None:
    """Slots that are all single render byte for byte what no slots render (issue 22:
    shares 0 change nothing), and the requests' digest is pinned."""
    plain, (_, targets, _, _) = build(tmp_path / "plain", 3)
    client = StubClient()
    provider = OpenAIProvider(client=client, api_key="sk-test")  # type: ignore[arg-type]
    order = [t.element_id for t in targets]
    singles = slotted(
        provider,
        tmp_path / "slots",
        lambda e: [TargetSlot("single", (x,)) for x in sorted(e, key=lambda x: order.index(x.element_id))],
    )
    assert [d.kind for d in singles[2]] == ["single"] * 3
    for ours, theirs in zip(client.requests, plain.requests, strict=True):
        assert ours.messages == theirs.messages
        assert response_format(ours.answer_model) == response_format(theirs.answer_model)
        assert (ours.max_tokens, ours.prompt_version) == (theirs.max_tokens, theirs.prompt_version)
    blob = json.dumps(
        [[r.messages, response_format(r.answer_model), r.max_tokens] for r in plain.requests], sort_keys=True
    )
    assert hashlib.sha256(blob.encode()).hexdigest()[:16] == PINNED_DIGEST


PINNED_DIGEST = "24ed6ee0fb36eaaa"
"""SHA-256 (first 16 hex digits) of the three requests of a 3-region input without slots.
The slots code itself changed none of main's (b96edbe: ``ebdbe7fe9607f094``, kept through
commit b39df5b); this value is after issue 19's prompt edits (tree-6, dialogues-6) and with
the stand-in naming a repeated label "second person" (its step 1 answer is in steps 2-3). A
change here means single-target builds send new requests: bump the prompt version with it."""


def test_multi_and_empty_paths_are_asked_and_become_valid_records(tmp_path: Path) -> None:
    client = StubClient()
    provider = OpenAIProvider(client=client, api_key="sk-test")  # type: ignore[arg-type]
    record, tree, dialogues = slotted(provider, tmp_path, mixed)
    step2, step3 = (re.sub(r"\s+", " ", text_of(r)) for r in client.requests[1:])
    assert "Targets, one question and one path each: e2 (bottle), e0+e1 (the set of e0 and e1), none (" in step2
    assert "Set path e0+e1: its answer is all of e0 (person) and e1 (second person) together" in step2
    assert "this one answer may run past 15 words when the set is large" in step2
    assert "None path none: first name, in its question's `absent_thing`" in step2
    assert "Some paths are not about one object; there, what the rules below say of the target holds for" in step2
    assert "holds for the whole set or the thing the image lacks:" in step2
    assert "Path for e0+e1 (the set of e0 person and e1 second person)" in step3
    assert "`member_foci` gives e0, then e1, each with its `element_id`" in step3
    assert "Path none asks for something the image lacks" in step3 and 'its `focus` is "umbrella"' in step3
    schema2 = json.dumps(response_format(client.requests[1].answer_model))
    assert '"absent_thing"' in schema2 and json.dumps(["e2", "e0+e1", "none"]) in schema2
    assert '"member_foci"' in json.dumps(response_format(client.requests[2].answer_model))
    # the tree: a path per slot, of its kind
    paths = {p.target_element_id: p for p in tree.paths}
    assert list(paths) == ["e2", "e0+e1", "none"]
    assert paths["e0+e1"].kind == "multi" and paths["e0+e1"].target_element_ids == ["e0", "e1"]
    assert tree.node(paths["e0+e1"].node_ids[-1]).element_id == "e0+e1"
    empty = paths["none"]
    assert empty.kind == "empty" and empty.absent == "umbrella"
    assert absent_conflict(empty.absent, record) is None
    # the dialogues: kinds, targets, final answers that agree with them
    by_id = {d.target_element_id: d for d in dialogues}
    multi, none, single = by_id["e0+e1"], by_id["none"], by_id["e2"]
    assert single.kind == "single" and multi.kind == "multi" and none.kind == "empty"
    assert multi.sample_id == "img-e0+e1" and none.sample_id == "img-none"
    assert [t.element_id for t in multi.target_list()] == ["e0", "e1"]
    assert [t.focus for t in multi.targets] == ["person", "second person"]
    assert multi.turns[-1].content.count("[SEG]") == 2
    assert "[OBJ]person[SEG]" in multi.turns[-1].content and "[OBJ]second person[SEG]" in multi.turns[-1].content
    assert multi.target_region_ids == ["r0", "r1"] and multi.mask is not None
    assert all(t.mask is not None for t in multi.targets)
    assert none.target_list() == [] and none.mask is None and none.focus == "umbrella"
    assert "[SEG]" not in none.turns[-1].content and "umbrella" in none.turns[-1].content
    for dialogue in dialogues:  # they round-trip as records
        DialogueRecord.model_validate_json(dialogue.model_dump_json())


def test_multi_mask_is_the_union_of_its_members(tmp_path: Path) -> None:
    from prist_builder.annotation.masks import decode

    provider = OpenAIProvider(client=StubClient(), api_key="sk-test")  # type: ignore[arg-type]
    record, _, dialogues = slotted(provider, tmp_path, mixed)
    multi = next(d for d in dialogues if d.kind == "multi")
    parts = [decode(record.image.region(r).mask) for r in ("r0", "r1")]
    assert (decode(multi.mask) == (parts[0] | parts[1])).all()
    assert [(decode(t.mask) == p).all() for t, p in zip(multi.targets, parts, strict=True)] == [True, True]


def present_first(times: int) -> Any:
    """A stand-in that names a marked label ("persons") as the absent thing ``times`` times."""
    calls = {"tree": 0}

    def responder(body: dict) -> dict:
        answer = prist_responder(body)
        if "questions" in answer and calls["tree"] < times:
            calls["tree"] += 1
            for question in answer["questions"]:
                if question.get("absent_thing"):
                    question["absent_thing"] = "Persons"
        return answer

    return responder


def chats(server: FakeOpenAIServer) -> list[str]:
    return [json.dumps(entry[1].get("body", {})) for entry in server.log if entry[0] == "chat"]


def test_an_absent_thing_that_is_in_the_image_is_asked_again(tmp_path: Path) -> None:
    with FakeOpenAIServer(responder=present_first(1), keep_bodies=True) as server:
        provider = OpenAIProvider(base_url=server.base_url, api_key="sk-test")
        _, tree, dialogues = slotted(provider, tmp_path, mixed)
        sent = chats(server)
    assert len(sent) == 4  # elements, tree, tree again, dialogues
    reason = re.search(r"absent_thing of none: ([^;]*); name something the image does not hold", sent[2])
    assert reason is not None and "region r0" in reason.group(1) and "person" in reason.group(1).lower()
    assert [p.kind for p in tree.paths] == ["single", "multi", "empty"]
    assert tree.paths[2].absent == "umbrella"
    assert sorted(d.kind for d in dialogues) == ["empty", "multi", "single"]


def test_an_absent_thing_in_the_image_twice_drops_the_empty_path(tmp_path: Path) -> None:
    with FakeOpenAIServer(responder=present_first(5), keep_bodies=True) as server:
        provider = OpenAIProvider(base_url=server.base_url, api_key="sk-test")
        _, tree, dialogues = slotted(provider, tmp_path, mixed)
        assert len(chats(server)) == 4  # one re-ask, then the path is dropped
    assert [p.target_element_id for p in tree.paths] == ["e2", "e0+e1"]
    assert [d.kind for d in dialogues] == ["single", "multi"]


@pytest.mark.skipif(
    "multi_share" not in BuildConfig.model_fields, reason="--multi-share/--empty-share come with the build helper"
)
def test_openai_build_with_shares_writes_multi_and_empty_dialogues(tmp_path: Path) -> None:
    inputs = tmp_path / "inputs"
    write_synthetic(inputs, 6, seed=5)  # labels repeat within an image: sets to draw
    run = tmp_path / "run"
    with FakeOpenAIServer(responder=prist_responder) as server:
        args = openai_args(server, run, inputs, "--multi-share", "0.5", "--empty-share", "0.3")
        result = run_cli(*args)
        assert result.exit_code == 0, result.output
    dialogues = [json.loads(line) for line in (run / "dialogues.jsonl").read_text().splitlines()]
    kinds = [d.get("kind", "single") for d in dialogues]
    assert "multi" in kinds and "empty" in kinds
    elements = {e["image_id"]: ElementsRecord.model_validate(e) for e in map(json.loads, open(run / "elements.jsonl"))}
    for line in dialogues:
        dialogue = DialogueRecord.model_validate(line, context={"min_turns": 3, "max_turns": 7})
        if dialogue.kind == "empty":
            assert absent_conflict(dialogue.focus, elements[dialogue.image_id]) is None
        if dialogue.kind == "multi":
            assert dialogue.turns[-1].content.count("[SEG]") == len(dialogue.targets) >= 2


def test_two_empty_paths_ask_for_two_different_things(tmp_path: Path) -> None:
    def same_thing(answer: dict) -> dict:
        for question in answer.get("questions", []):
            if question.get("absent_thing"):
                question["absent_thing"] = "umbrella"
        return answer

    two_empty = lambda e: [TargetSlot("single", (e[2],)), TargetSlot("empty"), TargetSlot("empty")]  # noqa: E731
    provider = OpenAIProvider(client=StubClient(), api_key="sk-test")  # type: ignore[arg-type]
    _, tree, dialogues = slotted(provider, tmp_path / "a", two_empty)
    step2 = re.sub(r"\s+", " ", text_of(provider.client.requests[1]))
    assert "there, what the rules below say of the target holds for the thing the image lacks:" in step2
    assert "set" not in step2.split("Some paths are not about one object")[1].split("1. `questions`")[0]
    assert [(p.target_element_id, p.absent) for p in tree.paths[1:]] == [
        ("none", "umbrella"),
        ("none-1", "bicycle pump"),
    ]
    assert [d.sample_id for d in dialogues] == ["img-e2", "img-none", "img-none-1"]
    provider = OpenAIProvider(client=StubClient(rewrite=same_thing), api_key="sk-test")  # type: ignore[arg-type]
    with pytest.raises(AnswerRuleError, match="none and none-1 both ask for 'umbrella'"):
        slotted(provider, tmp_path / "b", two_empty)


def test_batch_build_with_shares_writes_what_the_online_build_writes(tmp_path: Path) -> None:
    """Set and none paths through the Batch API: the same requests, so the same records as
    an online build; the none paths' absent_thing checks run on the batch answers too."""
    inputs = tmp_path / "inputs"
    write_synthetic(inputs, 4, seed=5)
    shares = ("--multi-share", "0.5", "--empty-share", "0.3")
    runs = {}
    for mode, extra in (("online", ()), ("batch", ("--batch", "--batch-poll", "0"))):
        runs[mode] = tmp_path / mode
        with FakeOpenAIServer(responder=prist_responder) as server:
            result = run_cli(*openai_args(server, runs[mode], inputs, *shares, *extra))
            assert result.exit_code == 0, result.output
            if mode == "batch":
                assert server.batches(), "no batch was submitted"
    lines = {mode: (run / "dialogues.jsonl").read_text().splitlines() for mode, run in runs.items()}
    kinds = [json.loads(line).get("kind", "single") for line in lines["batch"]]
    assert "multi" in kinds and "empty" in kinds
    assert sorted(lines["batch"]) == sorted(lines["online"])
