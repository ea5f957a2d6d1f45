"""``manifest.json``: the run's config, software versions, counts and timings."""

from __future__ import annotations

import functools
import json
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    model_serializer,
    model_validator,
)

from prist_builder.pipeline.store import MANIFEST_FILE, RunStore, write_json_atomic
from prist_builder.records.granularity import PRIST_MIX
from prist_builder.records.limits import MAX_TARGETS, MAX_TURNS, MIN_TARGETS, MIN_TURNS
from prist_builder.records.steps import STEPS

VERSIONED_PACKAGES = ("prist", "pydantic", "numpy", "pillow", "pycocotools", "networkx", "openai")
IDENTITY_FIELDS = (
    *("provider", "seed", "images", "labelme", "coco", "min_turns", "max_turns"),
    *("targets", "granularity_mix", "multi_share", "empty_share"),
)
"""Config fields that decide the records; a re-run must not change them."""

SHARE_FIELDS = ("multi_share", "empty_share")
"""Fields written to the manifest only when nonzero (a default build's manifest is as before;
an absent one reads as 0)."""


class ConfigMismatchError(ValueError):
    """A re-run asks for different settings than the run folder was built with."""


class BuildConfig(BaseModel):
    """Settings of a build: the run component's configuration model.

    The manifest's ``config`` is this model's dump, ``prist build --config FILE`` loads it
    (TOML, YAML, or a run's ``manifest.json``), and the CLI's run options are its fields.

    Attributes:
        provider: provider name (``offline``, ``openai``).
        seed: seed of every random choice (targets, wording).
        images, labelme, coco: absolute input paths, or ``None``.
        limit: build at most this many images (first by id); ``None`` for all.
        min_turns, max_turns: dialogue length bounds in turns (Table 2: 3..7).
        targets: K, the targets drawn per image (step 2-1; fewer when the image has fewer
            candidates), see :mod:`prist_builder.pipeline.targets`.
        granularity_mix: weights (coarse, medium, fine) the target draw leans towards
            (Table 2: 22 : 25 : 53).
        workers: processes for step 1, the offline work or the reading of inputs (does not
            change the records).
        multi_share: chance (0..1) that a target slot of step 2 becomes a multi-target
            sample (a set of same-kind elements), where the image has such a set (issue 22;
            :mod:`prist_builder.pipeline.targets`). Written only when nonzero.
        empty_share: chance (0..1) that a target slot becomes an empty-target sample (a
            need whose object the image does not hold). ``multi_share + empty_share <= 1``.
            Both 0 (the default): the paper's single-target data, byte for byte.
        provider_options: the provider's settings, validated by its config model
            (:func:`prist_builder.providers.provider_config`); never secrets.

    Raises (on validation): ``pydantic.ValidationError`` naming the field.
    """

    model_config = ConfigDict(extra="forbid")

    provider: str = Field("offline", description="Who writes the content.")
    seed: int = Field(0, description="Seed of every random choice.")
    images: str | None = Field(None, description="Folder of images.")
    labelme: str | None = Field(None, description="Folder of Labelme JSON files.")
    coco: str | None = Field(None, description="COCO instances JSON file.")
    limit: int | None = Field(None, ge=1, description="Build at most N images (first by id).")
    min_turns: int = Field(MIN_TURNS, ge=1, description="Fewest turns per dialogue.")
    max_turns: int = Field(MAX_TURNS, ge=1, description="Most turns per dialogue.")
    targets: int = Field(3, ge=MIN_TARGETS, le=MAX_TARGETS, description="Targets (K) per image.")
    granularity_mix: list[float] = Field(
        default_factory=lambda: [float(v) for v in PRIST_MIX],
        min_length=3,
        max_length=3,
        description="Target draw weights coarse, medium, fine (Table 2: 22 25 53).",
    )
    workers: int = Field(1, ge=1, description="Processes for step 1 (offline work, or reading inputs for openai).")
    provider_options: dict[str, Any] = Field(default_factory=dict, description="The provider's settings.")
    multi_share: float = Field(0.0, ge=0.0, le=1.0, description="Share of multi-target samples (0..1).")
    empty_share: float = Field(0.0, ge=0.0, le=1.0, description="Share of empty-target samples (0..1).")

    @model_serializer(mode="wrap")
    def _omit_zero_shares(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Write the shares only when nonzero, so a default build's manifest stays as before."""
        data = handler(self)
        for name in SHARE_FIELDS:
            if data.get(name, 1) == 0:
                del data[name]
        return data

    @model_validator(mode="after")
    def _check(self) -> BuildConfig:
        if self.min_turns > self.max_turns:
            raise ValueError(f"min_turns {self.min_turns} is above max_turns {self.max_turns}")
        if min(self.granularity_mix) < 0 or sum(self.granularity_mix) <= 0:
            raise ValueError(f"granularity_mix {list(self.granularity_mix)}: weights must be >= 0 with a positive sum")
        if self.multi_share + self.empty_share > 1:
            raise ValueError(
                f"multi_share {self.multi_share} + empty_share {self.empty_share} is above 1; the shares are of one set"
            )
        if self.labelme is not None and self.coco is not None:
            raise ValueError("give labelme or coco, not both")
        from prist_builder.providers import provider_config  # providers sit below the pipeline

        try:
            options = provider_config(self.provider).model_validate(self.provider_options)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            raise ValueError(f"provider_options.{where} ({self.provider} provider): {first.get('msg')}") from None
        self.provider_options = options.model_dump(mode="json", exclude_none=True)
        return self

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BuildConfig:
        """Rebuild a config from a manifest's ``config`` object (unknown keys ignored)."""
        return cls.model_validate({k: v for k, v in data.items() if k in cls.model_fields})


@functools.lru_cache(maxsize=1)
def _versions() -> dict[str, str]:
    from importlib import metadata  # only a build writing its manifest needs it (start-up)

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

    The target-kind shares (:data:`SHARE_FIELDS`) decide steps 2 and 3 only: they may be set
    (``prist build trees --multi-share``) until the run holds its first tree.

    Raises:
        ConfigMismatchError: a field of :data:`IDENTITY_FIELDS` differs; the message names
            the manifest file and the field.
    """
    manifest = read_manifest(run)
    if manifest is None:
        return
    recorded = dict(manifest.get("config", {}))
    trees = Path(run) / "trees.jsonl"
    if not (trees.exists() and trees.stat().st_size):  # the shares decide steps 2 and 3 only
        for name in SHARE_FIELDS:
            recorded.pop(name, None)
    elif "provider" in recorded:  # a manifest's config omits zero shares (SHARE_FIELDS)
        for name in SHARE_FIELDS:
            recorded.setdefault(name, 0.0)
    for name in IDENTITY_FIELDS:
        if name in recorded and recorded[name] != getattr(config, name):
            raise ConfigMismatchError(
                f"{Path(run) / MANIFEST_FILE}: config.{name} is {recorded[name]!r} but this build asks for"
                f" {getattr(config, name)!r}; use a new --run folder"
            )


def update_manifest(
    store: RunStore,
    config: BuildConfig,
    step: str | None = None,
    seconds: float = 0.0,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Rewrite the manifest (atomically) with current counts and this step's time.

    Args:
        store: the open run.
        config: the build's settings.
        step: the step that just ran, whose ``seconds`` add to its total time.
        seconds: wall time of that step run.
        extra: more top-level entries to merge in (e.g. provider usage).
    """
    path = store.root / MANIFEST_FILE
    manifest = read_manifest(store.root) or {"created": datetime.now(UTC).isoformat()}
    manifest["updated"] = datetime.now(UTC).isoformat()
    manifest["config"] = config.model_dump(mode="json")
    manifest["versions"] = dict(_versions())
    steps = manifest.setdefault("steps", {})
    for name in STEPS:
        entry = steps.setdefault(name, {"seconds": 0.0})
        entry.update(store.counts(name))
        if name == step:
            entry["seconds"] = round(entry.get("seconds", 0.0) + seconds, 3)
    lines = sum(1 for _ in store.iter_raw("rejects.jsonl"))
    rejects = store.standing_rejects()  # a retried input that now succeeds is no longer rejected
    manifest["counts"] = {
        "images": steps["elements"]["records"],
        "trees": steps["trees"]["records"],
        "dialogues": steps["dialogues"]["records"],
        "rejects": rejects,
    }
    if lines != rejects:  # --retry-rejected ran: the earlier reject lines are history
        manifest["counts"]["reject_lines"] = lines
    manifest.update(extra or {})
    write_json_atomic(path, manifest, fsync=store.fsync)
    return manifest
