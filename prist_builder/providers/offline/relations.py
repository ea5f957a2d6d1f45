"""The spatial relation graph between the grounded elements of an image (offline step 2).

Predicates: ``left of``, ``above``, ``inside``, ``next to``, ``larger than``. Each element
is related to its nearest neighbours only, so that the graph stays small and every
relation is one a person would mention.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import networkx as nx
import numpy as np
from pycocotools import mask as coco_mask

from prist_builder.providers.offline.geometry import Geometry, element_geometry
from prist_builder.records import ElementsRecord, Relation

NEIGHBOURS = 3
"""Each element is related to this many nearest other elements."""

INSIDE_SHARE = 0.9
"""``a inside b`` when at least this share of a's pixels lies in b."""

NEXT_TO_GAP = 0.03
"""``a next to b`` when their boxes are closer than this share of the image diagonal."""

LARGER_RATIO = 2.0
"""``a larger than b`` when a's area is at least this many times b's."""


@dataclass(frozen=True)
class Placed:
    """Geometry of one grounded element.

    Attributes:
        element_id: the element.
        name: its name.
        geometry: its mask's facts (:func:`.geometry.mask_geometry`).
    """

    element_id: str
    name: str
    geometry: Geometry

    @property
    def box(self) -> tuple[int, int, int, int]:
        """``(x0, y0, x1, y1)`` in pixels."""
        return self.geometry.box

    @property
    def area(self) -> int:
        """Mask area in pixels."""
        return self.geometry.area

    @property
    def centre(self) -> tuple[float, float]:
        """``(x, y)`` mask centroid in pixels: the same point the element's position names."""
        return self.geometry.x, self.geometry.y


def placed_elements(record: ElementsRecord, geometry: dict[str, Geometry] | None = None) -> list[Placed]:
    """Geometry of every element grounded in a non-ignored region, in element order."""
    geometry = element_geometry(record) if geometry is None else geometry
    return [Placed(e.element_id, e.name, geometry[e.element_id]) for e in record.elements if e.element_id in geometry]


def gaps(placed: list[Placed]) -> np.ndarray:
    """``(N, N) float`` distances in pixels between the elements' boxes (0 where they overlap)."""
    boxes = np.asarray([p.box for p in placed], dtype=np.float64).reshape(-1, 4)
    low, high = boxes[:, :2], boxes[:, 2:]
    apart = np.maximum(low[:, None, :], low[None, :, :]) - np.minimum(high[:, None, :], high[None, :, :])
    dx, dy = np.maximum(0.0, apart[..., 0]), np.maximum(0.0, apart[..., 1])
    return np.hypot(dx, dy)


def containment(record: ElementsRecord, placed: list[Placed]) -> np.ndarray:
    """``(N, N) float`` matrix: share of element i's pixels that lie in element j."""
    rles = []
    for item in placed:
        region = record.image.region(record.element(item.element_id).region_id or "")
        rles.append({"size": region.mask.size, "counts": region.mask.counts.encode("ascii")})
    # With iscrowd set, pycocotools' iou is |dt & gt| / |dt|: exactly containment.
    return np.asarray(coco_mask.iou(rles, rles, [1] * len(rles)), dtype=np.float64).reshape(len(rles), len(rles))


def relation_graph(
    record: ElementsRecord, placed: list[Placed] | None = None, inside: np.ndarray | None = None
) -> nx.MultiDiGraph:
    """Build the relation graph: nodes are element ids, each edge has a ``predicate``.

    Directions (``left of``, ``above``) compare mask centroids along the axis where they
    differ most, so a relation never disagrees with the elements' grid positions.
    ``inside`` is :func:`containment` of ``placed`` when the caller has it already.
    """
    placed = placed_elements(record) if placed is None else placed
    graph = nx.MultiDiGraph()
    for item in placed:
        graph.add_node(item.element_id, name=item.name)
    if len(placed) < 2:
        return graph
    inside = containment(record, placed) if inside is None else inside
    diagonal = math.hypot(record.image.width, record.image.height)
    seen: set[tuple[str, str, str]] = set()

    def add(subject: Placed, predicate: str, obj: Placed) -> None:
        key = (subject.element_id, predicate, obj.element_id)
        if key not in seen:
            seen.add(key)
            graph.add_edge(subject.element_id, obj.element_id, predicate=predicate)

    gap = gaps(placed)
    index = np.arange(len(placed))
    for i, a in enumerate(placed):
        order = [int(j) for j in np.lexsort((index, gap[i])) if j != i]
        for j in order[:NEIGHBOURS]:
            b = placed[j]
            (ax, ay), (bx, by) = a.centre, b.centre
            if abs(bx - ax) >= abs(by - ay):
                add(a, "left of", b) if ax < bx else add(b, "left of", a)
            else:
                add(a, "above", b) if ay < by else add(b, "above", a)
            if inside[i, j] >= INSIDE_SHARE and a.area < b.area:
                add(a, "inside", b)
            elif gap[i, j] <= NEXT_TO_GAP * diagonal:
                first, second = (a, b) if a.element_id < b.element_id else (b, a)
                add(first, "next to", second)
            if a.area >= LARGER_RATIO * b.area:
                add(a, "larger than", b)
    return graph


def relations_of(graph: nx.MultiDiGraph) -> list[Relation]:
    """The graph's edges as records, in a stable order."""
    edges = sorted((u, d["predicate"], v) for u, v, d in graph.edges(data=True))
    return [Relation(subject=u, predicate=p, object=v) for u, p, v in edges]
