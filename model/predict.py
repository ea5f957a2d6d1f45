"""Inference: replay a dialogue's user turns, generate each answer, decode the masks (``prist predict``).

Dialogues run in batches (left-padded, greedy decoding), with every weight in bf16 by default on
CUDA (fp32 on CPU, where bf16 matmuls are slow). The last answer gets one mask per ``[SEG]`` it
holds, in order (a multi-target answer several, an empty-target answer none); a prediction line
holds them as ``masks`` and their union as ``mask`` (``null`` without a ``[SEG]``).
"""

from __future__ import annotations

import resource
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from prist_builder.annotation.masks import encode
from prist_builder.model.collator import MirasCollator, find_spans
from prist_builder.model.miras import Miras
from prist_builder.model.records import Record
from prist_builder.records.prediction import Prediction

MASK_THRESHOLD = 0.0
"""Mask logits above this are foreground (probability 0.5)."""
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
"""``--dtype`` names: the dtype of every weight at inference."""


def default_dtype(device: str | torch.device) -> str:
    """``bf16`` on CUDA (7B + SAM-H then fit a 24 GB GPU), ``fp32`` elsewhere."""
    return "bf16" if torch.device(device).type == "cuda" else "fp32"


def reset_peak_memory(device: torch.device) -> None:
    """Start a new peak-memory window on a CUDA device (no-op elsewhere)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_gib(device: torch.device) -> tuple[float, str]:
    """Peak memory so far (GiB) and what was measured: CUDA allocated bytes, else the process's peak RSS."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30, "GPU allocated"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, "process RSS"


def default_force_seg(out: Path | str) -> bool:
    """Whether ``prist predict`` appends a ``[SEG]`` to a final answer without one, for the model of
    training folder ``out``: no when its training data held empty-target samples (the model learned
    to answer "not there" without a ``[SEG]``, and a forced mask would score every empty target 0,
    GRES), yes otherwise (single/multi-target data, or a folder older than ``targets.json``: a mask
    is always decoded, as the single-target protocol expects)."""
    from prist_builder.model.checkpoint import read_target_kinds

    kinds = read_target_kinds(Path(out))
    return kinds is None or not kinds.get("empty", 0)


@dataclass
class Answer:
    """What :meth:`Predictor.answer_many` returns for one dialogue.

    Attributes:
        responses: one generated text per user message.
        masks: one ``(H, W)`` bool mask per ``[SEG]`` of the last answer, in order (``[]`` without one).
    """

    responses: list[str]
    masks: list[np.ndarray] = field(default_factory=list)

    @property
    def mask(self) -> np.ndarray | None:
        """The ``(H, W)`` bool union of :attr:`masks`, ``None`` when there is none."""
        return np.logical_or.reduce(self.masks) if self.masks else None

    def prediction(self, sample_id: str) -> Prediction:
        """The :class:`Prediction` line: ``masks`` one COCO RLE per ``[SEG]``, ``mask`` their union or ``None``."""
        union = self.mask
        return Prediction(
            sample_id=sample_id,
            responses=self.responses,
            masks=[encode(m) for m in self.masks],
            mask=encode(union) if union is not None else None,
        )


def _rows(batch: dict, rows: list[int]) -> dict:
    index = torch.tensor(rows, device=batch["pixel_values"].device)
    return {k: v.index_select(0, index) for k, v in batch.items()}


