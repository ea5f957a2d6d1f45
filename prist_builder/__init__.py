"""prist: build pixel-level reasoning segmentation (PRIST) datasets.

The package follows the three-step pipeline of the PRIST paper (ACL 2025, section 3.2):
step 1 extracts visual elements, step 2 forms reasoning questions and a reasoning tree,
step 3 turns each tree path into a multi-turn dialogue that ends in a segmentation turn.
"""

__version__ = "0.1.0"
