"""Read build settings from a file: TOML, YAML, or a run's ``manifest.json``.

A file holds the fields of :class:`~prist_builder.pipeline.manifest.BuildConfig` at its top
level (``provider``, ``seed``, ``labelme``, ..., and a ``provider_options`` table). A
``manifest.json`` holds them under ``config``, so ``prist build all --config
RUN/manifest.json --run NEW`` rebuilds a run with its exact settings.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any


class ConfigFileError(ValueError):
    """The settings file cannot be read; the message names the file and what is wrong."""


def load_config_file(path: Path) -> dict[str, Any]:
    """The settings in ``path`` as a dict (validated later by the config model).

    Raises:
        ConfigFileError: unreadable file, unknown suffix, a syntax error, or not a table.
    """
    import yaml  # only a settings file needs it (start-up)

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigFileError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        if path.suffix == ".toml":
            data: Any = tomllib.loads(text)
        elif path.suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text)
        elif path.suffix == ".json":
            data = json.loads(text)
            if isinstance(data, dict) and isinstance(data.get("config"), dict):
                data = data["config"]  # a run manifest
        else:
            raise ConfigFileError(f"{path}: unknown settings format {path.suffix!r}; use .toml, .yaml or .json")
    except (tomllib.TOMLDecodeError, yaml.YAMLError, json.JSONDecodeError) as exc:
        raise ConfigFileError(f"{path}: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict):
        raise ConfigFileError(f"{path}: expected a table of settings at the top level")
    return data
