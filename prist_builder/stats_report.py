"""Render the ``prist stats --reference`` comparison: rich table, Markdown, JSON and a PNG.

The figures come from :mod:`prist_builder.stats_reference`; this module only lays them out.
The PNG draws the turn and granularity histograms of both sides as grouped bars with
Pillow (no plotting library needed).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont
from rich.table import Table

from prist_builder.stats_reference import GRAINS, ReferenceStats

ROWS: tuple[tuple[str, Callable[[ReferenceStats], str]], ...] = (
    ("dialogues", lambda s: f"{s.dialogues:,}"),
    ("turns mean / min / max", lambda s: f"{s.turns_mean:.2f} / {s.turns_min} / {s.turns_max}"),
    ("share of dialogues at the modal turn count", lambda s: f"{s.mode_share:.0f}%"),
    ("turns histogram", lambda s: ", ".join(f"{k}: {v}" for k, v in s.turns_histogram.items())),
    ("distinct-1 / distinct-2 of assistant text", lambda s: f"{s.distinct_1:.2f} / {s.distinct_2:.2f}"),
    ("vocabulary of assistant text", lambda s: f"{s.vocabulary:.0f}"),
    ("turns that are a shared template", lambda s: f"{s.templated:.0f}%"),
    ("questions about function, purpose, use or context", lambda s: f"{s.function_questions:.0f}%"),
    ("selection questions (list / which of them)", lambda s: f"{s.selection_questions:.0f}%"),
    ("turns naming left/right/top/bottom/middle/corner", lambda s: f"{s.position_turns:.0f}%"),
    ("words per assistant reasoning answer", lambda s: f"{s.answer_words:.1f}"),
    ("dialogue length (characters)", lambda s: f"{s.dialogue_chars:.0f}"),
    ("assistant reasoning answers naming left/right/top/bottom/middle/corner", lambda s: f"{s.position_answers:.0f}%"),
    ("dialogues with such a position word", lambda s: f"{s.position_dialogues:.0f}%"),
    ("images whose dialogues open alike (same first question)", lambda s: f"{s.images_opening_alike} of {s.images}"),
    ("most common 4-word answer opening (share)", lambda s: f"{s.top_opening!r} ({s.top_opening_share:.0f}%)"),
    (
        "masks coarse : medium : fine",
        lambda s: (
            " : ".join(f"{s.granularity.get(g, 0):.0f}" for g in GRAINS)
            + ("" if s.granularity_source == "masks" else f" ({s.granularity_source})")
        ),
    ),
    ("targets outside the knowledge table", lambda s: f"{s.unknown_labels}" if s.unknown_labels >= 0 else "-"),
)
"""Row label and formatter of each line of the comparison."""

KIND_ROW: tuple[str, Callable[[ReferenceStats], str]] = (
    "samples single : multi : empty",
    lambda s: " : ".join(f"{s.kinds.get(k, 0):.0f}" for k in ("single", "multi", "empty")),
)
"""Shares of samples by target kind (issue 22), shown only when a side has multi or empty samples."""


def rows(run: ReferenceStats, reference: ReferenceStats) -> tuple[tuple[str, Callable[[ReferenceStats], str]], ...]:
    """:data:`ROWS`, and :data:`KIND_ROW` when either side has multi-target or empty-target samples."""
    mixed = any(side.kinds.get(k) for side in (run, reference) for k in ("multi", "empty"))
    return (*ROWS, KIND_ROW) if mixed else ROWS


BAR_COLOURS = ((66, 133, 244), (234, 140, 40))
"""Run, reference."""
PLOT_SIZE = (900, 360)
"""Width, height in pixels of the PNG."""
MARGIN = 40


def rich_table(run: ReferenceStats, reference: ReferenceStats, run_name: str, reference_name: str) -> Table:
    """The comparison as a rich table."""
    table = Table(title="Run against reference", title_justify="left")
    table.add_column("measure")
    table.add_column(reference_name, justify="right")
    table.add_column(run_name, justify="right")
    for label, cell in rows(run, reference):
        table.add_row(label, cell(reference), cell(run))
    return table


def markdown(run: ReferenceStats, reference: ReferenceStats, run_name: str, reference_name: str) -> str:
    """The comparison as a Markdown table (with the rules' reference line)."""
    lines = [f"| measure | {reference_name} | {run_name} |", "|---|---|---|"]
    lines += [f"| {label} | {cell(reference)} | {cell(run)} |" for label, cell in rows(run, reference)]
    lines += [
        "",
        "Rules: see the docstring of `prist_builder/stats_reference.py` (distinct-n on equal-size"
        " random samples, mean of several seeded draws).",
    ]
    return "\n".join(lines) + "\n"


def write_json(path: Path, run: ReferenceStats, reference: ReferenceStats, run_name: str, reference_name: str) -> None:
    """Both sides' figures as JSON: ``{"run": {...}, "reference": {...}, "names": {...}}``."""
    data = {
        "names": {"run": run_name, "reference": reference_name},
        "run": run.as_dict(),
        "reference": reference.as_dict(),
    }
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def _panel(
    draw: ImageDraw.ImageDraw,
    box: tuple[int, int, int, int],
    title: str,
    keys: list[str],
    series: list[list[float]],
    font: ImageFont.ImageFont,
) -> None:
    """Grouped bars of shares (percent) in ``box``: one group per key, one bar per series."""
    x0, y0, x1, y1 = box
    draw.text((x0, y0 - 18), title, fill="black", font=font)
    draw.line((x0, y1, x1, y1), fill="black")
    top = max([v for values in series for v in values] + [1.0])
    group = (x1 - x0) / max(1, len(keys))
    bar = group / (len(series) + 1)
    for k, key in enumerate(keys):
        for s, values in enumerate(series):
            height = (y1 - y0 - 10) * values[k] / top
            left = x0 + k * group + (s + 0.5) * bar
            draw.rectangle((left, y1 - height, left + bar - 2, y1), fill=BAR_COLOURS[s % len(BAR_COLOURS)])
        draw.text((x0 + k * group + group / 2 - 8, y1 + 4), key, fill="black", font=font)


def _shares(histogram: dict[str, float], keys: list[str]) -> list[float]:
    total = sum(histogram.values()) or 1
    return [100.0 * histogram.get(k, 0) / total for k in keys]


def write_plot(path: Path, run: ReferenceStats, reference: ReferenceStats, run_name: str, reference_name: str) -> None:
    """PNG with the turn histogram and the granularity split of both sides (shares in percent)."""
    image = Image.new("RGB", PLOT_SIZE, "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    width, height = PLOT_SIZE
    turns = sorted({*run.turns_histogram, *reference.turns_histogram}, key=int)
    half = width // 2
    _panel(
        draw,
        (MARGIN, MARGIN + 10, half - MARGIN, height - MARGIN - 20),
        "turns per dialogue (% of dialogues)",
        turns,
        [_shares(run.turns_histogram, turns), _shares(reference.turns_histogram, turns)],
        font,
    )
    _panel(
        draw,
        (half + MARGIN, MARGIN + 10, width - MARGIN, height - MARGIN - 20),
        "mask granularity (%)",
        list(GRAINS),
        [[run.granularity.get(g, 0.0) for g in GRAINS], [reference.granularity.get(g, 0.0) for g in GRAINS]],
        font,
    )
    for index, name in enumerate((run_name, reference_name)):
        x = MARGIN + index * half
        draw.rectangle((x, height - 18, x + 10, height - 8), fill=BAR_COLOURS[index])
        draw.text((x + 16, height - 20), name, fill="black", font=font)
    image.save(path)
