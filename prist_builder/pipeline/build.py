"""Orchestrate ``prist build``: open the run, run the asked steps in order, keep the manifest."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from prist_builder.llm.accounting import totals
from prist_builder.pipeline.lifeline import die_with_parent
from prist_builder.pipeline.manifest import BuildConfig, check_config, update_manifest
from prist_builder.pipeline.runner import Outcome, StepReport, Unit, merge_reports, run_step
from prist_builder.pipeline.steps import StreamedUnits, dialogues_units, elements_units, source_paths, trees_units
from prist_builder.pipeline.store import RunStore
from prist_builder.providers import Provider, get_provider
from prist_builder.records.steps import STEPS
from prist_builder.sources import discover

REQUESTS_FILE = "requests.jsonl"
"""Per-request accounting of model-based providers, in the run folder (see
:mod:`prist_builder.llm.accounting`); written as each request completes."""

MIN_INPUTS_FOR_POOL = 16
"""Below this many pending inputs, worker processes cost more than they save."""

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


def _worker_init(descriptors: list[int], parent_pid: int) -> None:
    """Worker initializer: die with the parent, and drop the run's descriptors copied by
    fork (the lock above all)."""
    die_with_parent(parent_pid)
    for fd in descriptors:
        try:
            os.close(fd)
        except OSError:
            pass


def _step_units(
    step: str, store: RunStore, provider: Provider, config: BuildConfig
) -> tuple[Iterable[Unit], ProcessPoolExecutor | None]:
    """A step's units, and the process pool of step 1 (enough inputs, ``--workers`` > 1).

    For a CPU-bound provider the pool runs the whole step in ``--workers`` processes. For
    a provider that does not need pixels it only reads the inputs, in :func:`reader_count`
    processes, while this process's event loop sends the requests.
    """
    if step == "trees":
        return trees_units(store, provider, config), None
    if step == "dialogues":
        return dialogues_units(store, provider, config), None
    clash_units, items = _discovery_units(config)
    todo = sum(1 for i in items if not store.is_done(step, i.image_id))
    pool = None
    pooled = provider.cpu_bound or not provider.needs_pixels
    if pooled and config.workers > 1 and todo >= MIN_INPUTS_FOR_POOL:
        heavy = provider.heavy_annotated_reads and any(i.labelme_path or i.coco for i in items)
        pool = _process_pool(config.workers if provider.cpu_bound else reader_count(config.workers, heavy=heavy), store)
    units = elements_units(items, provider, config, pool, lambda item: not store.is_done(step, item.image_id))
    return clash_units + units, pool


def reader_count(workers: int, cores: int | None = None, heavy: bool = False) -> int:
    """Reader processes for a provider whose step 1 is requests: ``workers``, but leaving one
    of the machine's ``cores`` to the event loop that sends them (at least one reader),
    unless reading is ``heavy`` (``Provider.heavy_annotated_reads`` on annotated inputs).

    Light reading (a header, a hash): on 2 cores, two readers, the event loop and a local
    server fight over the CPU; the loop, preempted while it holds the GIL, then delays
    every request (measured with ``benchmarks/openai_build.py``: one reader is faster).
    Heavy reading (Set-of-Mark images: ~20 ms of CPU an input against the loop's ~9 ms a
    request): the one reader is what step 1 waits for, and a reader per core sends step 1
    of that benchmark at concurrency 64 about 1.7x faster on 2 cores (same at 8).
    """
    cores = cores if cores is not None else (os.cpu_count() or 1)
    return max(1, min(workers, cores if heavy else cores - 1))


def _process_pool(workers: int, store: RunStore) -> ProcessPoolExecutor:
    """Worker processes for step 1 (``fork`` where the platform has it: no re-imports)."""
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=context,
        initializer=_worker_init,
        initargs=(store.descriptors(), os.getpid()),
    )


async def build(
    run: Path,
    config: BuildConfig,
    steps: Sequence[str],
    provider: Provider | None = None,
    progress: ProgressHook | None = None,
    fsync: bool = True,
    retry_rejected: bool = False,
) -> BuildResult:
    """Run ``steps`` (in pipeline order) of a build into the run folder ``run``.

    Args:
        run: the run folder (created if missing).
        config: the build settings; checked against the manifest of an existing run.
        steps: any of ``elements``, ``trees``, ``dialogues``.
        provider: a ready provider; by default one is made from ``config``.
        progress: optional progress hook (see :data:`ProgressHook`).
        fsync: fsync run files (see :class:`RunStore`).
        retry_rejected: do again the inputs the run rejected outright, with the current
            settings (see :meth:`RunStore.reopen_rejected`); their reject lines stay.

    Raises:
        ConfigMismatchError: the run was built with other settings.
        UnsupportedSettingError: the provider cannot honour a setting (nothing is done).
        RunLockedError: another process writes the run.
        FatalError: the provider cannot continue (finished inputs are kept).
        FileNotFoundError, AnnotationError: the inputs themselves are missing or unreadable.
    """
    check_config(run, config)
    provider = provider or get_provider(config.provider, **config.provider_options)
    provider.check_settings(config.min_turns, config.max_turns)
    reports: list[StepReport] = []
    manifest: dict = {}
    accounted = False

    def provider_entries() -> dict:
        entries: dict = {"provider": provider.describe()}
        if accounted:  # totals over every invocation on this run, rebuilt from its log
            entries["usage"] = totals(Path(run) / REQUESTS_FILE)
        return entries

    try:
        with RunStore(run, fsync=fsync) as store:
            if retry_rejected:
                store.reopen_rejected()
            accounted = provider.open_accounting(store.root / REQUESTS_FILE, fsync=fsync)
            manifest = update_manifest(store, config, extra=provider_entries())
            try:
                for step in STEPS:
                    if step not in steps:
                        continue
                    units, pool = _step_units(step, store, provider, config)
                    concurrency = config.workers if pool is not None and provider.cpu_bound else provider.concurrency

                    async def run_pass(step=step, units=units, concurrency=concurrency) -> StepReport:
                        keys = units.keys() if isinstance(units, StreamedUnits) else (u.key for u in units)
                        pending = sum(1 for key in keys if not store.is_done(step, key))
                        hook = progress(step, pending) if progress else None
                        return await run_step(store, step, units, concurrency, hook)

                    try:
                        report = merge_reports(await provider.drive(step, store.root, run_pass))
                    finally:
                        if pool is not None:
                            pool.shutdown(wait=True, cancel_futures=True)
                    reports.append(report)
                    manifest = update_manifest(store, config, step, report.seconds, extra=provider_entries())
            finally:  # a stop (fatal error, Ctrl-C) still records what was paid for
                manifest = update_manifest(store, config, extra=provider_entries())
    finally:
        await provider.aclose()
    return BuildResult(reports, manifest)
