"""Converters from public segmentation and VQA datasets into the training format (``prist convert``).

Each converter reads one dataset in its own published layout and yields rows of the export
contract (README "The export folder"; one row per sample, plain Python values), or
:class:`~prist_builder.model.data.rows.Reject` entries for records it cannot use. The rows are
written as an export-style folder by :mod:`prist_builder.export.converted`, which
``prist train --data`` and ``prist evaluate --data`` read. Stage-1 data of the paper
(appendix C.2): semantic segmentation (COCO-Stuff, ADE20K), referring segmentation
(RefCOCO/+/g, PACO-LVIS), VQA (LLaVA-Instruct) and reasoning segmentation (ReasonSeg).
"""

from __future__ import annotations

from importlib import import_module

FORMATS = {
    "cocostuff": "prist_builder.model.data.labelmaps:convert_cocostuff",
    "ade20k": "prist_builder.model.data.labelmaps:convert_ade20k",
    "refcoco": "prist_builder.model.data.refcoco:convert_refcoco",
    "reasonseg": "prist_builder.model.data.reasonseg:convert_reasonseg",
    "paco": "prist_builder.model.data.paco:convert_paco",
    "llava-instruct": "prist_builder.model.data.llava:convert_llava_instruct",
}
"""``prist convert`` FORMAT names and the function converting each (``module:function``)."""


def converter(name: str):
    """The converter function of a FORMAT name (imported on demand).

    Raises:
        KeyError: an unknown name.
    """
    module, function = FORMATS[name].split(":")
    return getattr(import_module(module), function)
