"""JSON Schema for OpenAI strict structured outputs, generated from pydantic models.

Strict mode wants every object closed (``additionalProperties: false``), every property
listed in ``required`` (optional ones made nullable instead), and no keywords outside its
subset (defaults, length and size bounds). :func:`strict_schema` rewrites pydantic's
schema accordingly; :func:`response_format` wraps it as the request field.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from pydantic import BaseModel

UNSUPPORTED_KEYWORDS = frozenset(
    {"default", "minLength", "maxLength", "minItems", "maxItems", "minimum", "maximum", "examples", "title"}
)
"""Keywords dropped from the schema (strict mode rejects or ignores them)."""

NAME_MAPS = frozenset({"properties", "$defs"})
"""Schema keys whose values map names to sub-schemas."""


def _normalise(node: Any) -> Any:
    if isinstance(node, list):
        return [_normalise(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in NAME_MAPS:  # keys of these maps are names, not keywords
            out[key] = {name: _normalise(schema) for name, schema in value.items()}
        elif key not in UNSUPPORTED_KEYWORDS:
            out[key] = _normalise(value)
    if out.get("type") == "object" or "properties" in out:
        properties = out.get("properties", {})
        out["additionalProperties"] = False
        out["required"] = list(properties)
        out["properties"] = {
            name: _nullable(schema) if name not in node.get("required", []) else schema
            for name, schema in properties.items()
        }
    return out


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    options = schema.get("anyOf")
    if options and any(option.get("type") == "null" for option in options):
        return schema
    return {"anyOf": [schema, {"type": "null"}]}


@functools.cache
def strict_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The strict-mode JSON Schema of ``model`` (``$defs`` kept, every object closed).

    Built once per model class (pydantic's schema generation costs about 1.5 ms); the
    returned dict is shared, so callers must not modify it.
    """
    return _normalise(model.model_json_schema())


@functools.cache
def schema_text(model: type[BaseModel]) -> str:
    """``json.dumps`` of :func:`strict_schema` (the schema put in a prompt), built once per model."""
    return json.dumps(strict_schema(model))


@functools.cache
def response_format(model: type[BaseModel], mode: str = "json_schema") -> dict[str, Any] | None:
    """The ``response_format`` request field for ``mode``, built once per (model, mode) and
    shared (callers must not modify it).

    Args:
        model: the answer model.
        mode: ``json_schema`` (strict structured outputs), ``json_object`` (JSON mode, for
            servers without structured outputs; the schema then goes in the prompt), or
            ``none`` (plain text; the answer is parsed tolerantly).

    Raises:
        ValueError: unknown mode.
    """
    if mode == "json_schema":
        return {
            "type": "json_schema",
            "json_schema": {"name": model.__name__, "schema": strict_schema(model), "strict": True},
        }
    if mode == "json_object":
        return {"type": "json_object"}
    if mode == "none":
        return None
    raise ValueError(f"unknown response format {mode!r}; use json_schema, json_object or none")


SCHEMA_CHARS_PER_TOKEN = 4
"""Characters of schema JSON per prompt token (a rough rule for JSON text)."""


@functools.cache
def schema_tokens(model: type[BaseModel]) -> int:
    """Estimated prompt tokens a model's JSON Schema adds to a request: its JSON text over
    :data:`SCHEMA_CHARS_PER_TOKEN`. OpenAI does not publish how a strict ``response_format``
    is billed; it does enter the prompt (the model is constrained by it), so the estimate
    counts it the way the schema reads as text."""
    return len(schema_text(model)) // SCHEMA_CHARS_PER_TOKEN