class Predictor:
    """Answers dialogues with a trained :class:`Miras`.

    Args:
        model: the model (on its device); cast to ``dtype`` and put in eval mode.
        high_res: unused (the model's settings give the ConvNeXt side); kept for callers.
        max_new_tokens: longest generated answer (tokens).
        force_seg: when the final answer has no ``[SEG]``, append one so a mask is still decoded
            (the answer text stays as generated); off, such an answer gets no mask
            (:func:`default_force_seg` picks it for a training folder).
        dtype: ``bf16``, ``fp16``, ``fp32`` or a torch dtype; default :func:`default_dtype`.
        batch_size: dialogues :func:`predict_file` answers together (left padding).
    """

    def __init__(
        self,
        model: Miras,
        high_res: int | None = None,
        max_new_tokens: int = 256,
        force_seg: bool = True,
        dtype: str | torch.dtype | None = None,
        batch_size: int = 1,
    ) -> None:
        self.device = next(model.parameters()).device
        dtype = dtype or default_dtype(self.device)
        self.dtype = DTYPES[dtype] if isinstance(dtype, str) else dtype
        self.model = model.to(self.dtype).eval()
        self.tokenizer = model.processor.tokenizer
        self.collator = MirasCollator.for_model(model, max_length=10**9, padding_side="left")
        self.max_new_tokens = max_new_tokens
        self.force_seg = force_seg
        self.batch_size = max(1, batch_size)

    @classmethod
    def from_folder(
        cls,
        out: Path | str,
        device: str | None = None,
        force_seg: bool | None = None,
        dtype: str | None = None,
        batch_size: int = 1,
    ) -> Predictor:
        """A predictor for the folder ``prist train --out`` wrote (its newest checkpoint).

        Args:
            device: ``cpu``, ``cuda``, ...; default ``cuda`` when available.
            force_seg: see :class:`Predictor`; default :func:`default_force_seg` of the folder.
            dtype: ``bf16``/``fp16``/``fp32``; default bf16 on CUDA, fp32 on CPU. Frozen weights
                load in it directly (no fp32 copy of the 7B model first).

        Raises:
            FileNotFoundError: not a training folder, or no checkpoint yet.
        """
        from prist_builder.model.loading import load_trained

        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = dtype or default_dtype(device)
        model, config, _ = load_trained(Path(out), device, DTYPES[dtype])
        force_seg = default_force_seg(out) if force_seg is None else force_seg
        return cls(model, config.model.high_res, config.model.max_new_tokens, force_seg, dtype, batch_size)

    def _pad(self, image_batch: dict, id_lists: list[list[int]]) -> tuple[dict, list[int]]:
        """The rows' image inputs plus left-padded ``input_ids``/``attention_mask``; and each row's padding."""
        length = max(len(ids) for ids in id_lists)
        pads = [length - len(ids) for ids in id_lists]
        pad_id = self.tokenizer.pad_token_id
        batch = {k: v.to(self.device) for k, v in image_batch.items()}
        batch["input_ids"] = torch.tensor(
            [[pad_id] * pad + ids for pad, ids in zip(pads, id_lists, strict=True)], device=self.device
        )
        batch["attention_mask"] = torch.tensor(
            [[0] * pad + [1] * len(ids) for pad, ids in zip(pads, id_lists, strict=True)], device=self.device
        )
        return batch, pads

    def _generate(self, image_batch: dict, id_lists: list[list[int]]) -> list[list[int]]:
        batch, _ = self._pad(image_batch, id_lists)
        embeds = self.model.embed(
            batch["input_ids"], batch["pixel_values"], batch["image_sizes"], batch.get("pixel_values_hr")
        )
        out = self.model.base.generate(
            inputs_embeds=embeds,
            attention_mask=batch["attention_mask"],
            do_sample=False,
            max_new_tokens=self.max_new_tokens,
            eos_token_id=self.tokenizer.eos_token_id,
            pad_token_id=self.tokenizer.pad_token_id,
        )
        specials = {self.tokenizer.eos_token_id, self.tokenizer.pad_token_id}
        answers = []
        for row in out.tolist():
            cut = next((i for i, t in enumerate(row) if t in specials), len(row))
            answers.append(row[:cut])
        return answers

    def _masks(self, image_batch: dict, prompts: list[list[int]], answers: list[list[int]]) -> list[np.ndarray]:
        """``(n, H, W)`` bool masks of each answer's ``n`` ``[OBJ] ... [SEG]`` spans, in order."""
        batch, pads = self._pad(image_batch, [p + a for p, a in zip(prompts, answers, strict=True)])
        hidden = self.model.hidden_states(batch)
        found = find_spans(batch["input_ids"], self.model.obj_id, self.model.seg_id)
        spans = [
            [s for s in row if s[0] >= pad + len(prompt)] for row, pad, prompt in zip(found, pads, prompts, strict=True)
        ]
        logits = self.model.masks(hidden, batch, spans)
        return [(row.float() > MASK_THRESHOLD).cpu().numpy() for row in logits]

    @torch.no_grad()
    def answer_many(self, images: Sequence[Image.Image], dialogues: Sequence[Sequence[str]]) -> list[Answer]:
        """Answer several dialogues as one batch.

        Round ``t`` generates the ``t``-th answer of every dialogue that has a ``t``-th user
        message, each feeding back its own earlier answers; the masks of all last answers are
        decoded in one more pass, one per ``[SEG]`` (an answer without one gets a single forced
        ``[SEG]`` with ``force_seg``, else no mask).

        Returns:
            One :class:`Answer` per dialogue, in order.
        """
        images = [image.convert("RGB") for image in images]
        image_batch, image_ids = self.collator.images(images)
        count = len(images)
        turns: list[list[tuple[str, str]]] = [[] for _ in range(count)]
        responses: list[list[str]] = [[] for _ in range(count)]
        prompts: list[list[int]] = [[] for _ in range(count)]
        answers: list[list[int]] = [[] for _ in range(count)]
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32):
            for turn in range(max((len(d) for d in dialogues), default=0)):
                active = [i for i in range(count) if turn < len(dialogues[i])]
                for i in active:
                    turns[i].append(("user", dialogues[i][turn]))
                    prompts[i] = self.collator.encode(turns[i], image_ids[i], prompt_only=True).ids
                generated = self._generate(_rows(image_batch, active), [prompts[i] for i in active])
                for i, answer in zip(active, generated, strict=True):
                    answers[i] = answer
                    text = self.tokenizer.decode(answer, skip_special_tokens=False).strip()
                    responses[i].append(text)
                    turns[i].append(("assistant", text))
            wanted = []
            for i in range(count):
                if responses[i] and self.model.seg_id not in answers[i] and self.force_seg:
                    answers[i] = answers[i] + [self.model.seg_id]
                if responses[i] and self.model.seg_id in answers[i]:
                    wanted.append(i)
            masks = {}
            if wanted:
                decoded = self._masks(
                    _rows(image_batch, wanted), [prompts[i] for i in wanted], [answers[i] for i in wanted]
                )
                masks = {i: list(rows) for i, rows in zip(wanted, decoded, strict=True)}
        return [Answer(responses[i], masks.get(i, [])) for i in range(count)]

    def respond_many(
        self, images: Sequence[Image.Image], dialogues: Sequence[Sequence[str]]
    ) -> list[tuple[list[str], np.ndarray | None]]:
        """Answer several dialogues as one batch (:meth:`answer_many`; :meth:`respond` answers one).

        Returns:
            Per dialogue ``(responses, mask)``: one text per user message, and the ``(H, W)`` bool
            union of the masks of the last answer's ``[SEG]`` tokens (``None`` without one).
        """
        return [(a.responses, a.mask) for a in self.answer_many(images, dialogues)]

    def respond(self, image: Image.Image, user_messages: Iterable[str]) -> tuple[list[str], np.ndarray | None]:
        """Answer the user messages in order about ``image``.

        Returns:
            ``(responses, mask)``: one generated text per user message, and the ``(H, W)`` bool
            union of the masks of the last answer's ``[SEG]`` tokens (``None`` without one).
        """
        return self.respond_many([image], [list(user_messages)])[0]

    def predict_many(self, records: Sequence[Record]) -> list[Prediction]:
        """The :class:`Prediction` lines of reference records, answered as one batch (user turns replayed)."""
        users = [[content for role, content in record.turns if role == "user"] for record in records]
        answers = self.answer_many([record.image for record in records], users)
        return [answer.prediction(record.sample_id) for record, answer in zip(records, answers, strict=True)]

    def predict(self, record: Record) -> Prediction:
        """The :class:`Prediction` line of one reference record (its user turns are replayed)."""
        return self.predict_many([record])[0]


def predict_file(
    predictor: Predictor, records: Iterable[Record], out: Path, on_done: Callable[[Prediction], None] | None = None
) -> int:
    """Write one :class:`Prediction` JSON line per record to ``out``; re-runs skip sample ids already there.

    Records are answered ``predictor.batch_size`` at a time; a batch's lines are flushed together.

    Returns:
        The number of lines written by this call.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = set()
    if out.exists():
        for line in out.read_text(encoding="utf-8").splitlines():
            if line.strip().endswith("}"):
                done.add(Prediction.model_validate_json(line).sample_id)
    written = 0
    pending: list[Record] = []
    with out.open("a", encoding="utf-8") as handle:

        def flush() -> None:
            nonlocal written
            for prediction in predictor.predict_many(pending):
                handle.write(prediction.model_dump_json() + "\n")
                written += 1
                if on_done is not None:
                    on_done(prediction)
            handle.flush()
            pending.clear()

        for record in records:
            if record.sample_id in done:
                continue
            pending.append(record)
            if len(pending) >= predictor.batch_size:
                flush()
        if pending:
            flush()
    return written
