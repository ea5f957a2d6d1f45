"""The columns of the export dataset contract (README "The export dataset contract").

One row per sample (or, with ``--rows image``, one row per image: :data:`IMAGE_FEATURES`,
built by :func:`image_row`). :data:`FEATURES` declares every column explicitly, so that an empty
split, a run without trees, or a sample without a mask all keep the same schema.
:func:`sample_row` turns a :class:`~prist_builder.samples.Sample` and its image bytes into
one row of plain Python values.
"""

from __future__ import annotations

from typing import Any

from datasets import Features, Image, List, Value

from prist_builder.annotation.masks import area, rle_bbox
from prist_builder.exported import IMAGE_COLUMNS, NESTED_FIELDS, SAMPLE_COLUMNS
from prist_builder.records.rle import RLE
from prist_builder.samples import Sample
from prist_builder.stats import granularity

IMAGE_TOKEN = "<image>"
"""The placeholder LLaVA puts in the first human message where the image goes."""

ROLE_TO_LLAVA = {"user": "human", "assistant": "gpt"}
"""Our turn roles and their names in the LLaVA convention."""

_STR = Value("string")

RLE_FEATURE = {"size": List(Value("int32")), "counts": _STR}
"""COCO compressed RLE: ``size`` ``[h, w]`` in pixels, ``counts`` ASCII."""

TARGET_FEATURE = {
    "focus": _STR,
    "mask": RLE_FEATURE,
    "box": List(Value("float32")),
    "area": Value("int64"),
    "granularity": _STR,
    "element_id": _STR,
}
"""One segmentation target: its mask, ``[x, y, w, h]`` box and area in pixels, granularity."""

FEATURES = Features(
    {
        "sample_id": _STR,
        "image_id": _STR,
        "image": Image(),
        "width": Value("int32"),
        "height": Value("int32"),
        "turns": List({"role": _STR, "content": _STR}),
        "conversations": List({"from": _STR, "value": _STR}),
        "focus": _STR,
        "targets": List(TARGET_FEATURE),
        "target_kind": _STR,
        "elements": List({"element_id": _STR, "name": _STR, "description": _STR, "region_id": _STR}),
        "tree": {
            "root": _STR,
            "nodes": List({"id": _STR, "question": _STR, "answer": _STR, "element_id": _STR}),
            "edges": List(List(_STR)),
            "path": List(_STR),
            "reasoning_question": _STR,
        },
        "source": _STR,
        "provenance": {
            "provider": _STR,
            "model": _STR,
            "prompt_version": _STR,
            "mask_rule": _STR,
            "annotators": List(_STR),
            "agreement_iou": Value("float64"),
            "agreement_kappa": Value("float64"),
            "review_status": _STR,
            "reviewer": _STR,
        },
    }
)
"""The declared columns of every split (see the module docstring)."""
assert tuple(FEATURES) == SAMPLE_COLUMNS, "prist_builder.exported.SAMPLE_COLUMNS must list FEATURES in order"

IMAGE_FEATURES = Features(
    {
        **{name: FEATURES[name] for name in IMAGE_COLUMNS if name != "samples"},
        "samples": List({name: FEATURES[name] for name in NESTED_FIELDS}),
    }
)
"""The columns of ``prist export --rows image``: one row per image, its samples nested under
``samples`` (each with the per-sample fields of :data:`FEATURES`); the image is stored once."""


def llava_conversations(sample: Sample) -> list[dict[str, str]]:
    """The sample's turns as LLaVA ``{from, value}`` messages, ``<image>\\n`` opening the first human one."""
    out = []
    for index, turn in enumerate(sample.dialogue.turns):
        value = f"{IMAGE_TOKEN}\n{turn.content}" if index == 0 else turn.content
        out.append({"from": ROLE_TO_LLAVA[turn.role], "value": value})
    return out


def target_entry(mask: RLE, focus: str, element_id: str, height: int, width: int) -> dict[str, Any]:
    """One entry of ``targets``: ``mask`` (COCO RLE), ``box`` ``[x, y, w, h]`` and ``area`` in
    pixels, ``granularity`` (:func:`prist_builder.stats.granularity` of the area in the image's
    ``height`` x ``width`` pixels), ``focus`` and ``element_id``."""
    pixels = area(mask)
    return {
        "focus": focus,
        "mask": {"size": list(mask.size), "counts": mask.counts},
        "box": [float(v) for v in rle_bbox(mask)],
        "area": pixels,
        "granularity": granularity(pixels, height, width),
        "element_id": element_id,
    }


