"""The three steps as units of work over a run folder (paper section 3.2).

Each step reads what the previous one wrote, so ``prist build trees --run RUN`` needs
nothing but the run folder. The pipeline, not the provider, draws the K targets of
step 2-1, so that every provider follows the same rule.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from concurrent.futures import BrokenExecutor, Executor
from pathlib import Path
from typing import Any, TypeVar

from prist_builder.errors import FatalError
from prist_builder.pipeline.manifest import BuildConfig
from prist_builder.pipeline.runner import Outcome, Unit
from prist_builder.pipeline.store import RunStore, iter_lines, line_image_id
from prist_builder.pipeline.targets import choose_slots, choose_targets, kinds_rng
from prist_builder.providers.base import Provider, StepContext
from prist_builder.records import Element, ElementsRecord, Reject, TreeRecord
from prist_builder.records.limits import MIN_TARGETS
from prist_builder.sources import InputRejected, LoadedImage, PartlyRejected, SourceItem, load_item, read_image_bytes

T = TypeVar("T")


def _context(config: BuildConfig, step: str, key: str) -> StepContext:
    return StepContext.for_input(config.seed, step, key, min_turns=config.min_turns, max_turns=config.max_turns)


def prepare(item: SourceItem, needs_regions: bool, provider_name: str, pixels: bool = True) -> LoadedImage:
    """Read one input and check it can feed step 1 (``pixels``: see :func:`load_item`).

    Raises:
        InputRejected: unreadable input, fewer than two usable regions, or no regions for
            a provider that needs them; earlier per-shape rejects ride along in ``rejects``.
    """
    loaded = load_item(item, pixels=pixels)
    record = loaded.record
    rejects = [
        Reject(
            input_id=f"{item.image_id}/{p.where}",
            image_id=item.image_id,
            step="elements",
            reason=p.reason,
            source_file=record.annotation_path,
            raw=p.raw,
        )
        for p in loaded.problems
    ]
    where = record.annotation_path or record.path
    usable = [r for r in record.regions if not r.ignore]
    if record.source != "images" and len(usable) < MIN_TARGETS:
        reason = f"{where}: {len(usable)} usable region(s); an image needs at least {MIN_TARGETS}"
        raise InputRejected(reason, where, rejects=rejects)
    if record.source == "images" and needs_regions:
        reason = f"{where}: no Labelme or COCO regions; the {provider_name} provider needs them"
        raise InputRejected(reason, where, rejects=rejects)
    loaded.rejects = rejects
    return loaded


def _read(
    item: SourceItem,
    needs_regions: bool,
    provider_name: str,
    pixels: bool,
    preparer: Callable[[LoadedImage], object] | None,
    in_worker: bool = False,
) -> LoadedImage:
    """:func:`prepare`, then the provider's ``input_preparer`` (in a worker process or thread).

    ``in_worker``: the answer goes back to the build process, without the bytes of an
    image file (``data`` empty; the build reads them again with :func:`read_image_bytes`).
    Sending a few hundred KiB through the pool's pipe takes a read per 64 KiB, each
    waiting for the GIL of the busy build process: slower than one file read and a hash.
    """
    loaded = prepare(item, needs_regions, provider_name, pixels)
    if preparer is not None:
        loaded.prepared = preparer(loaded)
    if in_worker and not loaded.record.embedded:
        loaded.data = b""
    return loaded


def _elements_outcome(item: SourceItem, loaded: LoadedImage, provider_name: str, elements: list[Element]) -> Outcome:
    record = ElementsRecord(image_id=item.image_id, provider=provider_name, image=loaded.record, elements=elements)
    return Outcome(records=[record], rejects=loaded.rejects)


_WORKER_PROVIDERS: dict[str, Provider] = {}


def _elements_in_worker(item: SourceItem, config: BuildConfig) -> Outcome:
    """Step 1 for one input inside a worker process (CPU-bound providers only)."""
    provider = _WORKER_PROVIDERS.get(config.provider)
    if provider is None:
        from prist_builder.providers import get_provider

        provider = _WORKER_PROVIDERS[config.provider] = get_provider(config.provider, **config.provider_options)
    loaded = prepare(item, provider.needs_regions, provider.name)
    ctx = _context(config, "elements", item.image_id)
    return _elements_outcome(item, loaded, provider.name, provider.elements_sync(loaded, ctx))


async def _in_pool(pool: Executor, function: Callable[..., T], *args: object) -> T:
    """``function(*args)`` in a worker process of ``pool``.

    Raises:
        FatalError: a worker died (killed, out of memory); nothing is rejected for it.
    """
    try:
        return await asyncio.get_running_loop().run_in_executor(pool, function, *args)
    except BrokenExecutor as exc:
        raise FatalError(
            f"a step 1 worker process died ({exc}); finished inputs are kept, run the same command to go on"
        ) from None


READ_BATCH = 4
"""Inputs per task of the reader pool. The pool hands a worker its next task only when its
manager thread gets the GIL of the busy build process; a task of a few inputs keeps the
worker busy meanwhile (measured with ``benchmarks/openai_build.py``)."""


def _read_batch(items: list[SourceItem], *reading: Any) -> list[LoadedImage | Exception]:
    """:func:`_read` (``in_worker``) of each item; an item's failure is its own result."""
    results: list[LoadedImage | Exception] = []
    for item in items:
        try:
            results.append(_read(item, *reading, True))
        except Exception as exc:  # handed to that item's unit, which re-raises it
            results.append(exc)
    return results


