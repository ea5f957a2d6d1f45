"""Reading the formats the field already uses into a run folder (``prist import``)."""
