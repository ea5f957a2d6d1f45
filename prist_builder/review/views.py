"""What the templates get: plain dicts built from the index, shared by the app and the report.

Templates are Jinja2 with autoescape on for every template, so each string from a run
(dialogue text, focus, names, reasons) is escaped where it is rendered. Only the tree SVG
arrives as markup, built with escaped text by :func:`prist_builder.review.render.tree_svg`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from jinja2 import Environment, PackageLoader

from prist_builder.records.limits import TARGET_KINDS
from prist_builder.review.index import GRANULARITIES, STATUSES, Filters, RunIndex
from prist_builder.review.render import provenance, target_class, tree_svg
from prist_builder.samples import Sample

SHORTCUTS: tuple[tuple[str, str], ...] = (
    ("a", "accept"),
    ("r", "reject (type a reason, Enter)"),
    ("e", "edit the final answer"),
    ("n", "next sample"),
    ("p", "previous sample"),
    ("m", "mask on/off"),
    ("1-9", "one target's mask on/off (multi-target)"),
    ("l", "back to the list"),
)
"""Keyboard shortcuts of the sample page (key, what it does); ``static/review.js`` binds them."""


def environment() -> Environment:
    """The Jinja2 environment of the review templates (package data), autoescape always on."""
    env = Environment(
        loader=PackageLoader("prist_builder.review", "templates"), autoescape=True, trim_blocks=True, lstrip_blocks=True
    )
    env.filters["u"] = lambda value: quote(str(value), safe="")
    env.filters["qs"] = lambda params: ("?" + urlencode(params)) if params else ""
    env.globals.update(STATUSES=STATUSES, GRANULARITIES=GRANULARITIES, SHORTCUTS=SHORTCUTS, KINDS=TARGET_KINDS)
    return env


def list_view(index: RunIndex, filters: Filters) -> dict[str, Any]:
    """Context of the sample list: one page of rows matching ``filters``, counts, paging."""
    selected = index.select(filters)
    pages = max(1, -(-len(selected) // filters.size))
    page = min(filters.page, pages)
    start = (page - 1) * filters.size
    rows = []
    for position in selected[start : start + filters.size]:
        row, review = index.rows[position], index.review(position)
        rows.append({"row": row, "status": review.status, "reviewer": review.reviewer, "reason": review.reason})
    return {
        "filters": filters,
        "query": filters.query(),
        "rows": rows,
        "matched": len(selected),
        "total": len(index.rows),
        "images": len(index.images),
        "build_rejects": index.reject_count,
        "status_counts": index.status_counts(),
        "kind_counts": index.kind_counts(),
        "providers": index.providers(),
        "page": page,
        "pages": pages,
        "first": start + 1 if rows else 0,
        "last": start + len(rows),
        "prev_page": filters.query(page - 1) if page > 1 else None,
        "next_page": filters.query(page + 1) if page < pages else None,
    }


def sample_view(index: RunIndex, sample: Sample, photo: dict[str, Any], layers: list[str]) -> dict[str, Any]:
    """Context of one sample: dialogue with edits marked, tree, elements, provenance, picture.

    Args:
        index: the run's index.
        sample: the sample shown.
        photo: ``{"src", "width", "height"}`` of the photo (a URL in the app, a data URI or a CSS
            class in the report).
        layers: where each mask layer PNG of :func:`prist_builder.review.render.overlays` is,
            in that order (``[]``: no mask, or an empty target).
    """
    dialogue = sample.dialogue
    targets = dialogue.target_list()
    per_target = sample.kind == "multi" and len(layers) == len(targets)
    legend = [
        {
            "number": i + 1,
            "focus": t.focus,
            "element_id": t.element_id,
            "cls": target_class(i) if per_target else "",
            "toggle": f"k{i}" if per_target else "",
        }
        for i, t in enumerate(targets)
    ]
    masks = [
        {
            "src": src,
            "cls": f"{legend[i]['cls']} {legend[i]['toggle']}" if per_target else "",
            "alt": f"mask of target {i + 1}" if per_target else "target mask",
        }
        for i, src in enumerate(layers)
    ]
    target_of = {t.element_id: item for t, item in zip(targets, legend, strict=True)}
    turns = []
    last = len(dialogue.turns) - 1
    for i, turn in enumerate(dialogue.turns):
        original = sample.original_turns[i].content
        turns.append(
            {
                "index": i,
                "role": turn.role,
                "content": turn.content,
                "final": i == last,
                "original": original if original != turn.content else None,
                "number": i // 2 + 1,
            }
        )
    elements = [
        {"element": e, "target": e.element_id in target_of, "legend": target_of.get(e.element_id)}
        for e in sample.elements.elements
    ]
    tree = sample.tree
    path_nodes = []
    if tree is not None:
        known = {n.id: n for n in tree.nodes}
        path_nodes = [known[i] for i in dialogue.path_node_ids if i in known]
    return {
        "sample": sample,
        "sample_id": sample.sample_id,
        "row": index.rows[index.by_id[sample.sample_id]],
        "dialogue": dialogue,
        "turns": turns,
        "elements": elements,
        "tree_svg": None if tree is None else tree_svg(tree, dialogue.path_node_ids, dialogue.target_element_id),
        "path_nodes": path_nodes,
        "provenance": provenance(sample),
        "review": sample.review,
        "photo": photo,
        "masks": masks,
        "kind": sample.kind,
        "legend": legend if sample.kind == "multi" else [],
        "per_target": per_target,
    }


def neighbour_ids(index: RunIndex, filters: Filters, sample: Sample) -> tuple[str | None, str | None]:
    """Ids of the previous and next sample in the list order under ``filters``."""
    previous, following = index.neighbours(index.select(filters), index.by_id[sample.sample_id])

    def name(position: int | None) -> str | None:
        return None if position is None else index.rows[position].sample_id

    return name(previous), name(following)
