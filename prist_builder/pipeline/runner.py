"""Run one step over its pending inputs with bounded concurrency, committing as they finish."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from pydantic import BaseModel, ValidationError

from prist_builder.pipeline.store import RunStore
from prist_builder.providers.base import FatalProviderError
from prist_builder.records import Reject
from prist_builder.sources import InputRejected


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
    """Counts of one step run, in inputs (``built`` + ``rejected`` = processed now)."""

    step: str
    skipped: int = 0
    built: int = 0
    rejected: int = 0
    records: int = 0
    seconds: float = 0.0


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error.get("loc", ())) or "record"
    return f"{where}: {error.get('msg', str(exc))}"


async def _guarded(unit: Unit, step: str) -> Outcome:
    """Run a unit, turning every non-fatal failure into a reject that names the file."""
    def reject(reason: str, source: str | None, raw: object = None) -> Outcome:
        return Outcome(rejects=[Reject(input_id=unit.key, image_id=unit.image_id, step=step,  # type: ignore[arg-type]
                                       reason=reason, source_file=source, raw=raw)])
    try:
        return await unit.work()
    except FatalProviderError:
        raise
    except InputRejected as exc:
        outcome = reject(exc.reason, exc.source_file or unit.source_file, exc.raw)
        outcome.rejects[:0] = getattr(exc, "rejects", [])
        return outcome
    except ValidationError as exc:
        return reject(f"{unit.source_file or unit.key}: invalid {step} record: {_first_error(exc)}", unit.source_file)
    except Exception as exc:  # noqa: BLE001 - one bad input must not stop the run
        return reject(f"{unit.source_file or unit.key}: internal error {type(exc).__name__}: {exc}", unit.source_file)


async def _run(
    store: RunStore, step: str, units: Sequence[Unit], concurrency: int, advance: Callable[[Outcome], None]
) -> None:
    queue: asyncio.Queue[Unit] = asyncio.Queue()
    for unit in units:
        queue.put_nowait(unit)

    async def worker() -> None:
        while not queue.empty():
            unit = queue.get_nowait()
            outcome = await _guarded(unit, step)
            store.commit(step, unit.key, outcome.records, outcome.rejects)
            advance(outcome)

    workers = [asyncio.create_task(worker()) for _ in range(max(1, min(concurrency, len(units))))]
    try:
        await asyncio.gather(*workers)
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)


async def run_step(
    store: RunStore,
    step: str,
    units: Sequence[Unit],
    concurrency: int,
    on_done: Callable[[Outcome], None] | None = None,
) -> StepReport:
    """Process every unit whose key the journal does not hold yet.

    Args:
        store: the open run.
        step: ``elements``, ``trees`` or ``dialogues``.
        units: all inputs of the step; finished ones are skipped without any work.
        concurrency: most units in flight at once.
        on_done: called after each unit is committed (progress bars).

    Raises:
        FatalProviderError: the provider cannot continue; finished units stay committed.
    """
    started = time.perf_counter()
    pending = [u for u in units if not store.is_done(step, u.key)]
    report = StepReport(step=step, skipped=len(units) - len(pending))

    def advance(outcome: Outcome) -> None:
        if outcome.records:
            report.built += 1
            report.records += len(outcome.records)
        else:
            report.rejected += 1
        if on_done is not None:
            on_done(outcome)

    if pending:
        await _run(store, step, pending, concurrency, advance)
    report.seconds = time.perf_counter() - started
    return report