class _Reader:
    """Reads step 1 inputs in a process pool, :data:`READ_BATCH` pending inputs per task
    after the first :data:`READ_BATCH`, which go one per task (the first requests leave
    after one input's work, not a batch's: a fifth of a second sooner with Set-of-Mark
    images at ``--concurrency 8``): the task of an input's batch starts when the first of
    them is asked for (the runner starts units in input order). A batch is let go once
    each of its inputs was taken, so memory does not grow with the run."""

    def __init__(self, pool: Executor, items: list[SourceItem], pending: Callable[[SourceItem], bool], *reading: Any):
        todo = [item for item in items if pending(item)]
        self._pool, self._reading = pool, reading
        starts = [*range(min(READ_BATCH, len(todo))), *range(READ_BATCH, len(todo), READ_BATCH)]
        self._batches = [todo[a:b] for a, b in zip(starts, [*starts[1:], len(todo)], strict=True)]
        self._where = {id(item): (n, i) for n, batch in enumerate(self._batches) for i, item in enumerate(batch)}
        self._left = [len(batch) for batch in self._batches]
        self._tasks: dict[int, asyncio.Future[list[LoadedImage | Exception]]] = {}

    async def read(self, item: SourceItem) -> LoadedImage:
        """The input read (image bytes read again here, see :func:`_read`).

        Raises:
            InputRejected: the input cannot feed step 1.
            FatalError: a worker process died.
        """
        where = self._where.pop(id(item), None)
        if where is None:  # not pending when the step began, or asked again (a later pass): alone
            results = await _in_pool(self._pool, _read_batch, [item], *self._reading)
        else:
            batch, index = where
            task = self._tasks.get(batch)
            if task is None:
                task = self._tasks[batch] = asyncio.ensure_future(
                    _in_pool(self._pool, _read_batch, self._batches[batch], *self._reading)
                )
            self._left[batch] -= 1
            if not self._left[batch]:
                del self._tasks[batch]  # the last of its inputs: the task lives on only in this await
            results = (await asyncio.shield(task))[index : index + 1]
        (result,) = results
        if isinstance(result, Exception):
            raise result
        if not result.data:
            result.data = read_image_bytes(result.record)
        return result


def elements_units(
    items: list[SourceItem],
    provider: Provider,
    config: BuildConfig,
    pool: Executor | None = None,
    pending: Callable[[SourceItem], bool] | None = None,
) -> list[Unit]:
    """Step 1 over source items: read the image and regions, then ask the provider.

    With a ``pool``, worker processes read the inputs: the whole step for a CPU-bound
    provider (see ``Provider.elements_sync``), the reading only for one that does not
    need pixels (``Provider.needs_pixels``), which then asks its model here (``pending``
    tells the items still to do, read in batches). Records are the same either way.
    """
    ready = pool is not None and provider.cpu_bound
    preparer = provider.input_preparer()
    reading = (provider.needs_regions, provider.name, provider.needs_pixels, preparer)
    reader = _Reader(pool, items, pending or (lambda item: True), *reading) if pool and not ready else None

    def unit(item: SourceItem) -> Unit:
        async def work() -> Outcome:
            if ready:
                return await _in_pool(pool, _elements_in_worker, item, config)
            if reader is not None:
                loaded = await reader.read(item)
            else:  # decoding and rasterising regions take milliseconds of CPU: off the event loop
                loaded = await asyncio.to_thread(_read, item, *reading)
            elements = await provider.elements(loaded, _context(config, "elements", item.image_id))
            return _elements_outcome(item, loaded, provider.name, elements)

        return Unit(item.image_id, item.image_id, item.source_file, work)

    return [unit(item) for item in items]


def finished_unit(key: str) -> Unit:
    """A stand-in for an input the step has finished: the runner skips it by its key."""

    async def work() -> Outcome:  # never run: the journal holds the key
        raise RuntimeError(f"{key} is already finished")

    return Unit(key, key, None, work)


