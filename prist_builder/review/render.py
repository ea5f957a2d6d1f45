"""Pictures and facts of a sample for the review pages: the mask layer, the tree SVG, provenance.

All text that reaches SVG or HTML here is escaped with :func:`markupsafe.escape`.
"""

from __future__ import annotations

import base64
import io
import itertools
import textwrap
from typing import TYPE_CHECKING, Any

from markupsafe import Markup, escape

if TYPE_CHECKING:
    from prist_builder.records import ImageRecord, TreeRecord
    from prist_builder.records.rle import RLE
    from prist_builder.samples import Sample

# numpy, Pillow, pycocotools and networkx (through prist_builder.preview) load inside the
# function that draws with them, not when the app starts (start-up is timed in make bench)

OPAQUE = 255
"""Alpha of the mask outline."""
PNG_COMPRESS_LEVEL = 1
"""zlib level of generated PNGs: the layer is mostly transparent, fast beats small here."""
NODE_W, NODE_H, GAP_X, GAP_Y = 210, 66, 18, 40
"""Tree drawing geometry in SVG user units (pixels at 100 % zoom)."""
WRAP_CHARS = 30
"""Characters per line of a node's question."""
NODE_LINES = 3
"""Lines of question text drawn in a node (the full text is in its tooltip)."""
LINE_STEP = 15
"""Distance between text lines in a node, pixels."""
TARGET_PALETTE: tuple[str, ...] = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442")
"""Colours of a multi-target sample's targets in answer order (cycled past seven): the
Okabe-Ito palette without black, told apart with the common colour-vision deficiencies.
``static/style.css`` gives the same colours to the classes ``t0`` .. ``t6``."""


def target_colour(index: int) -> str:
    """``#RRGGBB`` of the target at ``index`` (0-based, answer order) in :data:`TARGET_PALETTE`."""
    return TARGET_PALETTE[index % len(TARGET_PALETTE)]


