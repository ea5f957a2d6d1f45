"""The review app's view of a run: an index of every sample, built once and kept beside the run.

Start-up reads ``RUN/.review-index.json`` (:mod:`prist_builder.review.index_store`) when the
run's files are unchanged since it was written, else builds and stores it; a sample is joined
(:func:`prist_builder.samples.join_sample`) from its records when a page shows it. The file
watched while serving is ``RUN/reviews.jsonl``: when its size or modification time changes (a
decision made here or by another reviewer's process), the decisions are folded again and
samples are joined again with their new review state and edited turns.
"""

from __future__ import annotations

import bisect
import copy
import functools
import json
import threading
from collections import Counter, OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, get_args

from prist_builder import appendlog
from prist_builder.pipeline.store import REJECTS_FILE, read_records, run_bounds
from prist_builder.records import DialogueRecord, ElementsRecord, ImageRecord, Reject, TreeRecord
from prist_builder.records.curation import FINAL_MASKS_FILE, REVIEWS_FILE, FinalMask, ReviewDecision
from prist_builder.records.limits import TARGET_KINDS
from prist_builder.review.index_store import DIALOGUES, ELEMENTS, NO_TREE, TREES, load_or_build, read_line
from prist_builder.samples import Review, ReviewStatus, Sample, fold_reviews, join_sample, read_manifest

STATUSES: tuple[str, ...] = get_args(ReviewStatus)
"""Review states a sample can be in, in display order."""
GRANULARITIES: tuple[str, ...] = ("coarse", "medium", "fine", "none")
"""Granularity classes of :func:`prist_builder.stats.granularity`, plus ``none`` (no mask yet)."""
PAGE_SIZE = 50
"""Samples per list page."""
MAX_PAGE_SIZE = 500
"""Largest page size a request may ask for."""


class Row(NamedTuple):
    """What the list page shows and filters on, computed once per sample (a named tuple: a
    start makes one per sample of the run, three times faster than a frozen dataclass).

    Attributes:
        position: index of the sample in ``dialogues.jsonl`` order.
        sample_id, image_id, focus, provider: from the dialogue.
        focus_key: ``focus`` lower-cased, for substring search.
        granularity: ``coarse``/``medium``/``fine`` of the final mask (Table 2 rule), ``none``
            when the sample has no mask or an empty target.
        turns: question/answer turns of the dialogue.
        image_rejects: inputs of the sample's image that the build set aside (``rejects.jsonl``).
        kind: ``single``, ``multi`` or ``empty`` (:data:`~prist_builder.records.limits.TARGET_KINDS`).
        targets: number of targets the final answer segments (1, two or more, 0).
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
    kind: str = "single"
    targets: int = 1


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
        kind: target kind, one of :data:`~prist_builder.records.limits.TARGET_KINDS`.
        page: 1-based page number.
        size: samples per page.
    """

    image: str = ""
    q: str = ""
    provider: str = ""
    granularity: str = ""
    status: str = ""
    rejects: str = ""
    kind: str = ""
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
            kind=params.get("kind", "") if params.get("kind") in TARGET_KINDS else "",
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
                ("kind", self.kind),
            )
            if v
        }
        if self.size != PAGE_SIZE:
            out["size"] = str(self.size)
        if page is not None:
            out["page"] = str(page)
        return out


class _Samples(Sequence[Sample]):
    """The samples of a :class:`RunIndex` in run order, each joined when first asked for."""

    def __init__(self, index: RunIndex) -> None:
        self._index = index

    def __len__(self) -> int:
        return len(self._index.rows)

    def __getitem__(self, position: int) -> Sample:  # type: ignore[override]
        return self._index.sample_at(position)


class _Images(Mapping[str, ImageRecord]):
    """Image id -> :class:`ImageRecord` without its regions, read from the image's
    ``elements.jsonl`` line when first asked for (a start validates none of them)."""

    def __init__(self, run: Path, rows: list[list], offsets: list[list[int]]) -> None:
        self._run, self._rows, self._offsets = run, rows, offsets
        self._done: dict[str, ImageRecord] = {}

    @functools.cached_property
    def _at(self) -> dict[str, int]:
        """Image id -> offset of its line in ``elements.jsonl``, in run order."""
        return {row[1]: offset[1] for row, offset in zip(self._rows, self._offsets, strict=True)}

    def __getitem__(self, image_id: str) -> ImageRecord:
        record = self._done.get(image_id)
        if record is None:
            image = json.loads(read_line(self._run / ELEMENTS, self._at[image_id]))["image"]
            image.pop("regions", None)
            record = self._done[image_id] = ImageRecord.model_validate(image)
        return record

    def __iter__(self) -> Iterator[str]:
        return iter(self._at)

    def __len__(self) -> int:
        return len(self._at)