class StreamedUnits:
    """Units made one at a time from a run file, read again at each pass (a batch build runs
    several): memory does not grow with the run."""

    def __init__(self, make: Callable[[], Iterator[Unit]], path: Path) -> None:
        self._make = make
        self._path = path

    def __iter__(self) -> Iterator[Unit]:
        return self._make()

    def keys(self) -> Iterator[str]:
        """The units' keys (image ids), read from the lines without parsing a record."""
        for _, line in iter_lines(self._path):
            key = line_image_id(line)
            if key is not None:
                yield key


def trees_units(store: RunStore, provider: Provider, config: BuildConfig) -> StreamedUnits:
    """Step 2 over the elements records of the run (streamed from ``elements.jsonl``); with a
    ``multi_share`` or ``empty_share`` the drawn targets become target slots
    (:func:`~prist_builder.pipeline.targets.choose_slots`, ``StepContext.slots``)."""

    def unit(record: ElementsRecord) -> Unit:
        async def work() -> Outcome:
            ctx = _context(config, "trees", record.image_id)
            share = provider.tiny_target_share
            targets = choose_targets(record, ctx.rng, config.targets, config.granularity_mix, share)
            if config.multi_share or config.empty_share:  # else no draw at all: the paper's data, as before
                rng = kinds_rng(config.seed, record.image_id)
                ctx.slots = choose_slots(record, targets, rng, config.multi_share, config.empty_share, share)
            return Outcome(records=[await provider.tree(record, targets, ctx)])

        return Unit(record.image_id, record.image_id, record.image.annotation_path or record.image.path, work)

    def units() -> Iterator[Unit]:
        for offset, line in iter_lines(store.data_path("elements")):
            image_id = line_image_id(line)
            if image_id is not None and store.is_done("trees", image_id):
                yield finished_unit(image_id)  # counted as skipped, nothing read
            else:
                yield unit(store.record_at("elements", offset))

    return StreamedUnits(units, store.data_path("elements"))


def built_targets(store: RunStore, image_ids: set[str]) -> dict[str, set[str]]:
    """``image_id -> target_element_id`` of each dialogue the run holds for ``image_ids``
    (read as a stream, only when there are such images: a retry of partly built trees)."""
    built: dict[str, set[str]] = {image_id: set() for image_id in image_ids}
    if image_ids:
        for _, line in iter_lines(store.data_path("dialogues")):
            record = json.loads(line)
            if record["image_id"] in built:
                built[record["image_id"]].add(record["target_element_id"])
    return built


def dialogues_units(store: RunStore, provider: Provider, config: BuildConfig) -> StreamedUnits:
    """Step 3 over the trees of the run (streamed), each with its elements record (read by
    its offset in ``elements.jsonl`` when its unit is made). A tree partly built before
    (some dialogues rejected, reopened by ``--retry-rejected``) is given to the provider
    with the paths still missing: the dialogues it has stay
    as they are and are not asked for again (``StepContext.paths``)."""
    offsets = store.record_offsets("elements")
    built = built_targets(store, store.partly_built("dialogues"))

    def unit(tree: TreeRecord) -> Unit:
        record: ElementsRecord = store.record_at("elements", offsets[tree.image_id])
        missing = None
        if tree.image_id in built:
            missing = [p.target_element_id for p in tree.paths if p.target_element_id not in built[tree.image_id]]

        async def work() -> Outcome:
            if missing == []:  # every path has its dialogue (a partly built tree mended by hand)
                return Outcome()
            ctx = _context(config, "dialogues", tree.image_id)
            ctx.paths = missing
            try:
                records = await provider.dialogues(record, tree, ctx)
            except PartlyRejected as exc:
                exc.records = [r for r in exc.records if missing is None or r.target_element_id in missing]
                raise
            return Outcome(records=[r for r in records if missing is None or r.target_element_id in missing])

        return Unit(tree.image_id, tree.image_id, record.image.annotation_path or record.image.path, work)

    def units() -> Iterator[Unit]:
        for offset, line in iter_lines(store.data_path("trees")):
            image_id = line_image_id(line)
            if image_id is not None and store.is_done("dialogues", image_id):
                yield finished_unit(image_id)
            elif image_id is None or image_id in offsets:
                yield unit(store.record_at("trees", offset))

    return StreamedUnits(units, store.data_path("trees"))


def source_paths(config: BuildConfig) -> dict[str, Path | None]:
    """The config's input paths as ``Path`` objects (``None`` where not given)."""
    return {
        k: Path(v) if v else None
        for k, v in (("images", config.images), ("labelme", config.labelme), ("coco", config.coco))
    }