def target_class(index: int) -> str:
    """CSS class carrying :func:`target_colour` (``t0`` .. ``t6``)."""
    return f"t{index % len(TARGET_PALETTE)}"


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def mask_layer_png(mask: RLE, rgb: tuple[int, int, int] | None = None) -> bytes:
    """A transparent RGBA PNG, the image's size, with the ``(H, W) bool`` mask tinted and outlined.

    Laid over the photo in the browser, so the overlay can be toggled without a second photo.

    Args:
        mask: COCO RLE of the mask.
        rgb: tint, 0..255 per channel; default :data:`prist_builder.preview.MASK_RGB` (the
            one-target colour of every preview).
    """
    import numpy as np
    from PIL import Image

    from prist_builder.annotation.masks import decode
    from prist_builder.preview import MASK_ALPHA, MASK_RGB

    tint = MASK_RGB if rgb is None else rgb
    pixels = decode(mask).astype(bool)
    rgba = np.zeros((*pixels.shape, 4), dtype=np.uint8)
    rgba[pixels, :3] = tint
    rgba[pixels, 3] = int(MASK_ALPHA * OPAQUE)
    inner = np.roll(pixels, 1, 0) & np.roll(pixels, -1, 0) & np.roll(pixels, 1, 1) & np.roll(pixels, -1, 1)
    edge = pixels & ~inner
    rgba[edge, :3] = tint
    rgba[edge, 3] = OPAQUE
    out = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(out, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return out.getvalue()


def overlays(sample: Sample) -> list[int | None]:
    """The mask layers a sample's page lays over its photo, bottom to top.

    ``[]`` for an empty-target sample or one without a mask; ``[0, 1, ...]`` (one layer per
    target, in answer order, coloured by :func:`target_colour`) for a multi-target sample whose
    per-target masks are known; else ``[None]``: one layer of ``sample.mask`` (the one target,
    or the union of a multi-target sample's targets) in the one-target colour.
    """
    if sample.kind == "empty" or sample.mask is None:
        return []
    if sample.kind == "multi" and sample.masks and len(sample.masks) == len(sample.dialogue.targets):
        return list(range(len(sample.masks)))
    return [None]


def has_layer(sample: Sample, target: int | None) -> bool:
    """Whether :func:`sample_layer_png` can draw ``target`` for ``sample``: one of its
    :func:`overlays`, or ``None`` (the whole mask) whenever it has any."""
    layers = overlays(sample)
    return target in layers or (target is None and bool(layers))


def sample_layer_png(sample: Sample, target: int | None) -> bytes:
    """The PNG of one of :func:`overlays`: target ``target``'s mask in its colour, or with
    ``None`` the whole mask (a multi-target sample's union) in the one-target colour.

    Raises:
        KeyError: the sample has no such layer (:func:`has_layer`).
    """
    if not has_layer(sample, target):
        raise KeyError(f"sample {sample.sample_id!r} has no mask layer {target!r}")
    if target is None:
        assert sample.mask is not None  # overlays() gave a layer
        return mask_layer_png(sample.mask)
    return mask_layer_png(sample.masks[target], _rgb(target_colour(target)))


def image_bytes(record: ImageRecord) -> bytes:
    """The encoded bytes of an image of the run, checked against its sha256.

    Raises:
        prist_builder.sources.InputRejected: the file is gone or changed since the build.
    """
    from prist_builder.sources import read_image

    data, _ = read_image(record)
    return data


def data_uri(mime: str, data: bytes) -> str:
    """``data:`` URI of bytes (for the static report)."""
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def tree_svg(tree: TreeRecord, path_node_ids: list[str], target_element_id: str) -> Markup:
    """The reasoning tree as inline SVG, top-down, with the sample's path highlighted.

    Nodes on ``path_node_ids`` and the edges between them get the classes ``on-path`` /
    ``path-edge``; the leaf resolving to ``target_element_id`` gets ``target``; other target
    leaves get ``leaf``. Each node shows its id and question; its tooltip holds the question
    and the answer (paper Eq. 3: a path of (sub-question, answer) pairs).
    """
    from prist_builder.preview import _layout as tree_layout

    grid = tree_layout(tree)
    columns = max(c for c, _ in grid.values()) + 1
    rows = max(d for _, d in grid.values()) + 1
    width = int(columns * (NODE_W + GAP_X) + GAP_X)
    height = int(rows * (NODE_H + GAP_Y) + GAP_Y / 2)
    on_path = set(path_node_ids)
    path_edges = set(itertools.pairwise(path_node_ids))

    def corner(node_id: str) -> tuple[float, float]:
        col, row = grid[node_id]
        return GAP_X + col * (NODE_W + GAP_X), GAP_Y / 2 + row * (NODE_H + GAP_Y)

    opening = (
        f'<svg class="tree" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="reasoning tree">'
    )
    parts = [opening]
    for parent, child in tree.edges:
        (px, py), (cx, cy) = corner(parent), corner(child)
        kind = "path-edge" if (parent, child) in path_edges else "edge"
        parts.append(
            f'<line class="{kind}" x1="{px + NODE_W / 2:.1f}" y1="{py + NODE_H:.1f}" '
            f'x2="{cx + NODE_W / 2:.1f}" y2="{cy:.1f}"/>'
        )
    for node in tree.nodes:
        x, y = corner(node.id)
        classes = ["node"]
        if node.id in on_path:
            classes.append("on-path")
        if node.element_id is not None:
            classes.append("target" if node.element_id == target_element_id else "leaf")
        head = node.id + (f" \u2192 {node.element_id}" if node.element_id else "")
        lines = textwrap.wrap(node.question, WRAP_CHARS)
        if len(lines) > NODE_LINES:
            lines = lines[:NODE_LINES]
            lines[-1] = lines[-1][: WRAP_CHARS - 1] + "\u2026"
        tip = f"{node.id}: {node.question}\nanswer: {node.answer}"
        parts.append(
            f'<g class="{" ".join(classes)}" data-node="{escape(node.id)}"><title>{escape(tip)}</title>'
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{NODE_W}" height="{NODE_H}" rx="6"/>'
            f'<text x="{x + 8:.1f}" y="{y + 15:.1f}"><tspan class="head">{escape(head)}</tspan>'
        )
        for index, line in enumerate(lines, start=1):
            parts.append(f'<tspan x="{x + 8:.1f}" y="{y + 15 + index * LINE_STEP:.1f}">{escape(line)}</tspan>')
        parts.append("</text></g>")
    parts.append("</svg>")
    return Markup("".join(parts))


def _manifest_value(manifest: dict[str, Any], *keys: str) -> Any:
    """The first of ``keys`` found in the manifest's provider settings, provider block or top level."""
    config = manifest.get("config", {}) or {}
    places = (config.get("provider_options", {}) or {}, manifest.get("provider", {}) or {}, config, manifest)
    for key in keys:
        for place in places:
            if isinstance(place, dict) and place.get(key) not in (None, "", {}):
                return place[key]
    return None


def provenance(sample: Sample) -> dict[str, Any]:
    """Where a sample comes from and who checked it, as label -> value (``None`` when unknown).

    Covers the export contract's ``provenance`` fields: provider, model, prompt version,
    mask rule, annotators, agreement (IoU, Cohen's kappa), review status and reviewer.
    """
    final = sample.mask_provenance
    return {
        "provider": sample.dialogue.provider,
        "model": _manifest_value(sample.manifest, "model"),
        "prompt version": _manifest_value(sample.manifest, "prompt_version", "prompt_versions", "prompts"),
        "source": sample.image.source,
        "mask rule": sample.mask_rule,
        "annotators": ", ".join(final.annotators) if final and final.annotators else None,
        "agreement IoU": None if final is None or final.iou is None else f"{final.iou:.3f}",
        "agreement kappa": None if final is None or final.kappa is None else f"{final.kappa:.3f}",
        "review status": sample.review.status,
        "reviewer": sample.review.reviewer,
        "reject reason": sample.review.reason or None,
        "reviewed at": sample.review.time,
    }
