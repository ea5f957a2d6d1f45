"""Predictions matched to references, with every problem counted by kind.

Nothing is dropped silently. Each kind below is counted and listed (with examples) in the
results; the sample is still scored where that makes sense:

- ``bad_line``: a line that is not JSON or not a :class:`Prediction` (skipped; if that leaves
  a reference without prediction, it is also ``missing``).
- ``unknown_sample``: a prediction for a sample the reference split does not hold (not scored).
- ``duplicate``: a second prediction for a sample (the first one is scored).
- ``missing``: a reference without prediction: scored as an empty mask and empty responses.
- ``wrong_size``: a predicted mask (the union or one of ``masks``) whose size differs from the
  reference image: scored empty.
- ``unparsed_box``: no ``mask``/``masks`` field, and the last response holds neither a box nor
  ``no detected``: scored empty (general-MLLM answers, Appendix C.3), and counted as no answer
  (wrong for both N-acc and T-acc). An explicit ``"mask": null`` is an answer: "no target".
- ``no_detected``: the model answered ``no detected``: scored empty (counted, not an error).
- ``short_responses``: fewer responses than reference assistant messages (missing ones score
  as empty text); ``extra_responses``: more (the extra ones are ignored).
- ``reference_without_mask``: the reference has no target mask: left out of segmentation.
- ``judge_failed``, ``judge_pending``: judge requests refused or invalid after re-asks, or not
  answered yet (:mod:`.judge`); that repeat is left out of the sample's judge means.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from prist_builder.evaluate.boxes import BoxConvention, box_mask, parse_box
from prist_builder.evaluate.references import Reference
from prist_builder.records.prediction import Prediction
from prist_builder.records.rle import RLE

PROBLEM_KINDS = (
    "bad_line",
    "unknown_sample",
    "duplicate",
    "missing",
    "wrong_size",
    "unparsed_box",
    "no_detected",
    "short_responses",
    "extra_responses",
    "reference_without_mask",
    "judge_failed",
    "judge_pending",
)
"""Every kind of problem the scorer counts, in report order."""
ANSWER_SOURCES = ("mask", "box", "no_detected")
"""Mask sources that are an answer of the model (a mask, a box, or "no target")."""
MAX_EXAMPLES = 5
"""Examples kept per problem kind for the report."""


@dataclass
class Problems:
    """Problem counts by kind, with a few examples of each.

    Attributes:
        counts: kind -> number of occurrences (every kind of :data:`PROBLEM_KINDS` present, 0 if none).
        examples: kind -> up to :data:`MAX_EXAMPLES` ``"where: what"`` strings.
    """

    counts: Counter = field(default_factory=lambda: Counter({k: 0 for k in PROBLEM_KINDS}))
    examples: dict[str, list[str]] = field(default_factory=dict)

    def add(self, kind: str, example: str) -> None:
        """Count one problem of ``kind``."""
        self.counts[kind] += 1
        shown = self.examples.setdefault(kind, [])
        if len(shown) < MAX_EXAMPLES:
            shown.append(example)

    def as_dict(self) -> dict:
        """``{"counts": {...}, "examples": {...}}``."""
        return {"counts": {k: self.counts[k] for k in PROBLEM_KINDS}, "examples": self.examples}


def read_predictions(path: Path, problems: Problems) -> dict[str, Prediction]:
    """Predictions of a JSONL file by sample id (the first of duplicates); bad lines go to ``problems``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such predictions file")
    out: dict[str, Prediction] = {}
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path.name}:{number}"
            try:
                prediction = Prediction.model_validate(json.loads(line))
            except json.JSONDecodeError as exc:
                problems.add("bad_line", f"{where}: not JSON ({exc.msg})")
                continue
            except ValidationError as exc:
                first = exc.errors()[0]
                field_name = ".".join(str(p) for p in first["loc"]) or "line"
                problems.add("bad_line", f"{where}: {field_name}: {first['msg']}")
                continue
            if prediction.sample_id in out:
                problems.add("duplicate", f"{where}: {prediction.sample_id} (the first is scored)")
                continue
            out[prediction.sample_id] = prediction
    return out


