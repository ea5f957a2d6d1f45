"""Tolerant reading of model answers: JSON alone, in a fenced block, or after some prose."""

from __future__ import annotations

import json
import re
from typing import Any

_FENCE = re.compile(r"```(?:json|JSON)?\s*\n(.*?)\n?```", re.DOTALL)


class AnswerFormatError(ValueError):
    """The answer holds no JSON object; the message says what was found instead."""


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
            return json.loads(candidate)
        except json.JSONDecodeError:
            continue
    preview = " ".join(text.split())[:80]
    raise AnswerFormatError(f"the answer is not JSON (it starts: {preview!r})")
