"""Build a small value that satisfies a JSON Schema (the subset structured outputs use)."""

from __future__ import annotations

import math
from typing import Any

_MAX_DEPTH = 32

_STRING_FORMATS = {
    "date": "1970-01-01",
    "date-time": "1970-01-01T00:00:00Z",
    "time": "00:00:00",
    "email": "a@example.com",
    "uri": "https://example.com",
    "uuid": "00000000-0000-0000-0000-000000000000",
}


def minimal_instance(schema: dict[str, Any]) -> Any:
    """Return a minimal value valid against `schema`.

    Handles `type` (object, array, string, integer, number, boolean, null, or a list
    of these), `enum`, `const`, `anyOf`/`oneOf` (first branch that is not null),
    `allOf` (objects merged), local `$ref` into `$defs`/`definitions`, and the usual
    bounds (`minItems`, `minLength`, `minimum`, `exclusiveMinimum`, `maximum`).
    Objects get every listed property, since strict mode requires all of them.
    `pattern` is not honoured. Recursion is cut off at depth 32 with `None`.

    Raises ValueError for a `$ref` that does not point inside the schema.
    """
    return _Builder(schema).build(schema, 0)


class _Builder:
    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root

    def resolve(self, ref: str) -> dict[str, Any]:
        if not ref.startswith("#"):
            raise ValueError(f"only local $ref values are supported, got {ref!r}")
        node: Any = self.root
        for part in ref.lstrip("#").strip("/").split("/"):
            if not part:
                continue
            key = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or key not in node:
                raise ValueError(f"$ref {ref!r} does not resolve inside the schema")
            node = node[key]
        return node

    def build(self, schema: Any, depth: int) -> Any:
        if depth > _MAX_DEPTH or not isinstance(schema, dict):
            return None
        if "$ref" in schema:
            return self.build(self.resolve(schema["$ref"]), depth + 1)
        if "const" in schema:
            return schema["const"]
        if schema.get("enum"):
            return schema["enum"][0]
        for key in ("anyOf", "oneOf"):
            if schema.get(key):
                return self.build(_pick_branch(schema[key], self), depth + 1)
        if schema.get("allOf"):
            return self._all_of(schema["allOf"], depth)
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        if kind is None:
            kind = "object" if "properties" in schema else "array" if "items" in schema else None
        return self._typed(kind, schema, depth)

    def _all_of(self, parts: list[Any], depth: int) -> Any:
        values = [self.build(part, depth + 1) for part in parts]
        if all(isinstance(v, dict) for v in values):
            merged: dict[str, Any] = {}
            for value in values:
                merged.update(value)
            return merged
        return values[0]

    def _typed(self, kind: str | None, schema: dict[str, Any], depth: int) -> Any:
        if kind == "object":
            props = schema.get("properties") or {}
            return {name: self.build(sub, depth + 1) for name, sub in props.items()}
        if kind == "array":
            count = int(schema.get("minItems", 0))
            items = schema.get("items", {})
            if isinstance(items, list):  # tuple form
                return [self.build(sub, depth + 1) for sub in items]
            return [self.build(items, depth + 1) for _ in range(count)]
        if kind == "string":
            if schema.get("format") in _STRING_FORMATS:
                return _STRING_FORMATS[schema["format"]]
            return "x" * int(schema.get("minLength", 0))
        if kind == "integer":
            return math.ceil(_number(schema, step=1))
        if kind == "number":
            return float(_number(schema, step=0.5))
        if kind == "boolean":
            return False
        return None


def _pick_branch(branches: list[Any], builder: _Builder) -> Any:
    """The first branch that is not `{"type": "null"}` (after following `$ref`)."""
    for branch in branches:
        target = builder.resolve(branch["$ref"]) if isinstance(branch, dict) and "$ref" in branch else branch
        if not (isinstance(target, dict) and target.get("type") == "null"):
            return branch
    return branches[0]


def _number(schema: dict[str, Any], step: float) -> float:
    low = schema.get("minimum")
    if schema.get("exclusiveMinimum") is not None:
        low = schema["exclusiveMinimum"] + step
    high = schema.get("maximum")
    if schema.get("exclusiveMaximum") is not None:
        high = schema["exclusiveMaximum"] - step
    value = 0.0
    if low is not None and value < low:
        value = low
    if high is not None and value > high:
        value = high
    return value
