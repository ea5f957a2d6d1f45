"""Prompt templates of the model-based provider, one file per step.

Each ``*.md`` file holds a front-matter ``version`` (it enters the request cache key, so
editing a prompt and bumping its version re-asks only that step) and two sections,
``## system`` and ``## user``. Placeholders are ``{name}`` fields filled with
:meth:`Template.render`; literal braces are doubled (``{{`` and ``}}``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable

_FRONT = re.compile(r"^---\n(?P<meta>.*?)\n---\n", re.DOTALL)
_SECTION = re.compile(r"^## (system|user)\s*$", re.MULTILINE)


class PromptError(ValueError):
    """A template file is malformed; the message names the file and what is missing."""


@dataclass(frozen=True)
class Template:
    """One step's prompt.

    Attributes:
        name: step name (``elements``, ``tree``, ``dialogues``, ``judge``).
        version: version string, part of every request's cache key.
        system, user: the two message templates.
    """

    name: str
    version: str
    system: str
    user: str

    def render(self, **fields: object) -> tuple[str, str]:
        """``(system, user)`` texts with the fields filled in.

        Raises:
            KeyError: a placeholder has no field.
        """
        return self.system.format_map(fields), self.user.format_map(fields)


def _packaged() -> Traversable:
    """The folder of the packaged templates (read through :mod:`importlib.resources`)."""
    return resources.files(__name__)


@cache
def load(name: str, folder: Traversable | None = None) -> Template:
    """Read the template ``<name>.md`` from the package (or from ``folder``).

    Raises:
        PromptError: missing file, front matter without ``version``, or a missing section.
    """
    path = (folder or _packaged()) / f"{name}.md"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PromptError(f"{path}: cannot read prompt template ({exc.strerror or exc})") from exc
    front = _FRONT.match(text)
    meta = dict(line.split(":", 1) for line in front.group("meta").splitlines() if ":" in line) if front else {}
    version = meta.get("version", "").strip()
    if not version:
        raise PromptError(f"{path}: front matter needs a 'version:' line")
    body = text[front.end() :] if front else text
    parts = _SECTION.split(body)
    sections = {parts[i]: parts[i + 1].strip() for i in range(1, len(parts) - 1, 2)}
    for section in ("system", "user"):
        if not sections.get(section):
            raise PromptError(f"{path}: section '## {section}' is missing or empty")
    return Template(name, version, sections["system"], sections["user"])