def targets(sample: Sample) -> list[dict[str, Any]]:
    """The sample's targets in answer order (:meth:`DialogueRecord.target_list`), one entry each
    (:func:`target_entry`) with its final mask (``Sample.masks``): one for a single-target sample,
    two or more for a multi-target one, none for an empty-target one or a sample without a mask.

    Raises:
        ValueError: the sample has masks but not one per target (names the sample).
    """
    if sample.mask is None or sample.kind == "empty":
        return []
    wanted = sample.dialogue.target_list()
    masks = sample.masks or ([sample.mask] if sample.kind == "single" else [])
    if len(masks) != len(wanted):
        raise ValueError(f"{sample.sample_id}: {len(masks)} final masks for {len(wanted)} targets")
    height, width = (sample.image.height, sample.image.width) if sample.image.width else tuple(masks[0].size)
    return [
        target_entry(mask, target.focus, target.element_id, height, width)
        for target, mask in zip(wanted, masks, strict=True)
    ]


def _tree(sample: Sample) -> dict[str, Any] | None:
    tree = sample.tree
    if tree is None:
        return None
    return {
        "root": tree.root,
        "nodes": [node.model_dump() for node in tree.nodes],
        "edges": [list(edge) for edge in tree.edges],
        "path": list(sample.dialogue.path_node_ids),
        "reasoning_question": sample.dialogue.reasoning_question,
    }


def prompt_versions(manifest: dict[str, Any]) -> str | None:
    """The prompt version(s) a run manifest records (``provider.prompt_version`` or
    ``provider.prompt_versions`` ``{template: version}``), as one string; ``None`` if it records none."""
    provider_info = manifest.get("provider", {}) if isinstance(manifest.get("provider"), dict) else {}
    value = provider_info.get("prompt_version") or provider_info.get("prompt_versions")
    if isinstance(value, dict):
        return ", ".join(f"{name}:{version}" for name, version in sorted(value.items())) or None
    return None if value is None else str(value)


def provenance(sample: Sample) -> dict[str, Any]:
    """Who made the sample: provider, model, prompt version, mask rule, annotators, agreement, review.

    ``model`` and ``prompt_version`` come from the run manifest when it records them
    (``config.provider_options.model``, ``provider.model``, :func:`prompt_versions`).
    """
    manifest = sample.manifest
    config = manifest.get("config", {}) if isinstance(manifest.get("config"), dict) else {}
    options = config.get("provider_options") or {}
    provider_info = manifest.get("provider", {}) if isinstance(manifest.get("provider"), dict) else {}
    final = sample.mask_provenance
    prompt_version = prompt_versions(manifest)
    return {
        "provider": sample.dialogue.provider,
        "model": options.get("model") or provider_info.get("model"),
        "prompt_version": prompt_version,
        "mask_rule": sample.mask_rule,
        "annotators": list(final.annotators) if final is not None else [],
        "agreement_iou": final.iou if final is not None else None,
        "agreement_kappa": final.kappa if final is not None else None,
        "review_status": sample.review.status,
        "reviewer": sample.review.reviewer,
    }


def sample_row(sample: Sample, image: dict[str, Any] | None) -> dict[str, Any]:
    """One row of :data:`FEATURES`.

    Args:
        sample: the joined sample (review edits already applied to its turns).
        image: ``{"bytes": encoded image, "path": file name}`` or ``None`` when the image is absent.
    """
    record = sample.image
    return {
        "sample_id": sample.sample_id,
        "image_id": sample.dialogue.image_id,
        "image": image,
        "width": record.width,
        "height": record.height,
        "turns": [{"role": t.role, "content": t.content} for t in sample.dialogue.turns],
        "conversations": llava_conversations(sample),
        "focus": sample.dialogue.focus,
        "targets": targets(sample),
        "target_kind": sample.kind,
        "elements": [
            {"element_id": e.element_id, "name": e.name, "description": e.description, "region_id": e.region_id}
            for e in sample.elements.elements
        ],
        "tree": _tree(sample),
        "source": record.source,
        "provenance": provenance(sample),
    }


def image_row(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One row of :data:`IMAGE_FEATURES` from the :func:`sample_row` rows of one image's samples.

    Raises:
        ValueError: ``rows`` is empty or holds samples of more than one image.
    """
    if not rows or len({row["image_id"] for row in rows}) != 1:
        raise ValueError("image_row needs the rows of exactly one image")
    first = rows[0]
    out = {name: first[name] for name in IMAGE_COLUMNS if name != "samples"}
    out["samples"] = [{name: row[name] for name in NESTED_FIELDS} for row in rows]
    return out
