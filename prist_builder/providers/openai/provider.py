"""The ``openai`` provider: the three PRIST steps written by GPT-4o or any OpenAI-compatible model.

Each step is one conversation with the model (Appendix B.2, Figure 7): a system and a
user message from ``prompts/``, the image as a data URL, and a strict JSON response format
generated from :mod:`.answers`. An answer that breaks a rule (bad JSON, unknown region,
a node with 4 children, wrong turn count, missing ``[SEG]``) is shown back to the model with
the exact errors, at most ``max_reasks`` times; then the input goes to rejects with the last
errors. Transport faults (429, 5xx, timeouts) are retried separately, in the transport.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from prist_builder import prompts
from prist_builder.pipeline.assemble import make_dialogue
from prist_builder.providers.base import Deferred, Provider, StepContext
from prist_builder.providers.openai import messages as blocks
from prist_builder.providers.openai.answers import DialoguesAnswer, ElementsAnswer, TreeAnswer
from prist_builder.pipeline.runner import StepReport, merge_reports
from prist_builder.providers.openai.asking import Asker, GatheringAsker, OnlineAsker
from prist_builder.providers.openai.batch import BatchDriver, ProgressFn
from prist_builder.providers.openai.cache import ResponseCache
from prist_builder.providers.openai.images import PreparedImage, image_part, image_tokens, prepare_image
from prist_builder.providers.openai.parsing import AnswerFormatError, extract_json
from prist_builder.providers.openai.pricing import load_prices
from prist_builder.providers.openai.strict_schema import response_format, strict_schema
from prist_builder.providers.openai.transport import RequestRejected, Transport, TransportGaveUp
from prist_builder.records import DialogueRecord, Element, ElementAttributes, ElementsRecord, TreeRecord, Turn
from prist_builder.records.limits import MAX_CHILDREN, MIN_TARGETS, OBJ_TOKEN, SEG_TOKEN
from prist_builder.sources import InputRejected, LoadedImage, read_image

DEFAULT_MODEL = "gpt-4o-2024-08-06"
"""The model the paper built PRIST with (Appendix B.2)."""
MAX_TOKENS = {"elements": 1500, "tree": 2500, "dialogues": 4000}
"""Completion token cap per step."""
MIN_BARE_ELEMENTS = 3
"""Elements asked of an image without regions (Figure 7a: at least 3)."""
CHARS_PER_TOKEN = 4
"""Rough text size of a token, for rate limiting and dry-run estimates."""
MAX_LISTED_ERRORS = 8
INPUT_SPECIFIC_STATUSES = frozenset({400, 413, 422})
"""Refusals that concern one request (an image the API will not take, a context too long):
that input is rejected and the run goes on. Others (404 model not found, ...) stop the run."""
IMAGE_MEMO = 64
"""Prepared images kept in memory (each image is sent in all three steps)."""
FEEDBACK = (
    "Your answer does not satisfy the rules:\n{errors}\n"
    "Write the whole answer again as one JSON object that fixes every point above."
)

A = TypeVar("A", bound=BaseModel)
R = TypeVar("R")


class AnswerRuleError(ValueError):
    """The answer parsed but breaks a rule of the step; the message lists what."""


def explain(exc: Exception) -> str:
    """Readable, bounded list of what was wrong with an answer."""
    if isinstance(exc, ValidationError):
        lines = [f"- {'.'.join(str(p) for p in e['loc']) or 'answer'}: {e['msg']}" for e in exc.errors()]
        return "\n".join(lines[:MAX_LISTED_ERRORS])
    return f"- {exc}"


class OpenAIProvider(Provider):
    """Provider backed by an OpenAI-compatible chat completions API.

    Args:
        model: model name.
        base_url: API base URL (``None``: OpenAI). vLLM, Ollama and Azure work through it.
        api_key: key (``None``: ``OPENAI_API_KEY``); kept out of manifests, logs and errors.
        concurrency: most requests in flight.
        rpm, tpm: requests and tokens per minute budgets (``None``: unlimited).
        detail: image ``detail`` (``low``, ``high``, ``auto``).
        max_side: long side in pixels images are downscaled to before sending.
        response_format: ``json_schema`` (strict), ``json_object`` or ``none``.
        max_reasks: re-asks per step after an answer that breaks a rule.
        temperature: sampling temperature (``None``: the server's default).
        timeout_s: seconds per request.
        max_attempts: transport attempts per request (rate limits, 5xx, timeouts) before the
            input is left for the next run.
        cache_dir: response cache folder.
        price_file: JSON overriding the price table.
        seed: sent as the request ``seed`` (set per build from the run seed).
        batch: send requests through the Batch API (half price, answers within 24 h).
        batch_poll_s: seconds between polls of a batch.
        batch_rounds: batches per step at most (default: ``max_reasks + 3``: every re-ask
            plus two re-submissions of failed or expired lines).
        batch_fallback: after the last round, send what is still missing online.
    """

    name = "openai"

    def __init__(self, model: str = DEFAULT_MODEL, base_url: str | None = None, api_key: str | None = None,
                 concurrency: int = 8, rpm: int | None = None, tpm: int | None = None, detail: str = "high",
                 max_side: int | None = 1024, response_format: str = "json_schema", max_reasks: int = 2,
                 temperature: float | None = None, timeout_s: float = 120.0, max_attempts: int = 6,
                 cache_dir: str | None = None,
                 price_file: str | None = None, seed: int | None = None, batch: bool = False,
                 batch_poll_s: float = 30.0, batch_rounds: int | None = None, batch_fallback: bool = False) -> None:
        self.model = model
        self.concurrency = concurrency
        self.detail = detail
        self.max_side = max_side
        self.format_mode = response_format
        self.max_reasks = max_reasks
        self.temperature = temperature
        self.seed = seed
        self.options = {"model": model, "base_url": base_url, "concurrency": concurrency, "rpm": rpm, "tpm": tpm,
                        "detail": detail, "max_side": max_side, "response_format": response_format,
                        "max_reasks": max_reasks, "temperature": temperature, "timeout_s": timeout_s,
                        "max_attempts": max_attempts,
                        "cache_dir": cache_dir, "price_file": price_file}
        self.cache = ResponseCache(Path(cache_dir) if cache_dir else default_cache_dir())
        self.transport = Transport(base_url, api_key, concurrency=concurrency, rpm=rpm, tpm=tpm, timeout_s=timeout_s,
                                   max_attempts=max_attempts,
                                   cache=self.cache, prices=load_prices(Path(price_file) if price_file else None))
        self.asker: Asker = OnlineAsker(self.transport)
        self.batch = batch
        self.batch_poll_s = batch_poll_s
        self.batch_rounds = batch_rounds if batch_rounds is not None else max_reasks + 3
        self.batch_fallback = batch_fallback
        self.batch_progress: ProgressFn | None = None
        if batch:
            self.options.update(batch=True, batch_rounds=self.batch_rounds, batch_fallback=batch_fallback)
        self._images: OrderedDict[str, PreparedImage] = OrderedDict()

    # -- plumbing --------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        return {"name": self.name, **{k: v for k, v in self.options.items() if v is not None},
                "usage": self.transport.usage.as_dict()}

    async def aclose(self) -> None:
        await self.transport.aclose()

    def drain_request_log(self) -> list[dict[str, Any]]:
        entries, self.transport.request_log = self.transport.request_log, []
        return entries

    async def drive(self, step: str, run: Path, run_pass: Callable[[], Awaitable[StepReport]]) -> StepReport:
        """Online: one pass. Batch: passes that answer from the cache, with a batch between two."""
        if not self.batch:
            return await run_pass()
        driver = BatchDriver(self.transport, self.cache, run, self.batch_poll_s, self.batch_progress)
        for batch_id in driver.open_batches(step):  # left by an interrupted run: join, do not re-pay
            await driver.join(batch_id)
        report: StepReport | None = None
        gatherer = GatheringAsker(self.cache, self.transport.base_url)
        try:
            for round_index in range(self.batch_rounds + 1):
                gatherer = GatheringAsker(self.cache, self.transport.base_url)
                self.asker = gatherer
                report = merge_reports(report, await run_pass())
                if not gatherer.wanted or round_index == self.batch_rounds:
                    break
                await driver.join(await driver.submit(step, gatherer.wanted))
            if gatherer.wanted and self.batch_fallback:
                self.asker = OnlineAsker(self.transport)
                report = merge_reports(report, await run_pass())
        finally:
            self.asker = OnlineAsker(self.transport)
        assert report is not None
        return report

    def _image(self, image_id: str, data: bytes | None, mime: str, record=None) -> tuple[PreparedImage, int]:
        """The image as sent and its token estimate, prepared once per image.

        Raises:
            InputRejected: the recorded image is gone or changed (``record`` given, no ``data``).
        """
        if image_id not in self._images:
            if data is None:
                data, _ = read_image(record)
            self._images[image_id] = prepare_image(data, mime, self.max_side)
            while len(self._images) > IMAGE_MEMO:
                self._images.popitem(last=False)
        prepared = self._images[image_id]
        return prepared, image_tokens(prepared.width, prepared.height, self.detail)

    def _messages(self, step: str, url: str, **fields: object) -> tuple[list[dict], int]:
        template = prompts.load(step)
        system, user = template.render(**fields)
        if self.format_mode != "json_schema":
            schema = strict_schema({"elements": ElementsAnswer, "tree": TreeAnswer, "dialogues": DialoguesAnswer}[step])
            user += "\n\nAnswer with one JSON object that follows this JSON Schema:\n" + json.dumps(schema)
        content = [{"type": "text", "text": user}, image_part(url, self.detail)]
        return [{"role": "system", "content": system}, {"role": "user", "content": content}], (len(system) + len(user)) // CHARS_PER_TOKEN

    async def _converse(self, step: str, where: str, messages: list[dict], prompt_tokens: int,
                        answer_model: type[A], accept: Callable[[A], R]) -> R:
        """Ask, validate, re-ask with the errors; raises ``InputRejected`` when out of re-asks."""
        template = prompts.load(step)
        fmt = response_format(answer_model, self.format_mode)
        params: dict[str, Any] = {"max_tokens": MAX_TOKENS[step]}
        if self.temperature is not None:
            params["temperature"] = self.temperature
        if self.seed is not None:
            params["seed"] = self.seed
        if fmt is not None:
            params["response_format"] = fmt
        history = list(messages)
        error, content = "", None
        for _ in range(self.max_reasks + 1):
            body = {"model": self.model, "messages": history, **params}
            estimate = prompt_tokens + sum(len(m["content"]) for m in history[2:]) // CHARS_PER_TOKEN + MAX_TOKENS[step]
            try:
                completion = await self.asker.ask(body, {"prompt_version": template.version}, estimate)
            except RequestRejected as exc:
                if exc.status not in INPUT_SPECIFIC_STATUSES:
                    raise  # a wrong model name or endpoint stops the run
                raise InputRejected(f"{where}: {step}: the server refused the request: {exc}", where) from None
            except TransportGaveUp as exc:  # the server kept failing: leave the input for the next run
                raise Deferred(f"{where}: {step}: {exc}") from None
            if "choices" not in completion and isinstance(completion.get("error"), dict):  # a refused batch line
                error = completion["error"]
                raise InputRejected(f"{where}: {step}: the server refused the request: {error.get('message')}"
                                    f" ({error.get('code')})", where)
            choice = completion["choices"][0]
            message = choice.get("message") or {}
            content = message.get("content")
            if message.get("refusal"):
                raise InputRejected(f"{where}: {step}: the model refused: {message['refusal']}", where, raw=message)
            try:
                if choice.get("finish_reason") == "length":
                    raise AnswerRuleError("the answer was cut off at the token limit (finish_reason 'length'); be briefer")
                return accept(answer_model.model_validate(extract_json(content)))
            except (AnswerFormatError, AnswerRuleError, ValidationError, KeyError) as exc:
                error = explain(exc)
                history = history + [{"role": "assistant", "content": content or ""},
                                     {"role": "user", "content": FEEDBACK.format(errors=error)}]
        attempts = self.max_reasks + 1
        raise InputRejected(f"{where}: {step}: no valid answer in {attempts} attempts: {' '.join(error.split())}",
                            where, raw=content)

    # -- step 1 ----------------------------------------------------------------------
    async def elements(self, image: LoadedImage, ctx: StepContext) -> list[Element]:
        record = image.record
        where = record.annotation_path or record.path
        regions = [r for r in record.regions if not r.ignore]
        picture, tokens = self._image(record.image_id, image.data, record.mime)
        url = picture.url
        if regions:
            rule = "the id of the marked region this element is; every element is one marked region, each region at most once"
            minimum = f"one element for each of the {len(regions)} marked regions,"
        else:
            rule = "always null (no regions are marked on this image)"
            minimum = str(MIN_BARE_ELEMENTS)
        messages, text_tokens = self._messages(
            "elements", url, region_rule=rule, regions_block=blocks.regions_block(regions, picture.scale), minimum_elements=minimum)
        known = {r.region_id for r in regions}

        def accept(answer: ElementsAnswer) -> list[Element]:
            seen: set[str] = set()
            problems = []
            for index, item in enumerate(answer.elements):
                if regions and item.region_id not in known:
                    problems.append(f"elements[{index}].region_id {item.region_id!r} is not a marked region ({', '.join(sorted(known))})")
                elif regions and item.region_id in seen:
                    problems.append(f"elements[{index}].region_id {item.region_id!r} is used twice")
                elif not regions and item.region_id is not None:
                    problems.append(f"elements[{index}].region_id must be null: this image has no marked regions")
                seen.add(item.region_id or "")
            needed = MIN_TARGETS if regions else MIN_BARE_ELEMENTS
            if len(answer.elements) < needed:
                problems.append(f"{len(answer.elements)} elements; at least {needed} are needed")
            if problems:
                raise AnswerRuleError("; ".join(problems))
            return [
                Element(element_id=f"e{i}", name=item.name, description=item.description, region_id=item.region_id,
                        attributes=ElementAttributes(colour=item.colour, position=item.position,
                                                     count=item.count if item.count and item.count > 0 else None,
                                                     visible_text=item.visible_text))
                for i, item in enumerate(answer.elements)
            ]

        return await self._converse("elements", where, messages, text_tokens + tokens, ElementsAnswer, accept)

    # -- step 2 ----------------------------------------------------------------------
    async def tree(self, elements: ElementsRecord, targets: list[Element], ctx: StepContext) -> TreeRecord:
        record = elements.image
        where = record.annotation_path or record.path
        picture, tokens = self._image(record.image_id, None, record.mime, record)
        url = picture.url
        messages, text_tokens = self._messages(
            "tree", url, elements_block=blocks.elements_block(elements), targets=blocks.targets_line(targets),
            max_children=MAX_CHILDREN, min_nodes=ctx.min_turns - 1, max_nodes=ctx.max_turns - 1)
        wanted = {t.element_id for t in targets}

        def accept(answer: TreeAnswer) -> TreeRecord:
            tree = TreeRecord.model_validate(
                {"image_id": elements.image_id, "provider": self.name, "root": answer.root,
                 "nodes": [n.model_dump() for n in answer.nodes],
                 "edges": [(e.parent, e.child) for e in answer.edges],
                 "paths": [p.model_dump() for p in answer.paths]},
                context=ctx.validation())
            got = {p.target_element_id for p in tree.paths}
            if got != wanted:
                raise AnswerRuleError(f"paths must cover exactly the targets {sorted(wanted)}, got {sorted(got)}")
            for path in tree.paths:
                if not ctx.min_turns - 1 <= len(path.node_ids) <= ctx.max_turns - 1:
                    raise AnswerRuleError(f"the path to {path.target_element_id} has {len(path.node_ids)} nodes;"
                                          f" it needs {ctx.min_turns - 1} to {ctx.max_turns - 1}")
            return tree

        return await self._converse("tree", where, messages, text_tokens + tokens, TreeAnswer, accept)

    # -- step 3 ----------------------------------------------------------------------
    async def dialogues(self, elements: ElementsRecord, tree: TreeRecord,
                        ctx: StepContext) -> list[DialogueRecord]:
        record = elements.image
        where = record.annotation_path or record.path
        picture, tokens = self._image(record.image_id, None, record.mime, record)
        url = picture.url
        messages, text_tokens = self._messages(
            "dialogues", url, elements_block=blocks.elements_block(elements), paths_block=blocks.paths_block(tree, elements),
            min_turns=ctx.min_turns, max_turns=ctx.max_turns, obj=OBJ_TOKEN, seg=SEG_TOKEN)
        paths = {p.target_element_id: p for p in tree.paths}

        def accept(answer: DialoguesAnswer) -> list[DialogueRecord]:
            got = [d.target_element_id for d in answer.dialogues]
            if sorted(got) != sorted(paths):
                raise AnswerRuleError(f"write exactly one conversation per path target {sorted(paths)}, got {got}")
            out = []
            for index, item in enumerate(answer.dialogues):
                turns = []
                for turn in item.turns:
                    turns += [Turn(role="user", content=turn.question), Turn(role="assistant", content=turn.answer)]
                try:
                    out.append(make_dialogue(elements, tree, paths[item.target_element_id], turns, item.focus, self.name, ctx))
                except ValidationError as exc:
                    raise AnswerRuleError(f"dialogues[{index}] ({item.target_element_id}): {explain(exc).lstrip('- ')}") from exc
            return out

        return await self._converse("dialogues", where, messages, text_tokens + tokens, DialoguesAnswer, accept)


def default_cache_dir() -> Path:
    """``$PRIST_CACHE_DIR`` or ``~/.cache/prist/openai``: shared by runs, so no run re-pays another's requests."""
    import os

    root = os.environ.get("PRIST_CACHE_DIR")
    return Path(root) if root else Path.home() / ".cache" / "prist" / "openai"
