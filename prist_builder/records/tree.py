"""Step 2 output: reasoning questions and the reasoning tree of one image (section 3.2.2)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationInfo,
    model_serializer,
    model_validator,
)

from prist_builder.records.limits import (
    EMPTY_ID_PREFIX,
    MAX_CHILDREN,
    MAX_TARGETS,
    MIN_TARGETS,
    MULTI_ID_SEPARATOR,
    TARGET_KINDS,
)

if TYPE_CHECKING:  # networkx loads when a tree is first checked, not when the CLI starts
    import networkx as nx


class TreeNode(BaseModel):
    """One node of a reasoning tree: a sub-question and its answer, ``(q_n, a_n)`` of Eq. 3.

    Attributes:
        id: node id unique within the tree.
        question: the sub-question this node asks.
        answer: its answer, narrowing towards the target.
        element_id: for a target leaf, the element it resolves to; else ``None``.
    """

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    question: str = Field(min_length=1)
    answer: str = Field(min_length=1)
    element_id: str | None = None


class TreePath(BaseModel):
    """The path ``P_i`` from the root to one target leaf (Eq. 3).

    Besides the paper's one-target paths, a path may end in a *set* (``kind="multi"``: its
    leaf's answer names two or more elements, ``target_element_ids``, and the leaf's
    ``element_id`` is them joined by ``+``) or in *none* (``kind="empty"``: the need it
    follows points to something the image does not hold; ``target_element_id`` and the
    leaf's ``element_id`` start with ``none``).

    Attributes:
        target_element_id: the target element ``o_i`` (joined ids for ``multi``, ``none...``
            for ``empty``).
        reasoning_question: the complex question ``Q_i`` of step 2-1 (Eq. 2).
        node_ids: node ids from the root to the target leaf, inclusive.
        kind: ``single`` (default, not written), ``multi`` or ``empty``.
        target_element_ids: for ``multi``, the elements of the set in answer order.
        absent: for ``empty``, the asked-for thing the image does not hold (a noun phrase
            without article, e.g. ``"bicycle"``); checked against every region label and
            element (:mod:`prist_builder.providers.absent`).
    """

    model_config = ConfigDict(extra="forbid")

    target_element_id: str
    reasoning_question: str = Field(min_length=1)
    node_ids: list[str] = Field(min_length=2)
    kind: str = "single"
    target_element_ids: list[str] = Field(default_factory=list)
    absent: str = ""

    @model_serializer(mode="wrap")
    def _omit_defaults(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Write ``kind``/``target_element_ids`` only on multi/empty paths (single-target
        trees stay byte-identical)."""
        data = handler(self)
        if data.get("kind") == "single":
            del data["kind"]
        if not data.get("target_element_ids", True):
            del data["target_element_ids"]
        if not data.get("absent", True):
            del data["absent"]
        return data

    @model_validator(mode="after")
    def _check_kind(self) -> TreePath:
        if self.kind not in TARGET_KINDS:
            raise ValueError(f"kind {self.kind!r}; expected one of {', '.join(TARGET_KINDS)}")
        if self.kind == "multi":
            if len(self.target_element_ids) < 2:
                raise ValueError("a multi-target path needs two or more target_element_ids")
            joined = MULTI_ID_SEPARATOR.join(self.target_element_ids)
            if self.target_element_id != joined:
                raise ValueError(f"a multi-target path's target_element_id must be {joined!r}")
        elif self.target_element_ids:
            raise ValueError(f"target_element_ids is only for multi-target paths (kind is {self.kind!r})")
        if (self.kind == "empty") != bool(self.absent.strip()):
            raise ValueError("an empty path names its absent thing (absent), and only an empty path does")
        if (self.kind == "empty") != self.target_element_id.startswith(EMPTY_ID_PREFIX):
            raise ValueError(
                f"target_element_id {self.target_element_id!r}: only an empty path's starts with {EMPTY_ID_PREFIX!r}"
            )
        return self


class Relation(BaseModel):
    """A spatial relation ``subject predicate object`` between two elements."""

    model_config = ConfigDict(extra="forbid")

    subject: str = Field(description="element id")
    predicate: str = Field(description="left of | above | inside | next to | larger than")
    object: str = Field(description="element id")


class TreeRecord(BaseModel):
    """The reasoning tree ``T = {P_1..P_K}`` of one image: one line of ``trees.jsonl``.

    The validator checks that nodes and edges form one tree rooted at ``root`` (acyclic,
    connected, every node but the root with exactly one parent), that no node has more
    than ``max_children`` (context, default 3) children, that each path runs along edges
    from the root to a leaf that names its target, and that the number of targets lies in
    ``[min_targets, max_targets]`` (context, default 2..4).

    Raises (on validation): ``ValueError`` describing the first broken rule.
    """

    model_config = ConfigDict(extra="forbid")

    image_id: str
    provider: str
    root: str
    nodes: list[TreeNode] = Field(min_length=2)
    edges: list[tuple[str, str]] = Field(description="[parent_id, child_id] pairs")
    paths: list[TreePath] = Field(min_length=1)
    relations: list[Relation] = Field(default_factory=list)

    def to_networkx(self) -> nx.DiGraph:
        """The tree as a directed graph, parent -> child, node attributes from ``TreeNode``."""
        import networkx as nx

        graph = nx.DiGraph()
        for node in self.nodes:
            graph.add_node(node.id, **node.model_dump(exclude={"id"}))
        graph.add_edges_from(self.edges)
        return graph

    def node(self, node_id: str) -> TreeNode:
        """Return the node with ``node_id``; raises ``KeyError`` if absent."""
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(f"tree {self.image_id}: no node {node_id!r}")

    @model_validator(mode="after")
    def _check_tree(self, info: ValidationInfo) -> TreeRecord:
        context: dict[str, Any] = info.context or {}
        max_children = int(context.get("max_children", MAX_CHILDREN))
        min_targets = int(context.get("min_targets", MIN_TARGETS))
        max_targets = int(context.get("max_targets", MAX_TARGETS))
        ids = [n.id for n in self.nodes]
        if len(ids) != len(set(ids)):
            raise ValueError(f"duplicate node ids: {sorted({i for i in ids if ids.count(i) > 1})}")
        known = set(ids)
        if self.root not in known:
            raise ValueError(f"root {self.root!r} is not a node")
        for parent, child in self.edges:
            if parent not in known or child not in known:
                raise ValueError(f"edge [{parent!r}, {child!r}] names an unknown node")
        import networkx as nx

        graph = self.to_networkx()
        if not nx.is_directed_acyclic_graph(graph):
            raise ValueError("the edges contain a cycle")
        if not nx.is_weakly_connected(graph):
            raise ValueError("the tree is not connected: every node must hang below the root")
        if not nx.is_arborescence(graph) or graph.in_degree(self.root) != 0:
            raise ValueError(f"not a tree rooted at {self.root!r}: a node has two parents or the root has one")
        for node_id in ids:
            if graph.out_degree(node_id) > max_children:
                raise ValueError(
                    f"node {node_id!r} has {graph.out_degree(node_id)} children; at most {max_children} allowed"
                )
        if not min_targets <= len(self.paths) <= max_targets:
            raise ValueError(f"{len(self.paths)} target paths; expected {min_targets} to {max_targets}")
        targets = [p.target_element_id for p in self.paths]
        if len(targets) != len(set(targets)):
            raise ValueError(f"a target appears on two paths: {targets}")
        for path in self.paths:
            self._check_path(path, graph)
        return self

    def _check_path(self, path: TreePath, graph: nx.DiGraph) -> None:
        name = f"path to {path.target_element_id!r}"
        if path.node_ids[0] != self.root:
            raise ValueError(f"{name} starts at {path.node_ids[0]!r}, not at the root {self.root!r}")
        for parent, child in zip(path.node_ids, path.node_ids[1:], strict=False):
            if not graph.has_edge(parent, child):
                raise ValueError(f"{name} steps {parent!r} -> {child!r}, which is not an edge")
        leaf = path.node_ids[-1]
        if graph.out_degree(leaf) != 0:
            raise ValueError(f"{name} ends at {leaf!r}, which is not a leaf")
        if self.node(leaf).element_id != path.target_element_id:
            raise ValueError(f"{name} ends at leaf {leaf!r}, whose element_id is {self.node(leaf).element_id!r}")
