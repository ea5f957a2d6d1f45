"""Reviewer actions turned into :class:`~prist_builder.records.curation.ReviewDecision` records.

An edit is checked with the build's own rules before anything is written: the edited
dialogue must validate as a :class:`~prist_builder.records.DialogueRecord` under the run's
turn bounds (alternating roles, ``[OBJ]{focus}[SEG]`` exactly once and only in the final
answer, non-empty messages). A refused edit raises :class:`ActionRefused` with the rule.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from prist_builder.records import DialogueRecord
from prist_builder.records.curation import ReviewDecision
from prist_builder.samples import Sample

MAX_REASON_CHARS = 500
"""Longest reject reason accepted, in characters."""


class ActionRefused(ValueError):
    """A reviewer action breaks a rule; the message names it (shown on the page)."""


def now() -> str:
    """Current UTC time, ISO 8601."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ""
    for part in first.get("loc", ()):
        where += f"[{part}]" if isinstance(part, int) else (f".{part}" if where else str(part))
    message = str(first.get("msg", "invalid"))
    message = message.removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def normalise(text: str) -> str:
    """A message as a browser form sends it, with line endings made ``\\n`` and outer spaces removed."""
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


def check_edit(sample: Sample, turn_index: int, text: str, bounds: dict[str, Any]) -> str:
    """Validate replacing message ``turn_index`` of ``sample``'s current dialogue with ``text``.

    Args:
        sample: the sample as it stands (earlier edits applied).
        turn_index: index into ``DialogueRecord.turns``.
        text: the new message text (normalised with :func:`normalise`).
        bounds: the run's validation context (:func:`prist_builder.pipeline.store.run_bounds`).

    Returns:
        The normalised text.

    Raises:
        ActionRefused: the index is out of range, the text is unchanged, or the edited
            dialogue breaks a build rule (the message names the rule).
    """
    turns = sample.dialogue.turns
    if not 0 <= turn_index < len(turns):
        raise ActionRefused(f"turn {turn_index} does not exist; the dialogue has {len(turns)} messages")
    text = normalise(text)
    if text == turns[turn_index].content:
        raise ActionRefused("the text is unchanged")
    data = sample.dialogue.model_dump()
    data["turns"][turn_index]["content"] = text
    try:
        DialogueRecord.model_validate(data, context=bounds)
    except ValidationError as exc:
        raise ActionRefused(_first_error(exc)) from None
    return text


def edit_decision(sample: Sample, reviewer: str, turn_index: int, text: str, bounds: dict[str, Any]) -> ReviewDecision:
    """The ``edit`` decision for a checked edit (see :func:`check_edit`, whose errors it raises)."""
    after = check_edit(sample, turn_index, text, bounds)
    return ReviewDecision(
        sample_id=sample.sample_id,
        reviewer=reviewer,
        time=now(),
        action="edit",
        turn_index=turn_index,
        before=sample.dialogue.turns[turn_index].content,
        after=after,
    )


def accept_decision(sample: Sample, reviewer: str) -> ReviewDecision:
    """The ``accept`` decision."""
    return ReviewDecision(sample_id=sample.sample_id, reviewer=reviewer, time=now(), action="accept")


def reject_decision(sample: Sample, reviewer: str, reason: str) -> ReviewDecision:
    """The ``reject`` decision.

    Raises:
        ActionRefused: the reason is empty or longer than :data:`MAX_REASON_CHARS`.
    """
    reason = " ".join(reason.split())
    if not reason:
        raise ActionRefused("a reject needs a reason")
    if len(reason) > MAX_REASON_CHARS:
        raise ActionRefused(f"the reason has {len(reason)} characters; at most {MAX_REASON_CHARS}")
    return ReviewDecision(sample_id=sample.sample_id, reviewer=reviewer, time=now(), action="reject", reason=reason)


def reset_decision(sample: Sample, reviewer: str) -> ReviewDecision:
    """The ``reset`` decision (drops the sample's earlier decisions: status back to unreviewed)."""
    return ReviewDecision(sample_id=sample.sample_id, reviewer=reviewer, time=now(), action="reset")
