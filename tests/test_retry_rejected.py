"""``prist build ... --retry-rejected`` (issue 20): inputs the run rejected are tried again
with the current settings; the old reject lines stay as history, a retried input that now
succeeds is no longer counted as rejected, one that fails again gets a new line, nothing
built is sent again; online and with --batch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import check_run, read_jsonl, run_cli
from openai_helpers import SCHEMA_VIOLATING, openai_args, tagged_inputs

from prist_builder.testing import BatchFaultRule, FakeOpenAIServer, FaultRule
from prist_builder.testing.fake_openai.prist_model import prist_responder

pytestmark = pytest.mark.usefixtures("private_cache")
RECORDS = ("elements.jsonl", "trees.jsonl", "dialogues.jsonl")


def _lines(run: Path, name: str) -> set[bytes]:
    return set((run / name).read_bytes().splitlines())


def _reject_img1(server: FakeOpenAIServer, batch: bool, times: int = 50) -> None:
    if batch:  # the Batch API refuses img1's lines (a 400 on a line: the input is rejected)
        server.add_fault(BatchFaultRule("fail", match="-img1", times=times, status=400, message="Invalid image."))
    else:  # the model keeps breaking the schema for img1: re-asked, then rejected
        server.add_fault(FaultRule("content", match="-img1'", times=times, content=SCHEMA_VIOLATING))


@pytest.mark.parametrize("batch", [False, True], ids=["online", "batch"])
def test_a_retried_reject_that_succeeds_gives_the_records_of_a_run_where_it_never_failed(
    batch: bool, tmp_path: Path
) -> None:
    inputs, run, clean = tagged_inputs(tmp_path / "in", 4), tmp_path / "run", tmp_path / "clean"
    mode = ("--batch", "--batch-poll", 0) if batch else ()
    with FakeOpenAIServer(responder=prist_responder) as server:
        args = openai_args(server, run, inputs, "--max-reasks", 1, *mode)
        _reject_img1(server, batch)
        assert run_cli(*args).exit_code == 0
        history = (run / "rejects.jsonl").read_bytes()
        assert history and all(json.loads(line)["image_id"] == "img_0001" for line in history.splitlines())
        assert "img_0001" not in {r["image_id"] for r in read_jsonl(run / "elements.jsonl")}
        server.clear_faults()
        sent_before = server.request_count("chat") + server.request_count("batch_lines")
        result = run_cli(*args, "--retry-rejected")
        assert result.exit_code == 0, result.output
        sent = server.request_count("chat") + server.request_count("batch_lines") - sent_before
        assert 0 < sent <= 3  # img1's three steps, nothing already built
        assert run_cli(*openai_args(server, clean, inputs, "--max-reasks", 1, *mode)).exit_code == 0
    for name in RECORDS:  # same records (as sets of lines) as a run where img1 never failed
        assert _lines(run, name) == _lines(clean, name), name
    assert (run / "rejects.jsonl").read_bytes() == history  # the reject history is kept
    counts = json.loads((run / "manifest.json").read_text())["counts"]
    assert counts["rejects"] == 0 and counts["reject_lines"] == len(history.splitlines())
    assert json.loads((run / "manifest.json").read_text())["steps"]["elements"]["rejected"] == 0
    check_run(run)


def test_a_retried_reject_that_fails_again_gets_a_new_line(tmp_path: Path) -> None:
    inputs, run = tagged_inputs(tmp_path / "in", 3), tmp_path / "run"
    with FakeOpenAIServer(responder=prist_responder) as server:
        args = openai_args(server, run, inputs, "--max-reasks", 0)
        _reject_img1(server, batch=False)
        assert run_cli(*args).exit_code == 0
        assert len(read_jsonl(run / "rejects.jsonl")) == 1
        assert run_cli(*args).exit_code == 0  # a plain re-run does not retry
        assert len(read_jsonl(run / "rejects.jsonl")) == 1
        assert run_cli(*args, "--retry-rejected").exit_code == 0
    rejects = read_jsonl(run / "rejects.jsonl")
    assert len(rejects) == 2 and {r["image_id"] for r in rejects} == {"img_0001"}
    counts = json.loads((run / "manifest.json").read_text())["counts"]
    assert counts["rejects"] == 1 and counts["reject_lines"] == 2


def _breaking_responder(state: dict) -> object:
    """The fake PRIST model, but while ``state["break"]`` the first conversation of img1's
    step 3 answer has a focus made of segmentation tokens (the other paths are well written)."""

    def respond(body: dict) -> dict:
        answer = prist_responder(body)
        text = json.dumps(body["messages"][1])
        state["asked"].append(text)
        if state["break"] and "dialogues" in answer and len(answer["dialogues"]) > 1 and "-img1." in text:
            answer["dialogues"][0]["focus"] = "[OBJ][SEG]"
            state["broken"] = answer["dialogues"][0]["target_element_id"]
        return answer

    return respond


@pytest.mark.parametrize("batch", [False, True], ids=["online", "batch"])
def test_a_rejected_dialogue_is_retried_alone_and_the_others_of_its_image_stay(
    batch: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inputs, run, clean = tagged_inputs(tmp_path / "in", 3), tmp_path / "run", tmp_path / "clean"
    mode = ("--batch", "--batch-poll", 0) if batch else ()
    state: dict = {"break": True, "broken": None, "asked": []}
    with FakeOpenAIServer(responder=_breaking_responder(state)) as server:
        args = openai_args(server, run, inputs, "--max-reasks", 1, *mode)
        assert run_cli(*args).exit_code == 0
        broken = f"img_0001-{state['broken']}"
        (reject,) = read_jsonl(run / "rejects.jsonl")  # that dialogue alone, named by its sample id
        assert reject["input_id"] == broken and reject["step"] == "dialogues" and "focus" in reject["reason"]
        first = (run / "dialogues.jsonl").read_bytes()
        kept = [line for line in first.splitlines() if json.loads(line)["image_id"] == "img_0001"]
        assert kept and broken not in {json.loads(line)["sample_id"] for line in kept}
        assert json.loads((run / "manifest.json").read_text())["counts"]["rejects"] == 1
        state["break"] = False
        assert run_cli(*args).exit_code == 0  # a plain re-run leaves the partly built image as it is
        assert (run / "dialogues.jsonl").read_bytes() == first
        state["asked"].clear()
        result = run_cli(*args, "--retry-rejected")
        assert result.exit_code == 0, result.output
        (prompt,) = state["asked"]  # one step 3 request, for the missing path only
        assert f"Path for {state['broken']} " in prompt and prompt.count("Path for ") == 1
        monkeypatch.setenv("PRIST_CACHE_DIR", str(tmp_path / "clean-cache"))  # the batch answers were cached
        assert run_cli(*openai_args(server, clean, inputs, "--max-reasks", 1, *mode)).exit_code == 0
    after = (run / "dialogues.jsonl").read_bytes()
    assert after.startswith(first)  # the dialogues written before are kept byte for byte
    (added,) = after[len(first) :].splitlines()
    assert json.loads(added)["sample_id"] == broken
    for name in RECORDS:  # same records (as sets of lines) as a run where it never failed
        assert _lines(run, name) == _lines(clean, name), name
    assert len(read_jsonl(run / "rejects.jsonl")) == 1  # the history is kept
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["counts"]["rejects"] == 0 and manifest["counts"]["reject_lines"] == 1
    assert manifest["counts"]["dialogues"] == len(_lines(clean, "dialogues.jsonl"))
    check_run(run)
