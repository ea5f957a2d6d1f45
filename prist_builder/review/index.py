"""The review app's in-memory view of a run: every sample joined once at start-up.

Pages never re-read the run's files. The only file watched afterwards is
``RUN/reviews.jsonl``: when its size or modification time changes (a decision made here or by
another reviewer's process), the decisions are folded again and the affected samples get
their new review state and edited turns.
"""

from __future__ import annotations

import bisect
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import get_args

from prist_builder import appendlog
from prist_builder.annotation.masks import area
from prist_builder.pipeline.store import REJECTS_FILE, read_records, run_bounds
from prist_builder.records import Reject
from prist_builder.records.curation import REVIEWS_FILE, ReviewDecision
from prist_builder.samples import Review, ReviewStatus, Sample, apply_edits, fold_reviews, iter_samples
from prist_builder.stats import granularity

STATUSES: tuple[str, ...] = get_args(ReviewStatus)
"""Review states a sample can be in, in display order."""
GRANULARITIES: tuple[str, ...] = ("coarse", "medium", "fine", "none")
"""Granularity classes of :func:`prist_builder.stats.granularity`, plus ``none`` (no mask yet)."""
PAGE_SIZE = 50
"""Samples per list page."""
MAX_PAGE_SIZE = 500
"""Largest page size a request may ask for."""


@dataclass(frozen=True)
class Row:
    """What the list page shows and filters on, computed once per sample.

    Attributes:
        position: index of the sample in ``dialogues.jsonl`` order.
        sample_id, image_id, focus, provider: from the dialogue.
        focus_key: ``focus`` lower-cased, for substring search.
        granularity: ``coarse``/``medium``/``fine`` of the final mask (Table 2 rule), ``none``
            when the sample has no mask.
        turns: question/answer turns of the dialogue.
        image_rejects: inputs of the sample's image that the build set aside (``rejects.jsonl``).
    """

    position: int
    sample_id: str
    image_id: str
    focus: str
    focus_key: str
    provider: str
    granularity: str
    turns: int
    image_rejects: int


@dataclass
class Filters:
    """The list page's query: every field empty means "no constraint".

    Attributes:
        image: exact image id.
        q: case-insensitive substring of the focus text.
        provider: exact provider name.
        granularity: one of :data:`GRANULARITIES`.
        status: one of :data:`STATUSES`.
        rejects: ``yes`` (the image has build rejects) or ``no``.
        page: 1-based page number.
        size: samples per page.
    """

    image: str = ""
    q: str = ""
    provider: str = ""
    granularity: str = ""
    status: str = ""
    rejects: str = ""
    page: int = 1
    size: int = PAGE_SIZE

    @classmethod
    def from_query(cls, params: dict[str, str]) -> Filters:
        """Read filters from query parameters; unknown values read as no constraint."""

        def number(name: str, default: int, top: int) -> int:
            try:
                return min(max(int(params.get(name, default)), 1), top)
            except ValueError:
                return default

        return cls(
            image=params.get("image", "").strip(),
            q=params.get("q", "").strip(),
            provider=params.get("provider", "").strip(),
            granularity=params.get("granularity", "") if params.get("granularity") in GRANULARITIES else "",
            status=params.get("status", "") if params.get("status") in STATUSES else "",
            rejects=params.get("rejects", "") if params.get("rejects") in ("yes", "no") else "",
            page=number("page", 1, 10**9),
            size=number("size", PAGE_SIZE, MAX_PAGE_SIZE),
        )

    def query(self, page: int | None = None) -> dict[str, str]:
        """The non-empty filters as query parameters (``page`` only when given)."""
        out = {
            k: v
            for k, v in (
                ("image", self.image),
                ("q", self.q),
                ("provider", self.provider),
                ("granularity", self.granularity),
                ("status", self.status),
                ("rejects", self.rejects),
            )
            if v
        }
        if self.size != PAGE_SIZE:
            out["size"] = str(self.size)
        if page is not None:
            out["page"] = str(page)
        return out


