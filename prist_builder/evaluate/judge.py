"""Reasoning quality with an LLM judge: PR, LC, CC, TR and the win rate (Table 4, Appendix C.4.2-C.4.3).

Each dialogue is graded twice per repeat: once with the model's answers and once with the
reference (human) answers, both under the reference's questions, on the 0-5 rubric of
``prompts/judge.md`` (Progressiveness, Logical Coherence, Content Consistency, Target
Relevance). Every dimension is scored ``repeats`` times (5 in the paper) and averaged. A
sample is a *win* when the model's mean over the four dimensions is strictly above the
human answers' mean; the win rate is the share of wins among samples both sides could be
graded on, in percent.

Requests go through :class:`prist_builder.llm.client.LLMClient`, the execution layer of the
build: response cache (a re-run re-pays nothing; each repeat has its own cache entry),
retries, accounting, the Batch API, and re-asks with the exact errors when an answer is not
valid JSON of :class:`JudgeAnswer` or has a score outside 0-5. A request still invalid after
its re-asks is reported (``judge_failed``), not guessed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from prist_builder import prompts
from prist_builder.errors import Deferred
from prist_builder.evaluate.predictions import Matched, Problems
from prist_builder.llm.client import (
    CHARS_PER_TOKEN,
    AnswerRuleError,
    LLMClient,
    NoValidAnswer,
    RequestRefused,
    StructuredRequest,
)
from prist_builder.llm.pricing import cost_usd, load_prices
from prist_builder.llm.settings import LLMSettings

DIMENSIONS = (
    ("PR", "progression"),
    ("LC", "logical_coherence"),
    ("CC", "content_consistency"),
    ("TR", "target_relevance"),
)
"""Table 4 columns and the :class:`JudgeAnswer` fields they come from."""
REPEATS = 5
"""Scorings per dimension in the paper (Appendix C.4.2)."""
SCORE_MIN, SCORE_MAX = 0.0, 5.0
"""The rubric's range."""
MAX_TOKENS = 400
"""Completion token cap of one judge answer (four scores, a total and one sentence)."""
PERCENT = 100.0
ROLE_NAMES = {"user": "User", "assistant": "Assistant"}
Side = Literal["model", "human"]
SIDES: tuple[Side, ...] = ("model", "human")


class JudgeAnswer(BaseModel):
    """What the judge returns for one conversation (strict JSON; Figure 8's dimensions).

    Attributes:
        progression, logical_coherence, content_consistency, target_relevance: scores on 0-5
            (PR, LC, CC, TR of Table 4; the range is checked by :func:`accept`).
        total: the judge's sum of the four (not used: the scorer averages the four itself).
        summary: one sentence on strengths and weaknesses.
    """

    model_config = ConfigDict(extra="forbid")

    progression: float
    logical_coherence: float
    content_consistency: float
    target_relevance: float
    total: float
    summary: str


def judged_turns(item: Matched, side: Side, include_final: bool) -> list[tuple[str, str]]:
    """The messages graded: the reference's questions with the model's (or the reference's) answers.

    The final segmentation exchange is left out unless ``include_final`` (it is a fixed phrase).
    """
    turns = list(item.reference.turns)
    answers = iter(item.responses) if side == "model" else None
    out = []
    for role, content in turns:
        out.append((role, next(answers, "") if answers is not None and role == "assistant" else content))
    if not include_final and len(out) >= 2:
        out = out[:-2]
    return out


def dialogue_block(turns: Sequence[tuple[str, str]]) -> str:
    """The conversation as the judge reads it: ``User: ...`` / ``Assistant: ...`` lines."""
    return "\n".join(
        f"{ROLE_NAMES.get(role, role)}: {' '.join(content.split()) or '(no answer)'}" for role, content in turns
    )


def judge_request(turns: Sequence[tuple[str, str]], focus: str, repeat: int) -> StructuredRequest[JudgeAnswer]:
    """The request of one scoring. ``repeat`` joins the cache key, so each repeat is its own answer."""
    template = prompts.load("judge")
    system, user = template.render(dialogue_block=dialogue_block(turns), focus=focus)
    return StructuredRequest(
        messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
        answer_model=JudgeAnswer,
        max_tokens=MAX_TOKENS,
        prompt_version=f"{template.version}/repeat-{repeat}",
        prompt_tokens=(len(system) + len(user)) // CHARS_PER_TOKEN,
    )


def accept(answer: JudgeAnswer) -> dict[str, float]:
    """Table 4 scores of one answer.

    Raises:
        AnswerRuleError: a score outside 0-5 (the client re-asks with this message).
    """
    scores = {column: float(getattr(answer, name)) for column, name in DIMENSIONS}
    wrong = [
        f"{name} is {scores[column]}" for column, name in DIMENSIONS if not SCORE_MIN <= scores[column] <= SCORE_MAX
    ]
    if wrong:
        raise AnswerRuleError(f"every score must be between {SCORE_MIN:g} and {SCORE_MAX:g}: " + "; ".join(wrong))
    return scores


@dataclass
class JudgeRun:
    """Scores gathered so far: ``scores[(sample_id, side)]`` holds one dict per answered repeat."""

    scores: dict[tuple[str, Side], list[dict[str, float]]] = field(default_factory=dict)
    done: set[tuple[str, Side, int]] = field(default_factory=set)
    pending: int = 0


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _side_means(runs: list[dict[str, float]]) -> dict[str, float] | None:
    if not runs:
        return None
    return {column: sum(r[column] for r in runs) / len(runs) for column, _ in DIMENSIONS}