@dataclass
class RunIndex:
    """All samples of a run, indexed for the review pages.

    The index of rows, record offsets and images is built once and kept beside the run
    (:mod:`prist_builder.review.index_store`); a sample is joined from its three lines when a
    page needs it (the latest :data:`SAMPLE_CACHE` are kept).

    Attributes:
        run: the run folder.
        rows: one :class:`Row` per sample, in ``dialogues.jsonl`` order.
        by_id: sample id -> position.
        images: image id -> the image record without its regions (the only images the app serves),
            each read from its ``elements.jsonl`` line when first asked for.
        reviews: sample id -> its folded review state (``reviews.jsonl``).
        reject_count: lines of the build's ``rejects.jsonl``.
        bounds: the run's turn bounds (validation context of edits).
        from_disk: the index was read from ``RUN/.review-index.json`` (not rebuilt).
    """

    run: Path
    rows: list[Row] = field(default_factory=list)
    by_id: dict[str, int] = field(default_factory=dict)
    images: Mapping[str, ImageRecord] = field(default_factory=dict)
    reviews: dict[str, Review] = field(default_factory=dict)
    reject_count: int = 0
    bounds: dict = field(default_factory=dict)
    from_disk: bool = False
    _offsets: list[list[int]] = field(default_factory=list)
    _cache: OrderedDict[int, Sample] = field(default_factory=OrderedDict)
    _finals: dict[str, FinalMask] | None = None
    _manifest: dict | None = None
    _stamp: tuple[int, int] | None = None
    _lock: threading.RLock = field(default_factory=threading.RLock)

    @classmethod
    def load(cls, run: Path) -> RunIndex:
        """The run's index: the stored one when the run is unchanged, else built and stored.

        Raises:
            FileNotFoundError: ``run`` is not a run folder.
            prist_builder.appendlog.LogLineError: ``reviews.jsonl`` or ``final_masks.jsonl`` has a broken line.
        """
        run = Path(run)
        index = cls(run=run, bounds=run_bounds(run))
        stored = load_or_build(run, index.bounds)
        index.from_disk = not stored.built
        index.rows = [
            Row(i, sample_id, image_id, focus, focus.lower(), provider, grain, turns, rejects, kind, count)
            for i, (sample_id, image_id, focus, provider, grain, turns, rejects, kind, count) in enumerate(stored.rows)
        ]
        index.by_id = {row.sample_id: row.position for row in index.rows}
        index._offsets = stored.offsets
        index.images = _Images(run, stored.rows, stored.offsets)
        index.reject_count = stored.rejects
        index._stamp = index._reviews_stamp()
        index.reviews = fold_reviews(list(appendlog.read(run / REVIEWS_FILE, ReviewDecision)))
        return index

    @property
    def samples(self) -> Sequence[Sample]:
        """Every sample in run order, joined on access."""
        return _Samples(self)

    @functools.cached_property
    def rejects(self) -> list[Reject]:
        """The build's ``rejects.jsonl`` records (read when first asked for)."""
        return read_records(self.run / REJECTS_FILE, Reject)

    def sample_at(self, position: int) -> Sample:
        """The sample at ``position``, joined from its records with its current review.

        Raises:
            IndexError: no such position.
        """
        with self._lock:
            cached = self._cache.get(position)
            if cached is not None:
                self._cache.move_to_end(position)
                return cached
            row = self.rows[position]
            dialogue_at, elements_at, tree_at = self._offsets[position]
            dialogue = DialogueRecord.model_validate_json(
                read_line(self.run / DIALOGUES, dialogue_at), context=self.bounds
            )
            elements = ElementsRecord.model_validate_json(read_line(self.run / ELEMENTS, elements_at))
            tree = None if tree_at == NO_TREE else TreeRecord.model_validate_json(read_line(self.run / TREES, tree_at))
            if self._finals is None:
                self._finals = appendlog.latest(
                    appendlog.read(self.run / FINAL_MASKS_FILE, FinalMask), lambda r: r.sample_id
                )
            if self._manifest is None:
                self._manifest = read_manifest(self.run)
            review = copy.deepcopy(self.reviews.get(row.sample_id, Review()))
            sample = join_sample(
                dialogue,
                elements,
                tree,
                self._finals.get(row.sample_id),
                review,
                self._manifest,
                self.bounds,
                str(self.run / REVIEWS_FILE),
            )
            self._cache[position] = sample
            if len(self._cache) > SAMPLE_CACHE:
                self._cache.popitem(last=False)
            return sample

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
            self.reviews = fold_reviews(list(appendlog.read(self.run / REVIEWS_FILE, ReviewDecision)))
            self._cache.clear()  # joined again with their new review on the next look
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
        return None if position is None else self.sample_at(position)

    def review(self, position: int) -> Review:
        """Current review state of the sample at ``position`` (as folded from ``reviews.jsonl``)."""
        return self.reviews.get(self.rows[position].sample_id) or _UNREVIEWED

    def status(self, position: int) -> str:
        """Current review status of the sample at ``position``."""
        return self.review(position).status

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
            if filters.kind and row.kind != filters.kind:
                continue
            if filters.status and self.status(row.position) != filters.status:
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
        counts = Counter(self.status(row.position) for row in self.rows)
        return {status: counts.get(status, 0) for status in STATUSES}

    def kind_counts(self) -> dict[str, int]:
        """Samples per target kind over the whole run (:data:`~prist_builder.records.limits.TARGET_KINDS` order)."""
        counts = Counter(row.kind for row in self.rows)
        return {kind: counts.get(kind, 0) for kind in TARGET_KINDS}

    def providers(self) -> list[str]:
        """Provider names present in the run, sorted."""
        return sorted({row.provider for row in self.rows})


_UNREVIEWED = Review()
SAMPLE_CACHE = 256
"""Joined samples a :class:`RunIndex` keeps (the pages a reviewer goes back and forth between)."""
