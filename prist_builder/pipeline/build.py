"""Orchestrate ``prist build``: open the run, run the asked steps in order, keep the manifest."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from prist_builder.pipeline.manifest import BuildConfig, check_config, update_manifest
from prist_builder.pipeline.runner import Outcome, StepReport, Unit, run_step
from prist_builder.pipeline.steps import dialogues_units, elements_units, source_paths, trees_units
from prist_builder.pipeline.store import RunStore
from prist_builder.providers import Provider, get_provider
from prist_builder.sources import discover

ProgressHook = Callable[[str, int], Callable[[Outcome], None]]
"""Given a step name and its number of pending inputs, returns the per-input callback."""


@dataclass
class BuildResult:
    """Reports of the steps that ran and the manifest written after them."""

    reports: list[StepReport]
    manifest: dict


def _discovery_units(config: BuildConfig) -> tuple[list[Unit], list]:
    items, clashes = discover(**source_paths(config))
    if config.limit is not None:
        items = items[: config.limit]
    units = []
    for reject in clashes:
        async def work(reject=reject) -> Outcome:
            return Outcome(rejects=[reject])
        units.append(Unit(f"clash:{reject.input_id}", reject.image_id, reject.source_file, work))
    return units, items


async def build(
    run: Path,
    config: BuildConfig,
    steps: Sequence[str],
    provider: Provider | None = None,
    progress: ProgressHook | None = None,
    fsync: bool = True,
) -> BuildResult:
    """Run ``steps`` (in pipeline order) of a build into the run folder ``run``.

    Args:
        run: the run folder (created if missing).
        config: the build settings; checked against the manifest of an existing run.
        steps: any of ``elements``, ``trees``, ``dialogues``.
        provider: a ready provider; by default one is made from ``config``.
        progress: optional progress hook (see :data:`ProgressHook`).
        fsync: fsync run files (see :class:`RunStore`).

    Raises:
        ConfigMismatchError: the run was built with other settings.
        RunLockedError: another process writes the run.
        FatalProviderError: the provider cannot continue (finished inputs are kept).
        FileNotFoundError, AnnotationError: the inputs themselves are missing or unreadable.
    """
    check_config(run, config)
    provider = provider or get_provider(config.provider, **config.provider_options)
    reports: list[StepReport] = []
    manifest: dict = {}
    try:
        with RunStore(run, fsync=fsync) as store:
            manifest = update_manifest(store, config, extra={"provider": provider.describe()})
            for step in ("elements", "trees", "dialogues"):
                if step not in steps:
                    continue
                if step == "elements":
                    clash_units, items = _discovery_units(config)
                    units = clash_units + elements_units(items, provider, config)
                elif step == "trees":
                    units = trees_units(store, provider, config)
                else:
                    units = dialogues_units(store, provider, config)
                pending = sum(1 for u in units if not store.is_done(step, u.key))
                hook = progress(step, pending) if progress else None
                report = await run_step(store, step, units, provider.concurrency, hook)
                reports.append(report)
                manifest = update_manifest(store, config, step, report.seconds, extra={"provider": provider.describe()})
    finally:
        await provider.aclose()
    return BuildResult(reports, manifest)
