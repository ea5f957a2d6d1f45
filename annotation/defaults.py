"""Defaults of the annotation loop that the command line shows in its help.

They live here, apart from the code that uses them, so that ``prist --help`` knows them
without loading numpy, Pillow and pycocotools (``agreement`` and ``folders`` re-export them).
"""

from __future__ import annotations

IOU_THRESHOLD = 0.80
"""Default pass mark for mean IoU per group (paper Table 1: every group is above it)."""
KAPPA_THRESHOLD = 0.75
"""Default pass mark for mean Cohen's kappa per group (paper Table 1)."""
MATCH_MODES = ("label", "instance")
"""How ``prist qa agreement --a/--b`` pairs the shapes of two folders."""
