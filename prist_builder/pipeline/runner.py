"""Run one step over its pending inputs with bounded concurrency, committing as they finish."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from pydantic import BaseModel, ValidationError

from prist_builder.errors import Deferred, FatalError
from prist_builder.pipeline.store import RunStore
from prist_builder.records import Reject
from prist_builder.sources import InputRejected, PartlyRejected

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """What one input produced: records for the step file and rejects (possibly both)."""

    records: list[BaseModel] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)


@dataclass
class Unit:
    """One input of a step: its key in the journal and the coroutine that processes it."""

    key: str
    image_id: str | None
    source_file: str | None
    work: Callable[[], Awaitable[Outcome]]


@dataclass
class StepReport:
    """Counts of one step run, in inputs: ``built`` + ``rejected`` were processed now,
    ``deferred`` wait for a batch, ``skipped`` were finished before."""

    step: str
    skipped: int = 0
    built: int = 0
    rejected: int = 0
    deferred: int = 0
    records: int = 0
    seconds: float = 0.0


def merge_reports(passes: Sequence[StepReport]) -> StepReport:
    """Sum the passes of one step (a batch build runs several): counts add up, ``skipped``
    is the first pass's, ``deferred`` the last pass's (what is still waiting)."""
    first, last = passes[0], passes[-1]
    return StepReport(
        step=last.step,
        skipped=first.skipped,
        built=sum(p.built for p in passes),
        rejected=sum(p.rejected for p in passes),
        deferred=last.deferred,
        records=sum(p.records for p in passes),
        seconds=sum(p.seconds for p in passes),
    )


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error.get("loc", ())) or "record"
    return f"{where}: {error.get('msg', str(exc))}"


async def _guarded(unit: Unit, step: str) -> Outcome | None:
    """Run a unit, turning every non-fatal failure into a reject that names the file."""

    def reject(reason: str, source: str | None, raw: object = None) -> Outcome:
        return Outcome(
            rejects=[
                Reject(
                    input_id=unit.key,
                    image_id=unit.image_id,
                    step=step,  # type: ignore[arg-type]
                    reason=reason,
                    source_file=source,
                    raw=raw,
                )
            ]
        )

    try:
        return await unit.work()
    except Deferred as exc:  # left unfinished on purpose: a later pass or run completes it
        if not exc.quiet:
            log.warning("%s: left unfinished for the next run: %s", unit.source_file or unit.key, exc.reason)
        return None
    except FatalError:
        raise
    except PartlyRejected as exc:  # the good parts are kept, each bad one has its reject line
        return Outcome(records=list(exc.records), rejects=list(exc.rejects))
    except InputRejected as exc:
        outcome = reject(exc.reason, exc.source_file or unit.source_file, exc.raw)
        outcome.rejects[:0] = exc.rejects
        return outcome
    except ValidationError as exc:
        return reject(f"{unit.source_file or unit.key}: invalid {step} record: {_first_error(exc)}", unit.source_file)
    except Exception as exc:  # one bad input must not stop the run
        return reject(f"{unit.source_file or unit.key}: internal error {type(exc).__name__}: {exc}", unit.source_file)


async def _acquire_unless(semaphore: asyncio.Semaphore, failed: asyncio.Event) -> bool:
    """Acquire ``semaphore``; give up (``False``) as soon as ``failed`` is set."""
    if failed.is_set():
        return False
    acquire = asyncio.ensure_future(semaphore.acquire())
    stop = asyncio.ensure_future(failed.wait())
    await asyncio.wait({acquire, stop}, return_when=asyncio.FIRST_COMPLETED)
    stop.cancel()
    if acquire.done() and not failed.is_set():
        return True
    if acquire.done():
        semaphore.release()
    else:
        acquire.cancel()
    return False


COMMIT_WINDOW = 4
"""Units started but not yet committed are at most this many times the concurrency."""


async def _run(
    store: RunStore, step: str, units: Iterable[Unit], concurrency: int, advance: Callable[[Outcome], None]
) -> None:
    """Process units concurrently but commit them in input order.

    In-order commits make the step files byte-identical from run to run, whatever the
    timing. A unit that finishes early waits (in memory) for the ones before it; the
    window bounds how many may wait, so a slow unit holds back at most that many.
    """
    slots = asyncio.Semaphore(max(1, concurrency))
    window = asyncio.Semaphore(max(1, concurrency) * COMMIT_WINDOW)
    finished: dict[int, Outcome | None] = {}
    started: dict[int, Unit] = {}  # units in the window, by position: nothing else is held
    next_commit = 0

    failed = asyncio.Event()

    async def one(index: int, unit: Unit) -> None:
        nonlocal next_commit
        try:
            async with slots:
                if failed.is_set():  # a fatal error stopped the step: start nothing new
                    return
                finished[index] = await _guarded(unit, step)
        except BaseException:
            failed.set()
            raise
        while next_commit in finished:
            outcome = finished.pop(next_commit)
            done = started.pop(next_commit)
            if outcome is not None:
                store.commit(step, done.key, outcome.records, outcome.rejects)
            next_commit += 1
            window.release()
            advance(outcome)

    tasks: list[asyncio.Task[None]] = []
    try:
        for index, unit in enumerate(units):
            if not await _acquire_unless(window, failed):
                break
            started[index] = unit
            tasks.append(asyncio.create_task(one(index, unit)))
            if len(tasks) > 2 * len(started) + 64:  # let committed tasks go (a failure is kept for gather)
                tasks = [t for t in tasks if not t.done() or t.cancelled() or t.exception() is not None]
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def run_step(
    store: RunStore,
    step: str,
    units: Iterable[Unit],
    concurrency: int,
    on_done: Callable[[Outcome], None] | None = None,
) -> StepReport:
    """Process every unit whose key the journal does not hold yet.

    Args:
        store: the open run.
        step: ``elements``, ``trees`` or ``dialogues``.
        units: all inputs of the step, any iterable (a stream is read once, as the window
            moves); finished ones are skipped without any work.
        concurrency: most units in flight at once.
        on_done: called after each unit is committed (progress bars).

    Raises:
        FatalError: the provider cannot continue; finished units stay committed.
    """
    started = time.perf_counter()
    report = StepReport(step=step)

    def pending() -> Iterator[Unit]:
        for unit in units:
            if store.is_done(step, unit.key):
                report.skipped += 1
            else:
                yield unit

    def advance(outcome: Outcome | None) -> None:
        if outcome is None:
            report.deferred += 1
            return
        if outcome.records:
            report.built += 1
            report.records += len(outcome.records)
        else:
            report.rejected += 1
        if on_done is not None:
            on_done(outcome)

    await _run(store, step, pending(), concurrency, advance)
    report.seconds = time.perf_counter() - started
    return report