def aggregate(run: JudgeRun, sample_ids: Sequence[str], repeats: int) -> tuple[dict[str, Any], dict[str, dict]]:
    """Table 4 figures and per-sample judge scores.

    Returns ``(table, per_sample)``: ``table`` has ``model`` and ``human`` (PR, LC, CC, TR on 0-5,
    means over samples of the per-sample means over repeats), ``Win Rate`` (percent), ``wins``,
    ``compared``; ``per_sample[sample_id]`` has ``judge_model``, ``judge_human`` and ``judge_win``.
    """
    per_sample: dict[str, dict] = {}
    sides: dict[Side, list[dict[str, float]]] = {"model": [], "human": []}
    wins = compared = 0
    for sid in sample_ids:
        means = {side: _side_means(run.scores.get((sid, side), [])) for side in SIDES}
        row: dict[str, Any] = {f"judge_{side}": means[side] for side in SIDES}
        for side in SIDES:
            if means[side] is not None:
                sides[side].append(means[side])  # type: ignore[arg-type]
        if means["model"] is not None and means["human"] is not None:
            compared += 1
            won = _mean(list(means["model"].values())) > _mean(list(means["human"].values()))  # type: ignore[operator]
            wins += int(won)
            row["judge_win"] = won
        per_sample[sid] = row
    table: dict[str, Any] = {
        side: {column: _mean([m[column] for m in sides[side]]) for column, _ in DIMENSIONS} for side in SIDES
    }
    table.update(
        {
            "Win Rate": PERCENT * wins / compared if compared else None,
            "wins": wins,
            "compared": compared,
            "repeats": repeats,
            "samples": len(sample_ids),
        }
    )
    return table, per_sample


async def run_judge(
    client: LLMClient,
    matched: Sequence[Matched],
    repeats: int,
    include_final: bool,
    batch_dir: Path,
    problems: Problems,
) -> JudgeRun:
    """Grade every matched sample, both sides, ``repeats`` times, through ``client``.

    Failures are counted in ``problems`` (``judge_failed``: refused or invalid after the
    re-asks; ``judge_pending``: batch answers not in yet or a server that kept failing).
    """
    run = JudgeRun()
    jobs = [(item, side, repeat) for item in matched for side in SIDES for repeat in range(repeats)]
    failed: set[tuple[str, Side, int]] = set()

    async def one(item: Matched, side: Side, repeat: int) -> None:
        key = (item.reference.sample_id, side, repeat)
        request = judge_request(judged_turns(item, side, include_final), item.reference.focus, repeat)
        try:
            scores = await client.ask(request, accept)
        except Deferred:
            run.pending += 1
            return
        except (NoValidAnswer, RequestRefused) as exc:
            failed.add(key)
            problems.add("judge_failed", f"{key[0]} ({side}, repeat {repeat + 1}): {exc.reason}")
            return
        run.done.add(key)
        run.scores.setdefault((key[0], side), []).append(scores)

    async def one_pass() -> None:
        run.pending = 0
        todo = [j for j in jobs if (j[0].reference.sample_id, j[1], j[2]) not in run.done | failed]
        await asyncio.gather(*(one(*job) for job in todo))

    await client.drive("judge", batch_dir, one_pass)
    for _ in range(run.pending):
        problems.add("judge_pending", "batch answers not in yet or the server kept failing; run again")
    return run


@dataclass(frozen=True)
class Estimate:
    """What a judge run would send: requests and tokens (upper bound on completions), USD online and batch."""

    requests: int
    prompt_tokens: int
    completion_tokens: int
    usd: float | None
    usd_batch: float | None


def estimate(matched: Sequence[Matched], repeats: int, include_final: bool, settings: LLMSettings) -> Estimate:
    """Cost of grading ``matched`` (before cache hits); nothing is sent."""
    prompt = (
        sum(
            judge_request(judged_turns(item, side, include_final), item.reference.focus, 0).prompt_tokens
            for item in matched
            for side in SIDES
        )
        * repeats
    )
    requests = len(matched) * len(SIDES) * repeats
    completion = requests * MAX_TOKENS
    prices = load_prices(settings.price_file)
    return Estimate(
        requests,
        prompt,
        completion,
        cost_usd(settings.model, prompt, completion, prices),
        cost_usd(settings.model, prompt, completion, prices, batch=True),
    )


def attach(
    results: Any, table: dict[str, Any], per_sample: dict[str, dict], problems: Problems, info: dict[str, Any]
) -> None:
    """Put judge figures into :class:`~.scoring.Results`: ``judge`` (``table`` plus ``info``:
    judge model, prompt version, usage), the per-sample rows, and the judge problem counts."""
    results.judge = {**table, **info}
    for row in results.per_sample:
        row.update(per_sample.get(row["sample_id"], {}))
    counts = results.problems["counts"]
    for kind in ("judge_failed", "judge_pending"):
        counts[kind] = counts.get(kind, 0) + problems.counts[kind]
        if problems.examples.get(kind):
            results.problems["examples"][kind] = problems.examples[kind]


def prompt_version() -> str:
    """The judge prompt's version (``prompts/judge.md``), recorded with the figures."""
    return prompts.load("judge").version
