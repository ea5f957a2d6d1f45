"""The one interface of LLM execution: send a structured request, get a validated answer or
a typed failure, with accounting.

Callers (the dataset build's ``openai`` provider, later the evaluator's judge) build the
messages and say what a valid answer is (a pydantic answer model plus an ``accept``
function that checks the task's own rules). :class:`LLMClient` decides how the request is
sent (online through :class:`~.transport.Transport`, or gathered for the Batch API), reads
and fills the response cache, re-asks the model with the exact errors when an answer breaks
a rule, and keeps the accounting (tokens, USD) of every request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from prist_builder.errors import Deferred
from prist_builder.llm.accounting import AccountingLog
from prist_builder.llm.asking import Asker, GatheringAsker, OnlineAsker
from prist_builder.llm.batch import BatchDriver, BatchLimits, ProgressFn
from prist_builder.llm.cache import ResponseCache
from prist_builder.llm.failures import RequestRejected, TransportGaveUp
from prist_builder.llm.max_tokens import MaxTokens
from prist_builder.llm.parsing import AnswerFormatError, extract_json
from prist_builder.llm.pricing import load_prices
from prist_builder.llm.retry import INPUT_SPECIFIC_STATUSES
from prist_builder.llm.settings import LLMSettings
from prist_builder.llm.strict_schema import response_format, schema_text
from prist_builder.llm.transport import Transport

CHARS_PER_TOKEN = 4
"""Rough text size of a token, for rate limiting and estimates."""
MAX_LISTED_ERRORS = 8
"""Validation errors listed in one re-ask or reject reason at most."""
FEEDBACK = (
    "Your answer does not satisfy the rules:\n{errors}\n"
    "Write the whole answer again as one JSON object that fixes every point above."
)

A = TypeVar("A", bound=BaseModel)
R = TypeVar("R")
P = TypeVar("P")


class AnswerRuleError(ValueError):
    """An answer parsed but breaks a rule of the task; the message lists what (raised by ``accept``)."""


class PartialAnswer(AnswerRuleError):
    """An answer some of whose parts keep the rules and some do not (raised by ``accept``).

    It is re-asked like any broken answer; when no attempt is left, the last one's usable
    ``part`` rides on :class:`NoValidAnswer` (``partial``), so the caller may keep it and set
    aside only the broken parts (step 3: the good dialogues of an image).
    """

    def __init__(self, message: str, part: Any) -> None:
        super().__init__(message)
        self.part = part


class RequestRefused(Exception):
    """The server refused this one request for good (400/413/422, a refused batch line, a
    model refusal). ``reason`` is one key-free line; ``raw`` what the server said."""

    def __init__(self, reason: str, raw: Any = None) -> None:
        super().__init__(reason)
        self.reason, self.raw = reason, raw


class NoValidAnswer(Exception):
    """Every attempt (first ask plus re-asks) broke a rule. ``reason`` lists the last errors;
    ``raw`` is the last answer text; ``partial`` the usable part of the last answer when
    ``accept`` raised :class:`PartialAnswer` for it, else ``None``."""

    def __init__(self, reason: str, raw: Any = None, partial: Any = None) -> None:
        super().__init__(reason)
        self.reason, self.raw, self.partial = reason, raw, partial


@dataclass
class StructuredRequest(Generic[A]):
    """One request whose answer must be a JSON object of ``answer_model``.

    Attributes:
        messages: chat messages (system, user with text and image parts).
        answer_model: the pydantic model of a valid answer; its strict JSON Schema is the
            response format (or, for servers without structured outputs, goes in the prompt).
        max_tokens: the step's completion token ceiling; the cap sent may be lower (see
            :mod:`.max_tokens`), the response cache key always holds this one.
        prompt_version: the prompt template's version; joins the cache key.
        prompt_tokens: estimate of the prompt's tokens (text and images), for rate limits.
    """

    messages: list[dict[str, Any]]
    answer_model: type[A]
    max_tokens: int
    prompt_version: str
    prompt_tokens: int


def explain(exc: Exception) -> str:
    """Readable, bounded list (one ``- `` line per error) of what was wrong with an answer."""
    if isinstance(exc, ValidationError):
        lines = [f"- {'.'.join(str(p) for p in e['loc']) or 'answer'}: {e['msg']}" for e in exc.errors()]
        return "\n".join(lines[:MAX_LISTED_ERRORS])
    return f"- {exc}"


class LLMClient:
    """Sends structured requests through an OpenAI-compatible server (see the module docstring).

    Args:
        settings: every execution option (model, server, key, budgets, batch, cache).
        seed: sent as the request ``seed`` when given (a build passes its run seed).
        transport: a ready transport (tests); by default one is made from ``settings``.
    """

    def __init__(self, settings: LLMSettings, seed: int | None = None, transport: Transport | None = None) -> None:
        self.settings = settings
        self.seed = seed
        self.cache = ResponseCache(settings.resolved_cache_dir())
        self.transport = transport or Transport.from_settings(
            settings, cache=self.cache, prices=load_prices(settings.price_file)
        )
        self.asker: Asker = OnlineAsker(self.transport)
        self.batch_progress: ProgressFn | None = None
        self.max_tokens = MaxTokens(settings.max_tokens)

    # -- one request -------------------------------------------------------------------
    def _body(self, request: StructuredRequest[Any], history: list[dict[str, Any]], cap: int) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.settings.model, "messages": history, "max_tokens": cap}
        if self.settings.temperature is not None:
            body["temperature"] = self.settings.temperature
        if self.seed is not None:
            body["seed"] = self.seed
        fmt = response_format(request.answer_model, self.settings.response_format)
        if fmt is not None:
            body["response_format"] = fmt
        return body

    def _first_messages(self, request: StructuredRequest[Any]) -> list[dict[str, Any]]:
        """The request's messages; without strict outputs, the schema joins the last user text."""
        if self.settings.response_format == "json_schema":
            return list(request.messages)
        schema = schema_text(request.answer_model)
        messages = [dict(m) for m in request.messages]
        last = messages[-1]
        note = "\n\nAnswer with one JSON object that follows this JSON Schema:\n" + schema
        if isinstance(last["content"], str):
            last["content"] += note
        else:
            parts = [dict(p) for p in last["content"]]
            text = next(p for p in parts if p.get("type") == "text")
            text["text"] += note
            last["content"] = parts
        return messages

    async def ask(self, request: StructuredRequest[A], accept: Callable[[A], R]) -> R:
        """Ask, validate with ``answer_model`` then ``accept``, re-ask with the errors.

        ``accept`` raises :class:`AnswerRuleError` (or ``ValidationError``) for an answer
        that breaks a task rule; its return value is returned.

        Raises:
            RequestRefused: the server or the model refused this request.
            NoValidAnswer: no valid answer within ``max_reasks`` re-asks.
            prist_builder.errors.Deferred: not answerable now (batch pending, server kept failing).
            prist_builder.errors.FatalError: the run cannot go on (key, quota, unknown model).
        """
        history = self._first_messages(request)
        error, content = "", None
        step, ceiling = request.prompt_version, request.max_tokens
        extra = {"prompt_version": request.prompt_version}
        cap = ceiling if self.settings.batch else self.max_tokens.cap(step, ceiling)
        asks, partial = 0, None
        while asks <= self.settings.max_reasks:
            asks += 1
            body = self._body(request, history, cap)
            key = ResponseCache.key(self.transport.base_url, {**body, "max_tokens": ceiling}, extra)
            extra_tokens = sum(len(str(m["content"])) for m in history[len(request.messages) :]) // CHARS_PER_TOKEN
            estimate = request.prompt_tokens + extra_tokens + cap
            try:
                completion, cached = await self.asker.ask(body, extra, estimate, key=key)
                if not isinstance(completion, dict):  # the server's fault, like a 5xx: try in the next run
                    raise Deferred("the server's answer is not a JSON object")
            except RequestRejected as exc:
                if exc.status not in INPUT_SPECIFIC_STATUSES:
                    raise  # a wrong model name or endpoint stops the run
                raise RequestRefused(f"the server refused the request: {exc}") from None
            except TransportGaveUp as exc:
                # the server kept failing or answering garbage (a malformed 200 is its fault, like a
                # 5xx, not the model's): leave the input unfinished for the next run, with the reason
                reason = f"the server's answers were malformed: {exc}" if exc.malformed else str(exc)
                raise Deferred(reason) from None
            if "choices" not in completion and isinstance(completion.get("error"), dict):  # a refused batch line
                failure = completion["error"]
                raise RequestRefused(
                    f"the server refused the request: {failure.get('message')} ({failure.get('code')})", raw=failure
                )
            choice = completion["choices"][0]
            message = choice.get("message") or {}
            content = message.get("content")
            self._screen(message)
            cut = choice.get("finish_reason") == "length"
            if not cached:
                self._observe(step, completion, ceiling if cut else None)
            if cut and cap < ceiling:  # our cap was too low, not the model too long: same request, full cap
                cap, asks = ceiling, asks - 1
                continue
            try:
                if cut:
                    raise AnswerRuleError(
                        "the answer was cut off at the token limit (finish_reason 'length'); be briefer"
                    )
                accepted = accept(request.answer_model.model_validate(extract_json(content)))
            except (AnswerFormatError, AnswerRuleError, ValidationError, KeyError) as exc:
                error = explain(exc)
                partial = exc.part if isinstance(exc, PartialAnswer) else None
                history = history + [
                    {"role": "assistant", "content": content or ""},
                    {"role": "user", "content": FEEDBACK.format(errors=error)},
                ]
                continue
            if not cached:
                self.cache.put(key, completion)  # only an answer that passed validation
            return accepted
        attempts = self.settings.max_reasks + 1
        reason = f"no valid answer in {attempts} attempts: {' '.join(error.split())}"
        raise NoValidAnswer(reason, raw=content, partial=partial)

    def _observe(self, step: str, completion: dict[str, Any], cut_at: int | None) -> None:
        """Feed the ``max_tokens`` rule with one fresh answer's completion tokens."""
        usage = completion.get("usage")
        tokens = usage.get("completion_tokens") if isinstance(usage, dict) else None
        if cut_at is not None:
            self.max_tokens.observe(step, cut_at)
        elif isinstance(tokens, int) and not isinstance(tokens, bool) and tokens >= 0:
            self.max_tokens.observe(step, tokens)

    def _screen(self, message: dict[str, Any]) -> None:
        """Refuse a model refusal, an answer over the size cap, or one that holds the key.

        Raises:
            RequestRefused: with the reason; the answer itself is kept out of the reject.
        """
        if message.get("refusal"):
            raise RequestRefused(f"the model refused: {message['refusal']}", raw=message)
        content = message.get("content") or ""
        if len(content) > self.settings.max_answer_chars:
            raise RequestRefused(
                f"the answer is {len(content)} characters, over --max-answer-chars {self.settings.max_answer_chars}"
            )
        if any(secret in content for secret in self.settings.secrets()):
            raise RequestRefused("the answer contains the configured API key; it was not stored")

    def open_accounting(self, path: Path, fsync: bool = True) -> None:
        """Append every finished request's accounting line to ``path`` from now on
        (see :mod:`.accounting`); the file exists from this call on."""
        self.close_accounting()
        self.max_tokens.load(path)  # a resumed run starts from what its answers used
        self.transport.accounting = AccountingLog(path, fsync=fsync)

    def close_accounting(self) -> None:
        """Close the accounting log, if one is open."""
        if self.transport.accounting is not None:
            self.transport.accounting.close()
            self.transport.accounting = None

    # -- a whole step ------------------------------------------------------------------
    async def drive(self, name: str, run: Path, run_pass: Callable[[], Awaitable[P]]) -> list[P]:
        """Run ``run_pass`` (every pending input once) and return each pass's result.

        Online: one pass. Batch: passes that answer from the cache only, with the requests a
        pass gathered sent between two passes as batches within the settings' limits; after
        the last round, an online pass when ``batch_fallback`` is set. Batches left by an
        interrupted run are joined first.
        ``name`` labels the batches (a step name); ``run`` holds ``batches.jsonl``.
        """
        if not self.settings.batch:
            return [await run_pass()]
        refusals: dict[str, dict] = {}
        driver = BatchDriver(
            self.transport, self.cache, run, self.settings.batch_poll_s, self.batch_progress, refusals=refusals
        )
        limits = BatchLimits(
            self.settings.batch_max_bytes, self.settings.batch_max_requests, self.settings.batch_max_enqueued_tokens
        )
        if driver.open_batches(name):  # left by an interrupted run: join, do not re-pay
            await driver.run_round(name, {}, {}, limits)
        results: list[P] = []
        rounds = self.settings.resolved_batch_rounds()
        gatherer = GatheringAsker(self.cache, self.transport.base_url, refusals)
        try:
            for round_index in range(rounds + 1):
                gatherer = GatheringAsker(self.cache, self.transport.base_url, refusals)
                self.asker = gatherer
                results.append(await run_pass())
                if not gatherer.wanted or round_index == rounds:
                    break
                await driver.run_round(name, gatherer.wanted, gatherer.estimates, limits)
            if gatherer.wanted and self.settings.batch_fallback:
                self.asker = OnlineAsker(self.transport)
                results.append(await run_pass())
        finally:
            self.asker = OnlineAsker(self.transport)
        return results

    # -- accounting and lifetime ---------------------------------------------------------
    def usage(self) -> dict[str, Any]:
        """Run totals: requests, cached, retries, tokens, USD."""
        return self.transport.usage.as_dict()

    async def aclose(self) -> None:
        """Close the HTTP connections and the accounting log (safe to call twice)."""
        self.close_accounting()
        await self.transport.aclose()
