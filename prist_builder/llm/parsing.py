"""Defensive reading of what a server sends: the chat completion body (strict: anything
else is a malformed answer, retried like a 5xx), and the model's answer text (tolerant:
JSON alone, in a fenced block, or after some prose). Nesting depth and size are bounded,
so a hostile body cannot raise ``RecursionError`` or exhaust memory."""

from __future__ import annotations

import json
import re
from typing import Any

from prist_builder.llm.retry import MalformedResponse

MAX_BODY_BYTES = 16 * 1024 * 1024
"""A chat completion body larger than this is malformed (bytes)."""

_FENCE = re.compile(r"```(?:json|JSON)?\s*\n(.*?)\n?```", re.DOTALL)


class AnswerFormatError(ValueError):
    """The answer holds no JSON object; the message says what was found instead."""


def loads_bounded(text: str | bytes) -> Any:
    """``json.loads`` that turns too deep a nesting into a ``ValueError`` (CPython's decoder
    raises ``RecursionError`` near the interpreter's recursion limit).

    Raises:
        ValueError: not JSON, or nested too deep (the message says which).
    """
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("JSON nested too deep") from None


def parse_completion(data: bytes) -> dict[str, Any]:
    """A chat completion body, checked for the shape every caller relies on.

    Returns the parsed dict: ``choices`` a non-empty list whose first item is an object
    with a ``message`` object whose ``content`` and ``refusal`` are text or null.

    Raises:
        MalformedResponse: anything else (too big, not JSON, too deep, wrong shape).
    """
    if len(data) > MAX_BODY_BYTES:
        raise MalformedResponse(f"the answer body is {len(data)} bytes, over {MAX_BODY_BYTES}")
    try:
        completion = loads_bounded(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedResponse(f"the answer is not usable JSON ({' '.join(str(exc).split())[:120]})") from None
    return check_completion(completion)


def check_completion(completion: Any) -> dict[str, Any]:
    """``completion`` if it has the shape of a chat completion (see :func:`parse_completion`).

    Raises:
        MalformedResponse: it has not.
    """
    choices = completion.get("choices") if isinstance(completion, dict) else None
    if not isinstance(choices, list) or not choices:
        raise MalformedResponse("the answer has no choices")
    choice = choices[0]
    message = choice.get("message") if isinstance(choice, dict) else None
    if not isinstance(message, dict):
        raise MalformedResponse("choices[0] has no message object")
    for field in ("content", "refusal"):
        if message.get(field) is not None and not isinstance(message[field], str):
            raise MalformedResponse(f"choices[0].message.{field} is a {type(message[field]).__name__}, not text")
    return completion


def extract_json(text: str | None) -> Any:
    """Parse the JSON object of a model answer.

    Tries, in order: the whole text; the first fenced code block; the span from the first
    ``{`` to the last ``}`` (prose before or after the object).

    Raises:
        AnswerFormatError: none of these parses.
    """
    if not text or not text.strip():
        raise AnswerFormatError("the answer is empty")
    candidates = [text.strip()]
    fenced = _FENCE.search(text)
    if fenced:
        candidates.append(fenced.group(1).strip())
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        candidates.append(text[start : end + 1])
    for candidate in candidates:
        try:
            return loads_bounded(candidate)
        except ValueError as exc:
            if "deep" in str(exc):
                raise AnswerFormatError(f"the answer's {exc}") from None
            continue
    preview = " ".join(text.split())[:80]
    raise AnswerFormatError(f"the answer is not JSON (it starts: {preview!r})")