@dataclass
class RunIndex:
    """All samples of a run, indexed for the review pages.

    Attributes:
        run: the run folder.
        samples: every sample in ``dialogues.jsonl`` order.
        rows: one :class:`Row` per sample, same order.
        by_id: sample id -> position.
        images: image id -> the image record (the only images the app serves).
        rejects: the build's ``rejects.jsonl`` records.
        bounds: the run's turn bounds (validation context of edits).
    """

    run: Path
    samples: list[Sample] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    by_id: dict[str, int] = field(default_factory=dict)
    images: dict = field(default_factory=dict)
    rejects: list[Reject] = field(default_factory=list)
    bounds: dict = field(default_factory=dict)
    _stamp: tuple[int, int] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def load(cls, run: Path) -> RunIndex:
        """Join the run folder once (via :func:`prist_builder.samples.iter_samples`).

        Raises:
            FileNotFoundError: ``run`` is not a run folder.
            prist_builder.appendlog.LogLineError: ``reviews.jsonl`` has a broken line.
        """
        run = Path(run)
        index = cls(run=run, bounds=run_bounds(run))
        index._stamp = index._reviews_stamp()
        index.rejects = read_records(run / REJECTS_FILE, Reject)
        per_image = Counter(r.image_id for r in index.rejects if r.image_id)
        for position, sample in enumerate(iter_samples(run)):
            index.samples.append(sample)
            index.by_id[sample.sample_id] = position
            index.images.setdefault(sample.image.image_id, sample.image)
            index.rows.append(_row(position, sample, per_image.get(sample.image.image_id, 0)))
        return index

    def _reviews_stamp(self) -> tuple[int, int] | None:
        try:
            info = (self.run / REVIEWS_FILE).stat()
        except FileNotFoundError:
            return None
        return info.st_size, info.st_mtime_ns

    def refresh(self) -> None:
        """Fold ``reviews.jsonl`` again if it changed since the last look (one ``stat`` otherwise)."""
        with self._lock:
            stamp = self._reviews_stamp()
            if stamp == self._stamp:
                return
            reviews = fold_reviews(list(appendlog.read(self.run / REVIEWS_FILE, ReviewDecision)))
            for sample in self.samples:
                review = reviews.get(sample.sample_id, Review())
                if review != sample.review:
                    _apply(sample, review, self.bounds, str(self.run / REVIEWS_FILE))
            self._stamp = stamp

    def decide(self, decision: ReviewDecision) -> None:
        """Append one decision to ``RUN/reviews.jsonl`` (crash-safe) and fold it in.

        Raises:
            OSError: the log cannot be written.
        """
        appendlog.append(self.run / REVIEWS_FILE, [decision])
        self.refresh()

    def sample(self, sample_id: str) -> Sample | None:
        """The sample with ``sample_id``, or ``None``."""
        position = self.by_id.get(sample_id)
        return None if position is None else self.samples[position]

    def status(self, position: int) -> str:
        """Current review status of the sample at ``position``."""
        return self.samples[position].review.status

    def select(self, filters: Filters) -> list[int]:
        """Positions of the samples matching ``filters``, in run order."""
        q = filters.q.lower()
        want_rejects = {"yes": True, "no": False}.get(filters.rejects)
        out = []
        for row in self.rows:
            if filters.image and row.image_id != filters.image:
                continue
            if q and q not in row.focus_key:
                continue
            if filters.provider and row.provider != filters.provider:
                continue
            if filters.granularity and row.granularity != filters.granularity:
                continue
            if want_rejects is not None and (row.image_rejects > 0) != want_rejects:
                continue
            if filters.status and self.samples[row.position].review.status != filters.status:
                continue
            out.append(row.position)
        return out

    def neighbours(self, selected: list[int], position: int) -> tuple[int | None, int | None]:
        """The selected positions just before and after ``position`` (which may itself be unselected)."""
        left = bisect.bisect_left(selected, position)
        right = bisect.bisect_right(selected, position)
        previous = selected[left - 1] if left > 0 else None
        following = selected[right] if right < len(selected) else None
        return previous, following

    def status_counts(self) -> dict[str, int]:
        """Samples per review status over the whole run."""
        counts = Counter(s.review.status for s in self.samples)
        return {status: counts.get(status, 0) for status in STATUSES}

    def providers(self) -> list[str]:
        """Provider names present in the run, sorted."""
        return sorted({row.provider for row in self.rows})


def _row(position: int, sample: Sample, image_rejects: int) -> Row:
    dialogue = sample.dialogue
    if sample.mask is None:
        grain = "none"
    else:
        grain = granularity(area(sample.mask), sample.image.height, sample.image.width)
    return Row(
        position=position,
        sample_id=dialogue.sample_id,
        image_id=dialogue.image_id,
        focus=dialogue.focus,
        focus_key=dialogue.focus.lower(),
        provider=dialogue.provider,
        granularity=grain,
        turns=dialogue.num_turns,
        image_rejects=image_rejects,
    )


def _apply(sample: Sample, review: Review, bounds: dict, where: str) -> None:
    """Give ``sample`` a new review state and its turns with that review's valid edits applied."""
    built = sample.dialogue.model_copy(update={"turns": list(sample.original_turns)})
    sample.dialogue = apply_edits(built, review, bounds, where)
    sample.review = review
