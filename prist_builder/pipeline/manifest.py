"""``manifest.json``: the run's config, software versions, counts and timings."""

from __future__ import annotations

import functools
import json
import platform
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from prist_builder.pipeline.store import MANIFEST_FILE, STEPS, RunStore, write_json_atomic
from prist_builder.records.limits import MAX_TURNS, MIN_TURNS

VERSIONED_PACKAGES = ("prist", "pydantic", "numpy", "pillow", "pycocotools", "networkx", "openai")
IDENTITY_FIELDS = ("provider", "seed", "images", "labelme", "coco", "min_turns", "max_turns")
"""Config fields that decide the records; a re-run must not change them."""


class ConfigMismatchError(ValueError):
    """A re-run asks for different settings than the run folder was built with."""


@dataclass
class BuildConfig:
    """Settings of a build, as recorded in the manifest.

    Attributes:
        provider: provider name.
        seed: seed of every random choice (targets, wording).
        images, labelme, coco: absolute input paths, or ``None``.
        limit: build at most this many images (first by id); ``None`` for all.
        min_turns, max_turns: dialogue length bounds in turns.
        workers: processes for CPU-bound step 1 work (does not change the records).
        provider_options: provider settings (never secrets).
    """

    provider: str = "offline"
    seed: int = 0
    images: str | None = None
    labelme: str | None = None
    coco: str | None = None
    limit: int | None = None
    min_turns: int = MIN_TURNS
    max_turns: int = MAX_TURNS
    workers: int = 1
    provider_options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "BuildConfig":
        """Rebuild a config from a manifest's ``config`` object."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@functools.lru_cache(maxsize=1)
def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in VERSIONED_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def read_manifest(run: Path) -> dict[str, Any] | None:
    """The manifest of a run folder, or ``None`` if it has none yet."""
    path = Path(run) / MANIFEST_FILE
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def check_config(run: Path, config: BuildConfig) -> None:
    """Refuse to continue a run with settings that would change its records.

    Raises:
        ConfigMismatchError: a field of :data:`IDENTITY_FIELDS` differs; the message names
            the manifest file and the field.
    """
    manifest = read_manifest(run)
    if manifest is None:
        return
    recorded = manifest.get("config", {})
    for name in IDENTITY_FIELDS:
        if name in recorded and recorded[name] != getattr(config, name):
            raise ConfigMismatchError(
                f"{Path(run) / MANIFEST_FILE}: config.{name} is {recorded[name]!r} but this build asks for"
                f" {getattr(config, name)!r}; use a new --run folder"
            )


def update_manifest(store: RunStore, config: BuildConfig, step: str | None = None, seconds: float = 0.0,
                    extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Rewrite the manifest (atomically) with current counts and this step's time.

    Args:
        store: the open run.
        config: the build's settings.
        step: the step that just ran, whose ``seconds`` add to its total time.
        seconds: wall time of that step run.
        extra: more top-level entries to merge in (e.g. provider usage).
    """
    path = store.root / MANIFEST_FILE
    manifest = read_manifest(store.root) or {"created": datetime.now(timezone.utc).isoformat()}
    manifest["updated"] = datetime.now(timezone.utc).isoformat()
    manifest["config"] = asdict(config)
    manifest["versions"] = dict(_versions())
    steps = manifest.setdefault("steps", {})
    for name in STEPS:
        entry = steps.setdefault(name, {"seconds": 0.0})
        entry.update(store.counts(name))
        if name == step:
            entry["seconds"] = round(entry.get("seconds", 0.0) + seconds, 3)
    rejects = sum(1 for _ in store.iter_raw("rejects.jsonl"))
    manifest["counts"] = {
        "images": steps["elements"]["records"],
        "trees": steps["trees"]["records"],
        "dialogues": steps["dialogues"]["records"],
        "rejects": rejects,
    }
    manifest.update(extra or {})
    write_json_atomic(path, manifest)
    return manifest
