"""Predictions matched to references, with every problem counted by kind.

Nothing is dropped silently. Each kind below is counted and listed (with examples) in the
results; the sample is still scored where that makes sense:

- ``bad_line``: a line that is not JSON or not a :class:`Prediction` (skipped; if that leaves
  a reference without prediction, it is also ``missing``).
- ``unknown_sample``: a prediction for a sample the reference split does not hold (not scored).
- ``duplicate``: a second prediction for a sample (the first one is scored).
- ``missing``: a reference without prediction: scored as an empty mask and empty responses.
- ``wrong_size``: a predicted mask whose size differs from the reference image: scored empty.
- ``unparsed_box``: no mask, and the last response holds neither a box nor ``no detected``:
  scored empty (general-MLLM answers, Appendix C.3).
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
        mask: the mask to score (``None``: empty), from the prediction's mask or its box.
        mask_source: ``mask``, ``box``, ``no_detected``, ``unparsed_box``, ``wrong_size`` or ``missing``.
        responses: generated messages aligned with the reference's assistant messages
            (missing ones are ``""``).
    """

    reference: Reference
    prediction: Prediction | None
    mask: RLE | None
    mask_source: str
    responses: tuple[str, ...]


def resolve_mask(
    reference: Reference, prediction: Prediction | None, convention: BoxConvention, problems: Problems
) -> tuple[RLE | None, str]:
    """The mask to score for ``reference`` and where it came from (see :class:`Matched`)."""
    sid = reference.sample_id
    if prediction is None:
        return None, "missing"
    if prediction.mask is not None:
        if list(prediction.mask.size) != [reference.height, reference.width]:
            problems.add(
                "wrong_size", f"{sid}: mask {prediction.mask.size}, image [{reference.height}, {reference.width}]"
            )
            return None, "wrong_size"
        return prediction.mask, "mask"
    answer = prediction.responses[-1] if prediction.responses else ""
    parsed = parse_box(answer)
    if parsed.kind == "box":
        assert parsed.coords is not None
        return box_mask(parsed.coords, convention, reference.height, reference.width), "box"
    if parsed.kind == "no_detected":
        problems.add("no_detected", sid)
        return None, "no_detected"
    problems.add("unparsed_box", f"{sid}: {answer[:80]!r}")
    return None, "unparsed_box"


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
        mask, source = resolve_mask(reference, prediction, convention, problems)
        out.append(Matched(reference, prediction, mask, source, responses))
    return out
