"""``prist review``: a local web app where experts check and correct a run's dialogues (paper 3.3, B.1).

Reviewers accept a sample, reject it with a reason, or edit a message; each action is one
:class:`~prist_builder.records.curation.ReviewDecision` appended to ``RUN/reviews.jsonl``
(the build's files are never rewritten). :func:`prist_builder.samples.iter_samples` folds
those decisions into every later step. The same pages can be written as one static HTML file.

Modules: :mod:`.index` (the run joined once), :mod:`.decisions` (actions and edit checks),
:mod:`.render` (mask layer, tree SVG, provenance), :mod:`.views` (template contexts),
:mod:`.security` (binding, token, headers), :mod:`.app` (routes), :mod:`.report` (static file).
"""
