"""``prist evaluate``: score any model's answers on a PRIST dataset (paper section 5.1, Appendix C.3-C.4).

Scoring is split from inference: a model (MIRAS through ``prist predict``, a baseline, a general
MLLM's text answers) writes a predictions JSONL (:class:`~prist_builder.records.prediction.Prediction`),
and this package scores it against references read from a ``prist export`` folder or a run folder.

Modules, one concept each:

- :mod:`.references` reads the reference samples (export folder via ``datasets``, run folder via
  :func:`~prist_builder.samples.iter_samples`).
- :mod:`.predictions` reads predictions and matches them to references, counting problems by kind.
- :mod:`.boxes` parses ``<box>`` answers of general MLLMs and turns a box into a mask.
- :mod:`.segmentation` computes gIoU, cIoU and pixel precision/recall/F1, also by granularity
  and by target kind, with GRES's empty-target rule, N-acc and T-acc.
- :mod:`.targets` matches predicted masks to the targets of a multi-target sample (Hungarian).
- :mod:`.text` computes BLEU-4, ROUGE-L, METEOR, Dist-1/2 (and BERTScore from a local model).
- :mod:`.judge` asks an LLM judge for PR, LC, CC, TR and the win rate (Table 4).
- :mod:`.tables` lays the results out as Tables 3 and 4 (rich, Markdown, CSV, JSON).
- :mod:`.compare` compares result files of several runs (deltas and a PNG plot).
- :mod:`.scoring` ties them together.
"""
