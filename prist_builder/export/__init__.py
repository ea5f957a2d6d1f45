"""Publish a run: the Hugging Face dataset folder of ``prist export`` and the formats trainers read.

- :mod:`~prist_builder.export.features`: the declared columns of the export dataset contract.
- :mod:`~prist_builder.export.splits`: train/validation/test by image, deterministic from a seed.
- :mod:`~prist_builder.export.selection`: which samples go out, and why the others do not.
- :mod:`~prist_builder.export.writer`: parquet shards, ``export.json`` and the card.
- :mod:`~prist_builder.export.card`: the dataset card (``README.md`` with YAML metadata).
- :mod:`~prist_builder.export.llava`, :mod:`~prist_builder.export.lisa`,
  :mod:`~prist_builder.export.prist_json`: the LLaVA, ReasonSeg/LISA and authors' layouts.
- :mod:`~prist_builder.export.hub`: ``prist push-to-hub``.
"""
