"""The text blocks that fill the prompt templates, built from records."""

from __future__ import annotations

from prist_builder.records import Element, ElementsRecord, SourceRegion, TreeRecord


def regions_block(regions: list[SourceRegion], scale: float = 1.0) -> str:
    """One line per usable source region: id, label, box and share of the image.

    Boxes are ``[x, y, width, height]`` in pixels of the image as sent (source boxes
    times ``scale``, see :class:`.images.PreparedImage`).
    """
    if not regions:
        return ""
    lines = ["Marked regions (id, label, box [x, y, width, height] in pixels of this image, share of the image):"]
    total = float(regions[0].mask.size[0] * regions[0].mask.size[1])
    for region in regions:
        box = [round(v * scale) for v in region.bbox]
        lines.append(f"- {region.region_id}: {region.label!r}, box {box}, {100 * region.area / total:.1f}%")
    return "\n".join(lines) + "\n"


def elements_block(record: ElementsRecord) -> str:
    """One line per element: id, name and description."""
    return "\n".join(f"- {e.element_id}: {e.name} — {e.description}" for e in record.elements)


def targets_line(targets: list[Element]) -> str:
    """``"e1 (red mug), e4 (price tag)"``."""
    return ", ".join(f"{t.element_id} ({t.name})" for t in targets)


def paths_block(tree: TreeRecord, record: ElementsRecord) -> str:
    """Each path with its target, reasoning question and node questions and answers."""
    blocks = []
    for path in tree.paths:
        target = record.element(path.target_element_id)
        lines = [f"Path to {target.element_id} ({target.name}); reasoning question: {path.reasoning_question}"]
        for depth, node_id in enumerate(path.node_ids):
            node = tree.node(node_id)
            lines.append(f"  {depth + 1}. Q: {node.question} A: {node.answer}")
        blocks.append("\n".join(lines))
    return "\n".join(blocks)
