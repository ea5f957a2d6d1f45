"""PNG previews of a run: a target mask over its image beside the dialogue, and a tree drawing."""

from __future__ import annotations

import textwrap
from pathlib import Path

import networkx as nx
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from prist_builder.annotation.masks import decode
from prist_builder.pipeline.store import read_records, run_bounds
from prist_builder.records import DialogueRecord, ElementsRecord, TreeRecord
from prist_builder.sources import read_image

MASK_RGB = (255, 40, 40)
MASK_ALPHA = 0.45
"""Opacity of the mask colour over the photo."""
PANEL_WIDTH = 560
"""Width in pixels of the dialogue text panel."""
FONT_SIZE = 14
LINE_HEIGHT = 18
WRAP_CHARS = 72
"""Characters per line in the dialogue panel."""
NODE_WIDTH, NODE_HEIGHT, GAP_X, GAP_Y = 230, 92, 24, 48
"""Tree drawing geometry in pixels."""


def _font() -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=FONT_SIZE)
    except (TypeError, OSError):  # Pillow without FreeType
        return ImageFont.load_default()


def overlay_mask(pixels: Image.Image, mask: np.ndarray) -> Image.Image:
    """The photo with ``mask`` (``(H, W) bool``) tinted and outlined in red."""
    base = np.asarray(pixels.convert("RGB"), dtype=np.float32)
    tint = np.array(MASK_RGB, dtype=np.float32)
    base[mask] = (1 - MASK_ALPHA) * base[mask] + MASK_ALPHA * tint
    edge = mask & ~(np.roll(mask, 1, 0) & np.roll(mask, -1, 0) & np.roll(mask, 1, 1) & np.roll(mask, -1, 1))
    base[edge] = tint
    return Image.fromarray(base.astype(np.uint8))


def dialogue_preview(dialogue: DialogueRecord, elements: ElementsRecord) -> Image.Image:
    """Side-by-side image: masked photo (left) and the dialogue text (right)."""
    _, pixels = read_image(elements.image)
    photo = overlay_mask(pixels, decode(dialogue.mask)) if dialogue.mask else pixels
    font = _font()
    lines = [f"{dialogue.sample_id}   focus: {dialogue.focus}", ""]
    for turn in dialogue.turns:
        who = "USER" if turn.role == "user" else "ASSISTANT"
        lines += textwrap.wrap(f"{who}: {turn.content}", WRAP_CHARS) + [""]
    height = max(photo.height, LINE_HEIGHT * (len(lines) + 1))
    canvas = Image.new("RGB", (photo.width + PANEL_WIDTH, height), "white")
    canvas.paste(photo, (0, 0))
    draw = ImageDraw.Draw(canvas)
    for index, line in enumerate(lines):
        colour = (20, 60, 160) if line.startswith("USER") else (20, 20, 20)
        draw.text((photo.width + 12, 8 + index * LINE_HEIGHT), line, fill=colour, font=font)
    return canvas


def _layout(tree: TreeRecord) -> dict[str, tuple[int, int]]:
    """Grid position ``(column, depth)`` of each node: leaves left to right, parents centred."""
    graph = tree.to_networkx()
    depth = nx.shortest_path_length(graph, tree.root)
    column: dict[str, float] = {}
    next_leaf = 0

    def place(node: str) -> float:
        nonlocal next_leaf
        children = list(graph.successors(node))
        if not children:
            column[node] = next_leaf
            next_leaf += 1
        else:
            column[node] = sum(place(c) for c in children) / len(children)
        return column[node]

    place(tree.root)
    return {n: (column[n], depth[n]) for n in graph.nodes}


def tree_preview(tree: TreeRecord) -> Image.Image:
    """The reasoning tree drawn top-down; target leaves in green, each node's question inside."""
    grid = _layout(tree)
    columns = max(c for c, _ in grid.values()) + 1
    rows = max(d for _, d in grid.values()) + 1
    width = int(columns * (NODE_WIDTH + GAP_X) + GAP_X)
    height = int(rows * (NODE_HEIGHT + GAP_Y) + GAP_Y)
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    font = _font()

    def box(node_id: str) -> tuple[float, float, float, float]:
        col, row = grid[node_id]
        x0 = GAP_X + col * (NODE_WIDTH + GAP_X)
        y0 = GAP_Y / 2 + row * (NODE_HEIGHT + GAP_Y)
        return x0, y0, x0 + NODE_WIDTH, y0 + NODE_HEIGHT

    for parent, child in tree.edges:
        p, c = box(parent), box(child)
        draw.line([((p[0] + p[2]) / 2, p[3]), ((c[0] + c[2]) / 2, c[1])], fill=(120, 120, 120), width=2)
    for node in tree.nodes:
        x0, y0, x1, y1 = box(node.id)
        fill = (214, 245, 214) if node.element_id else (232, 238, 250)
        draw.rectangle([x0, y0, x1, y1], fill=fill, outline=(60, 60, 60))
        label = f"{node.id}{' -> ' + node.element_id if node.element_id else ''}: {node.question}"
        for index, line in enumerate(textwrap.wrap(label, 32)[:4]):
            draw.text((x0 + 6, y0 + 4 + index * LINE_HEIGHT), line, fill=(10, 10, 10), font=font)
    return canvas


def write_previews(run: Path, out: Path, count: int = 3) -> list[Path]:
    """Write ``count`` dialogue previews and the trees of their images as PNG files.

    Returns:
        Paths written, dialogue previews first.
    """
    out.mkdir(parents=True, exist_ok=True)
    elements = {r.image_id: r for r in read_records(run / "elements.jsonl", ElementsRecord)}
    bounds = run_bounds(run)
    trees = {r.image_id: r for r in read_records(run / "trees.jsonl", TreeRecord, bounds)}
    dialogues = read_records(run / "dialogues.jsonl", DialogueRecord, bounds)
    chosen: list[DialogueRecord] = []
    for dialogue in dialogues:  # one per image first, for variety
        if dialogue.image_id not in {d.image_id for d in chosen}:
            chosen.append(dialogue)
    written = []
    for dialogue in chosen[:count]:
        path = out / f"{dialogue.sample_id}.png"
        dialogue_preview(dialogue, elements[dialogue.image_id]).save(path)
        written.append(path)
    for dialogue in chosen[:count]:
        path = out / f"{dialogue.image_id}-tree.png"
        tree_preview(trees[dialogue.image_id]).save(path)
        written.append(path)
    return written
