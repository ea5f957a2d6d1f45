"""The names of the pipeline's steps: the one home of these strings."""

from __future__ import annotations

from typing import Literal, get_args

StepName = Literal["elements", "trees", "dialogues"]
"""A build step (section 3.2): step 1 elements, step 2 reasoning trees, step 3 dialogues."""
STEPS: tuple[StepName, ...] = get_args(StepName)
"""The steps in pipeline order; each writes ``RUN/<step>.jsonl``."""
PROMPT_OF_STEP: dict[StepName, str] = {"elements": "elements", "trees": "tree", "dialogues": "dialogues"}
"""The prompt template (``prompts/<name>.md``) of each step for model-based providers."""
