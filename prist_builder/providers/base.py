"""The step/provider seam: what every provider (``offline``, ``openai``) implements.

A provider writes the content of the three steps; the pipeline around it reads inputs,
chooses targets, validates, writes records and resumes. Each method handles one input
(one image) and may be called concurrently up to :attr:`Provider.concurrency` times.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from prist_builder.records import DialogueRecord, Element, ElementsRecord, TreeRecord
from prist_builder.records.limits import MAX_CHILDREN, MAX_TARGETS, MAX_TURNS, MIN_TARGETS, MIN_TURNS

if TYPE_CHECKING:  # annotations only: sources (numpy, Pillow, annotation) loads when a build runs
    from prist_builder.sources import LoadedImage


class UnsupportedSettingError(ValueError):
    """The provider cannot honour a build setting (e.g. turn bounds it never writes)."""


@dataclass(frozen=True)
class TargetSlot:
    """One path step 2 must write (issue 22: multi-target and empty-target samples).

    Attributes:
        kind: ``single`` (one element, the paper's data), ``multi`` (``elements`` holds the
            set, two or more, in the order the final answer names them) or ``empty`` (no
            element: the provider picks a thing the image does not hold, checked with
            :func:`prist_builder.providers.absent.absent_conflict`).
        elements: the target element(s); ``()`` for ``empty``.
    """

    kind: str
    elements: tuple[Element, ...] = ()


@dataclass
class StepContext:
    """Per-input settings handed to a provider.

    Attributes:
        rng: a generator seeded from ``(seed, step, input id)`` only, so that an input's
            output does not depend on which other inputs ran before it (resume-safe).
        min_turns, max_turns: dialogue length bounds in turns (Table 2).
        slots: step 2 only: the paths to write, in order, when the build asks for
            multi-target or empty-target samples (``--multi-share``, ``--empty-share``);
            ``None`` (the default) means one single-target path per element of ``targets``,
            exactly as before.
        paths: step 3 only: the target ids of the tree's paths still to write (a partly
            built tree retried with ``--retry-rejected``; the tree's other paths have their
            dialogues); ``None`` (the default) means every path.
    """

    rng: random.Random
    min_turns: int = MIN_TURNS
    max_turns: int = MAX_TURNS
    slots: list[TargetSlot] | None = None
    paths: list[str] | None = None

    @classmethod
    def for_input(cls, seed: int, step: str, key: str, **bounds: int) -> StepContext:
        """Context whose ``rng`` depends on ``seed``, ``step`` and ``key`` alone."""
        return cls(rng=random.Random(f"{seed}/{step}/{key}"), **bounds)

    def validation(self) -> dict[str, Any]:
        """The pydantic validation context that carries the bounds to the record validators."""
        return {
            "min_turns": self.min_turns,
            "max_turns": self.max_turns,
            "max_children": MAX_CHILDREN,
            "min_targets": MIN_TARGETS,
            "max_targets": MAX_TARGETS,
        }


class Provider(ABC):
    """Writes the content of each pipeline step for one image at a time.

    Attributes:
        name: registry name (``--provider NAME``).
        concurrency: how many inputs the runner may hand over at once.
        needs_regions: ``True`` if the provider cannot work on bare images.
        cpu_bound: step 1 is local CPU work (:meth:`elements_sync`), worth a process pool.
        tiny_target_share: the pipeline's target choice leaves out a small instance of a
            label under this share of the image (a fraction) beside a much larger one
            (:mod:`prist_builder.pipeline.targets`); 0 turns the rule off.
        needs_pixels: step 1 reads ``LoadedImage.pixels`` and ``masks``. A provider that
            sends the encoded bytes instead (``False``) gets its inputs read (decoded,
            regions rasterised and measured) in ``--workers`` processes, and a
            :class:`LoadedImage` without those two.
        heavy_annotated_reads: its :meth:`input_preparer` does tens of milliseconds of
            CPU work on each annotated input (e.g. draws Set-of-Mark outlines and re-encodes
            the image), more than the event loop spends on the input's request: on
            annotated inputs the build then gives every core to its reader processes
            (``prist_builder.pipeline.build.reader_count``).
    """

    name: ClassVar[str]
    concurrency: int = 1
    needs_regions: ClassVar[bool] = False
    cpu_bound: ClassVar[bool] = False
    needs_pixels: ClassVar[bool] = True
    heavy_annotated_reads: ClassVar[bool] = False
    tiny_target_share: ClassVar[float] = 0.0

    @abstractmethod
    async def elements(self, image: LoadedImage, ctx: StepContext) -> list[Element]:
        """Step 1 (section 3.2.1): the visible elements ``O = {o_i}`` of one image.

        Raises:
            prist_builder.sources.InputRejected: the image cannot yield elements.
        """

    def input_preparer(self) -> Callable[[LoadedImage], object] | None:
        """Plain CPU work on each step 1 input, run where the input is read (a ``--workers``
        process or a thread, never the event loop); its result is ``LoadedImage.prepared``.

        Returns:
            a picklable callable (it may be sent to a worker process), or ``None`` (the
            default: nothing to prepare).
        """
        return None

    def elements_sync(self, image: LoadedImage, ctx: StepContext) -> list[Element]:
        """Step 1 as plain CPU work, for providers that can run it in worker processes.

        Providers that set :attr:`cpu_bound` implement it; the pipeline then runs step 1
        in a process pool of ``--workers`` processes.
        """
        raise NotImplementedError(f"the {self.name} provider has no synchronous step 1")

    @abstractmethod
    async def tree(self, elements: ElementsRecord, targets: list[Element], ctx: StepContext) -> TreeRecord:
        """Step 2 (section 3.2.2): a reasoning question per target and the reasoning tree.

        ``targets`` are the K elements the pipeline drew (2 <= K <= min(N, 4)); the
        returned tree has one path per target, ending at a leaf that names it.
        """

    @abstractmethod
    async def dialogues(self, elements: ElementsRecord, tree: TreeRecord, ctx: StepContext) -> list[DialogueRecord]:
        """Step 3 (section 3.2.3): one dialogue per tree path, ending in ``[OBJ]focus[SEG]``."""

    def check_settings(self, min_turns: int, max_turns: int) -> None:  # noqa: B027 (optional hook)
        """Refuse settings this provider cannot meet, before any work.

        Raises:
            UnsupportedSettingError: with a one-line reason naming the option.
        """

    async def drive(self, step: str, run: Path, run_pass: Callable[[], Awaitable[Any]]) -> list[Any]:
        """Run one step. ``run_pass`` processes every pending input once and returns its
        report; ``drive`` returns the reports of the passes it ran, in order.

        The default runs one pass. A provider that gathers work first (the Batch API) runs
        several passes, sending what a pass deferred between them.
        """
        return [await run_pass()]

    def open_accounting(self, path: Path, fsync: bool = True) -> bool:
        """Append each model request's accounting line (tokens, USD) to ``path`` as it
        completes (``fsync``: at most once a second and at close, as the run files are).
        Returns ``False`` for providers that send no requests (the default)."""
        return False

    def describe(self) -> dict[str, Any]:
        """Settings of this provider worth recording in the run manifest."""
        return {"name": self.name}

    async def aclose(self) -> None:  # noqa: B027 (optional hook)
        """Release clients and files; called once when a build ends."""
