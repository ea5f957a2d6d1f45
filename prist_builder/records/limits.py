"""Numeric rules of the PRIST pipeline, each traced to the paper.

All of them are defaults: the pipeline takes overrides from the command line where an
issue asks for it (turn bounds), and the record validators read them from the pydantic
validation context (``context={"min_turns": 3, ...}``).
"""

from __future__ import annotations

MAX_CHILDREN = 3
"""At most three child nodes per reasoning-tree node (section 3.2.2)."""

MIN_TARGETS = 2
"""K >= 2 targets per image (section 3.2.2, 2 <= K <= min(N, 4))."""

MAX_TARGETS = 4
"""K <= 4 targets per image (section 3.2.2)."""

MIN_TURNS = 3
"""Fewest turns (question + answer pairs, the final segmentation turn included) we accept.

Table 2 reports 4 turns on average and 7 at most; the authors' test split has 3 to 5."""

MAX_TURNS = 7
"""Most turns we accept (Table 2: max 7)."""

SEG_TOKEN = "[SEG]"
"""Placeholder token whose hidden state drives the mask decoder (section 4.1)."""

OBJ_TOKEN = "[OBJ]"
"""Opens the object description of the segmentation template ``[OBJ]{CLASS}[SEG]`` (section 4.1)."""

TARGET_KINDS = ("single", "multi", "empty")
"""What a sample's final answer segments: one target (the paper's data), a set of two or more
targets (one ``[OBJ]{focus}[SEG]`` each), or nothing (no ``[SEG]``): gRefCOCO/GRES's kinds,
the paper's Limitations section."""

MULTI_ID_SEPARATOR = "+"
"""Joins the element ids of a multi-target sample into its ``target_element_id`` (``"e0+e2"``)."""

EMPTY_ID_PREFIX = "none"
"""``target_element_id`` of an empty-target sample starts with this (``"none"``, ``"none-1"``)."""
