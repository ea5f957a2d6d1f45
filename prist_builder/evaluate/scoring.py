"""Score matched predictions: segmentation and response metrics, overall, by granularity, by
target kind, per sample.

GRES scoring (Liu et al., CVPR 2023) decides per sample whether the model *answered empty*
("no target"): it gave a usable answer (:attr:`~.predictions.Matched.answered`: a mask line, a
box, or "no detected") whose masks hold no pixel at all. That covers a line without ``[SEG]``
(``masks: []``, ``mask: null``), "no detected", and also a ``[SEG]`` whose mask came out with
no pixel set (the answer segments nothing, which is what the pixels are scored on). A missing,
wrong-size or unparsed prediction is no answer: it scores 0 on an empty target and counts
wrong for both N-acc and T-acc.

The LLM judge (Table 4) is separate (:mod:`.judge`): it costs money and time, so it runs only
when asked, and its figures are added to :class:`Results` afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from prist_builder.evaluate.boxes import BoxConvention
from prist_builder.evaluate.predictions import Matched, Problems, match, read_predictions
from prist_builder.evaluate.references import Reference, load_references
from prist_builder.evaluate.segmentation import KINDS, PairCounts, by_granularity, by_kind, count_pairs, summarize
from prist_builder.evaluate.targets import target_ious
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
        target_kinds: per target kind present (``single``, ``multi``, ``empty``): ``samples``,
            ``segmentation`` (as above, or ``None``), ``granularity`` and ``response``.
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
    target_kinds: dict[str, dict[str, Any]] = field(default_factory=dict)

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


def outcomes(segmented: list[Matched]) -> list[PairCounts]:
    """Pixel counts of each sample's union against its target union, with its GRES outcome
    (empty target, answered empty: see the module doc) and its matched per-target IoUs."""
    out = []
    for item, c in zip(segmented, count_pairs([(m.mask, m.reference.mask) for m in segmented]), strict=True):  # type: ignore[misc]
        ref = item.reference
        targets = ref.target_masks
        if len(targets) == 1 and len(item.masks) == 1:
            ious: tuple[float, ...] = (c.iou,)  # one mask each: the union's IoU, no matching needed
        else:
            ious = target_ious(item.masks, targets)
        answered_empty = (c.predicted == 0) if item.answered else None
        out.append(replace(c, empty_target=ref.kind == "empty", answered_empty=answered_empty, target_ious=ious))
    return out


def _text_figures(text: Any, hyps: list[str], refs: list[str], chosen: list[int]) -> dict[str, float]:
    """Response figures (percent) of the message pairs ``chosen`` (indices into ``hyps``/``refs``)."""
    if not chosen:
        return {}

    def mean(values: list[float]) -> float:
        return PERCENT * sum(values[i] for i in chosen) / len(chosen)

    mine = [hyps[i] for i in chosen]
    out = {"BLEU-4": bleu4(mine, [refs[i] for i in chosen]), "ROUGE-L": mean(text.rouge_l)}
    out[text.meteor_name] = mean(text.meteor)
    out.update({f"Dist-{n}": distinct(mine, n) for n in DIST_ORDERS})
    if text.bertscore is not None:
        out["BERTScore"] = mean(text.bertscore)
    return out


def by_target_kind(
    matched: list[Matched], segmented: list[Matched], counts: list[PairCounts], text: Any, pairs: tuple
) -> dict[str, dict[str, Any]]:
    """``Results.target_kinds``: per kind present, its samples, segmentation (with granularity)
    and response figures."""
    hyps, refs, owners = pairs
    seg_kinds = [m.reference.kind for m in segmented]
    scores = by_kind(counts, seg_kinds)
    out: dict[str, dict[str, Any]] = {}
    for kind in KINDS:
        members = {i for i, m in enumerate(matched) if m.reference.kind == kind}
        if not members:
            continue
        mine = [
            (c, m.reference.granularity or "")
            for c, m in zip(counts, segmented, strict=True)
            if m.reference.kind == kind
        ]
        out[kind] = {
            "samples": len(members),
            "segmentation": scores[kind].as_dict() if kind in scores else None,
            "granularity": {
                g: v.as_dict() for g, v in by_granularity([c for c, _ in mine], [g for _, g in mine]).items()
            },
            "response": _text_figures(text, hyps, refs, [i for i, o in enumerate(owners) if o in members]),
        }
    return out


def score(matched: list[Matched], problems: Problems, options: ScoringOptions, name: str) -> Results:
    """Segmentation and response figures of matched samples, overall and per target kind.

    Per-sample rows hold ``sample_id``, ``kind``, ``granularity``, ``mask_source``, ``IoU``,
    ``precision``, ``recall``, ``F1`` (percent; ``None`` without a reference mask), the pixel
    counts, ``answered_empty`` (GRES; ``None``: no usable answer), ``predicted_targets`` and
    ``target_IoU`` (percent, one per target in answer order, Hungarian-matched), and the
    sample's ``BLEU-4``, ``ROUGE-L`` and METEOR over its own messages (percent).
    """
    segmented = [m for m in matched if m.reference.mask is not None]
    counts = outcomes(segmented)
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
            "kind": item.reference.kind,
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
                answered_empty=c.answered_empty,
                predicted_targets=len(item.masks),
                target_IoU=[PERCENT * v for v in c.per_target],
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
        target_kinds=by_target_kind(matched, segmented, counts, text, (hyps, refs, owners)),
        settings={
            "split": options.split,
            "box_convention": options.box_convention,
            "include_final_turn": options.include_final_turn,
            "response_pairs": len(hyps),
            "meteor": text.meteor_name,
            "segmentation_samples": len(segmented),
            "bertscore_model": str(options.bertscore_model) if options.bertscore_model else None,
            "precision_recall_f1": "micro (pixels of all samples pooled); *_macro: mean per sample",
            "empty_targets": "GRES: IoU 1 when answered empty (no predicted pixel), else 0; N_acc, T_acc",
            "target_matching": "Hungarian on IoU (scipy linear_sum_assignment); unmatched targets 0",
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
