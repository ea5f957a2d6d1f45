"""Score matched predictions: segmentation and response metrics, overall, by granularity, per sample.

The LLM judge (Table 4) is separate (:mod:`.judge`): it costs money and time, so it runs only
when asked, and its figures are added to :class:`Results` afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prist_builder.evaluate.boxes import BoxConvention
from prist_builder.evaluate.predictions import Matched, Problems, match, read_predictions
from prist_builder.evaluate.references import Reference, load_references
from prist_builder.evaluate.segmentation import by_granularity, count_pairs, summarize
from prist_builder.evaluate.text import DIST_ORDERS, PERCENT, bleu4, distinct, find_wordnet, score_texts


@dataclass(frozen=True)
class ScoringOptions:
    """How to score.

    Attributes:
        split: export split to read (ignored for run folders).
        box_convention: coordinates of boxes in text answers (:data:`~.boxes.BoxConvention`).
        include_final_turn: also score the last assistant message (the segmentation answer)
            with the response metrics. Off by default: it is a fixed phrase in PRIST (a free
            ceiling for any model), and Appendix C.3 leaves it out for general MLLMs.
        wordnet_dir: nltk data folder holding WordNet (``None``: nltk's default locations).
        bertscore_model: local model folder for BERTScore (``None``: no BERTScore).
    """

    split: str = "test"
    box_convention: BoxConvention = "pixel"
    include_final_turn: bool = False
    wordnet_dir: Path | None = None
    bertscore_model: Path | None = None


@dataclass
class Results:
    """Everything ``prist evaluate`` reports about one predictions file.

    Attributes:
        name: the run's label (the predictions file's stem unless given).
        samples: reference samples scored.
        segmentation: overall segmentation figures (:class:`~.segmentation.SegmentationScores`
            as a dict, percent), ``None`` when no reference has a mask.
        granularity: the same per granularity class present.
        response: response figures (percent) keyed by metric name.
        reference_dist: ``Dist-1``/``Dist-2`` of the reference messages (the ceiling for Dist-n).
        judge: Table 4 figures (``PR``, ``LC``, ``CC``, ``TR``, ``Win Rate``, human reference row),
            ``None`` unless the judge ran.
        problems: :meth:`Problems.as_dict`.
        mask_sources: how many masks came from each source (``mask``, ``box``, ...).
        per_sample: one dict per sample (its scores; see :func:`score`).
        settings: the options used (names, conventions, library versions).
    """

    name: str
    samples: int
    segmentation: dict[str, Any] | None
    granularity: dict[str, dict[str, Any]]
    response: dict[str, float]
    reference_dist: dict[str, float]
    problems: dict[str, Any]
    mask_sources: dict[str, int]
    per_sample: list[dict[str, Any]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    judge: dict[str, Any] | None = None

    def summary(self) -> dict[str, Any]:
        """Everything but the per-sample rows (the ``results.json`` body)."""
        return {k: v for k, v in self.__dict__.items() if k != "per_sample"}


def _pairs(matched: list[Matched], include_final: bool) -> tuple[list[str], list[str], list[int]]:
    hyps, refs, owners = [], [], []
    for index, item in enumerate(matched):
        wanted = item.reference.responses
        keep = len(wanted) if include_final else max(len(wanted) - 1, 0)
        for hyp, ref in zip(item.responses[:keep], wanted[:keep], strict=True):
            hyps.append(hyp)
            refs.append(ref)
            owners.append(index)
    return hyps, refs, owners


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for package in ("pycocotools", "sacrebleu", "rouge-score", "nltk", "bert-score"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            continue
    return out


def score(matched: list[Matched], problems: Problems, options: ScoringOptions, name: str) -> Results:
    """Segmentation and response figures of matched samples.

    Per-sample rows hold ``sample_id``, ``granularity``, ``mask_source``, ``IoU``, ``precision``,
    ``recall``, ``F1`` (percent; ``None`` without a reference mask), the pixel counts, and the
    sample's ``BLEU-4``, ``ROUGE-L`` and METEOR over its own messages (percent).
    """
    segmented = [m for m in matched if m.reference.mask is not None]
    counts = count_pairs([(m.mask, m.reference.mask) for m in segmented])  # type: ignore[misc]
    grains = [m.reference.granularity or "" for m in segmented]
    overall = summarize(counts)
    hyps, refs, owners = _pairs(matched, options.include_final_turn)
    wordnet = find_wordnet(str(options.wordnet_dir) if options.wordnet_dir else None)
    text = score_texts(hyps, refs, wordnet, options.bertscore_model)
    rows: list[dict[str, Any]] = []
    groups: dict[int, list[int]] = {}
    for pair, owner in enumerate(owners):
        groups.setdefault(owner, []).append(pair)
    by_sample = iter(zip(segmented, counts, strict=True))
    current = next(by_sample, None)
    for index, item in enumerate(matched):
        row: dict[str, Any] = {
            "sample_id": item.reference.sample_id,
            "granularity": item.reference.granularity,
            "mask_source": item.mask_source,
        }
        if current is not None and current[0] is item:
            c = current[1]
            row.update(
                IoU=PERCENT * c.iou,
                precision=PERCENT * c.precision,
                recall=PERCENT * c.recall,
                F1=PERCENT * c.f1,
                intersection=c.intersection,
                union=c.union,
                predicted_area=c.predicted,
                target_area=c.target,
            )
            current = next(by_sample, None)
        mine = groups.get(index, [])
        if mine:
            row["BLEU-4"] = bleu4([hyps[i] for i in mine], [refs[i] for i in mine])
            row["ROUGE-L"] = PERCENT * sum(text.rouge_l[i] for i in mine) / len(mine)
            row[text.meteor_name] = PERCENT * sum(text.meteor[i] for i in mine) / len(mine)
        rows.append(row)
    sources: dict[str, int] = {}
    for item in matched:
        sources[item.mask_source] = sources.get(item.mask_source, 0) + 1
    return Results(
        name=name,
        samples=len(matched),
        segmentation=overall.as_dict() if overall else None,
        granularity={k: v.as_dict() for k, v in by_granularity(counts, grains).items()},
        response=text.overall,
        reference_dist={f"Dist-{n}": distinct(refs, n) for n in DIST_ORDERS},
        problems=problems.as_dict(),
        mask_sources=sources,
        per_sample=rows,
        settings={
            "split": options.split,
            "box_convention": options.box_convention,
            "include_final_turn": options.include_final_turn,
            "response_pairs": len(hyps),
            "meteor": text.meteor_name,
            "segmentation_samples": len(segmented),
            "bertscore_model": str(options.bertscore_model) if options.bertscore_model else None,
            "precision_recall_f1": "micro (pixels of all samples pooled); *_macro: mean per sample",
            "versions": _versions(),
        },
    )


def evaluate(
    predictions: Path,
    references: Path | list[Reference],
    options: ScoringOptions = ScoringOptions(),
    name: str | None = None,
) -> tuple[Results, list[Matched]]:
    """Read, match and score a predictions file against a reference folder (or loaded references).

    Raises:
        FileNotFoundError: the predictions file or reference folder does not exist.
        ~prist_builder.evaluate.references.ReferenceError: the reference folder breaks its contract.
    """
    refs = references if isinstance(references, list) else load_references(Path(references), options.split)
    problems = Problems()
    found = read_predictions(Path(predictions), problems)
    matched = match(refs, found, options.box_convention, problems)
    return score(matched, problems, options, name or Path(predictions).stem), matched