@dataclass(frozen=True)
class Matched:
    """A reference with what the model answered, ready to score.

    Attributes:
        reference: the reference sample.
        prediction: the model's prediction, ``None`` when missing.
        mask: the mask to score (``None``: empty), from the prediction's mask or its box: the
            union of the predicted masks.
        mask_source: ``mask``, ``box``, ``no_detected``, ``unparsed_box``, ``wrong_size`` or ``missing``.
        responses: generated messages aligned with the reference's assistant messages
            (missing ones are ``""``).
        masks: the predicted mask of each target (one per ``[SEG]``;
            :meth:`~prist_builder.records.prediction.Prediction.target_masks`; a box answer is one),
            ``()`` when the model gave none or its masks were set aside.
    """

    reference: Reference
    prediction: Prediction | None
    mask: RLE | None
    mask_source: str
    responses: tuple[str, ...]
    masks: tuple[RLE, ...] = ()

    @property
    def answered(self) -> bool:
        """The model gave a usable answer (not ``missing``, ``wrong_size`` or ``unparsed_box``)."""
        return self.mask_source in ANSWER_SOURCES


def resolve_mask(
    reference: Reference, prediction: Prediction | None, convention: BoxConvention, problems: Problems
) -> tuple[RLE | None, str]:
    """The mask to score for ``reference`` and where it came from (see :class:`Matched`)."""
    mask, _, source = resolve_masks(reference, prediction, convention, problems)
    return mask, source


def resolve_masks(
    reference: Reference, prediction: Prediction | None, convention: BoxConvention, problems: Problems
) -> tuple[RLE | None, tuple[RLE, ...], str]:
    """The union mask to score for ``reference``, the per-target masks, and where they came from.

    A prediction's ``mask`` is its union; a line giving only ``masks`` has them merged (``[]``:
    the model answered "no target"). A line giving neither falls back to a ``<box>`` or "no
    detected" in its last response; failing both, an explicit ``"mask": null`` is an answer
    without ``[SEG]`` ("no target", source ``mask``) and a line without the field is
    ``unparsed_box``. Any mask of the wrong size sets the whole prediction aside (``wrong_size``).
    """
    from prist_builder.annotation.masks import union_rle

    sid = reference.sample_id
    if prediction is None:
        return None, (), "missing"
    per_target = prediction.target_masks()
    if per_target or prediction.masks is not None:
        wanted = [reference.height, reference.width]
        for index, rle in enumerate([prediction.mask, *per_target]):
            if rle is not None and list(rle.size) != wanted:
                field_name = "mask" if index == 0 else f"masks[{index - 1}]"
                problems.add("wrong_size", f"{sid}: {field_name} {rle.size}, image {wanted}")
                return None, (), "wrong_size"
        union = prediction.mask
        if union is None and per_target:
            union = union_rle(per_target, reference.height, reference.width)
        return union, tuple(per_target), "mask"
    answer = prediction.responses[-1] if prediction.responses else ""
    parsed = parse_box(answer)
    if parsed.kind == "box":
        assert parsed.coords is not None
        box = box_mask(parsed.coords, convention, reference.height, reference.width)
        return box, (box,), "box"
    if parsed.kind == "no_detected":
        problems.add("no_detected", sid)
        return None, (), "no_detected"
    if "mask" in prediction.model_fields_set:
        return None, (), "mask"
    problems.add("unparsed_box", f"{sid}: {answer[:80]!r}")
    return None, (), "unparsed_box"


def match(
    references: list[Reference], predictions: dict[str, Prediction], convention: BoxConvention, problems: Problems
) -> list[Matched]:
    """One :class:`Matched` per reference, in reference order; counts problems (module doc)."""
    known = {r.sample_id for r in references}
    for sid in predictions:
        if sid not in known:
            problems.add("unknown_sample", sid)
    out = []
    for reference in references:
        prediction = predictions.get(reference.sample_id)
        wanted = len(reference.responses)
        if prediction is None:
            problems.add("missing", reference.sample_id)
            responses: tuple[str, ...] = ("",) * wanted
        else:
            got = list(prediction.responses)
            if len(got) < wanted:
                problems.add("short_responses", f"{reference.sample_id}: {len(got)} of {wanted}")
            elif len(got) > wanted:
                problems.add("extra_responses", f"{reference.sample_id}: {len(got)} for {wanted}")
            responses = tuple((got + [""] * wanted)[:wanted])
        if reference.mask is None:
            problems.add("reference_without_mask", reference.sample_id)
        mask, masks, source = resolve_masks(reference, prediction, convention, problems)
        out.append(Matched(reference, prediction, mask, source, responses, masks))
    return out
