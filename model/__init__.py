"""MIRAS, the paper's multi-turn reasoning segmentation model (section 4), installed as
``prist_builder.model``."""
