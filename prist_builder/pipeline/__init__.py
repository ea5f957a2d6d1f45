"""Run folders and the step runner of ``prist build``."""
