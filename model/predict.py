"""Inference: replay a dialogue's user turns, generate each answer, decode the mask (``prist predict``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
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


class Predictor:
    """Answers dialogues with a trained :class:`Miras`.

    Args:
        model: the model (eval mode, on its device).
        high_res: ConvNeXt input side (pixels) from the config.
        max_new_tokens: longest generated answer (tokens).
        force_seg: when the final answer has no ``[SEG]``, append one so a mask is still decoded
            (the answer text stays as generated).
    """

    def __init__(self, model: Miras, high_res: int, max_new_tokens: int, force_seg: bool = True) -> None:
        self.model = model
        self.tokenizer = model.processor.tokenizer
        self.collator = MirasCollator.for_model(model, max_length=10**9, padding_side="left")
        self.max_new_tokens = max_new_tokens
        self.force_seg = force_seg
        self.device = next(model.parameters()).device

    @classmethod
    def from_folder(cls, out: Path | str, device: str | None = None, force_seg: bool = True) -> Predictor:
        """A predictor for the folder ``prist train --out`` wrote (its newest checkpoint).

        Args:
            device: ``cpu``, ``cuda``, ...; default ``cuda`` when available.

        Raises:
            FileNotFoundError: not a training folder, or no checkpoint yet.
        """
        from prist_builder.model.loading import load_trained

        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        model, config, _ = load_trained(Path(out), device)
        return cls(model, config.model.high_res, config.model.max_new_tokens, force_seg)

    def _batch(self, image_batch: dict, ids: list[int]) -> dict:
        batch = {k: v.to(self.device) for k, v in image_batch.items()}
        batch["input_ids"] = torch.tensor([ids], device=self.device)
        batch["attention_mask"] = torch.ones_like(batch["input_ids"])
        return batch

    def _generate(self, image_batch: dict, ids: list[int]) -> list[int]:
        batch = self._batch(image_batch, ids)
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
        new = out[0].tolist()
        specials = {self.tokenizer.eos_token_id, self.tokenizer.pad_token_id}
        cut = next((i for i, t in enumerate(new) if t in specials), len(new))
        return new[:cut]

    @torch.no_grad()
    def respond(self, image: Image.Image, user_messages: Iterable[str]) -> tuple[list[str], np.ndarray | None]:
        """Answer the user messages in order about ``image``.

        Returns:
            ``(responses, mask)``: one generated text per user message, and the ``(H, W)`` bool
            union of the masks of the last answer's ``[SEG]`` tokens (``None`` without one).
        """
        image = image.convert("RGB")
        image_batch, image_ids = self.collator.images([image])
        turns: list[tuple[str, str]] = []
        responses: list[str] = []
        answer: list[int] = []
        prompt: list[int] = []
        for message in user_messages:
            turns.append(("user", message))
            prompt = self.collator.encode(turns, image_ids[0], prompt_only=True).ids
            answer = self._generate(image_batch, prompt)
            text = self.tokenizer.decode(answer, skip_special_tokens=False).strip()
            responses.append(text)
            turns.append(("assistant", text))
        if not responses:
            return [], None
        if self.model.seg_id not in answer:
            if not self.force_seg:
                return responses, None
            answer = answer + [self.model.seg_id]
        batch = self._batch(image_batch, prompt + answer)
        hidden = self.model.hidden_states(batch)
        spans = [
            s for s in find_spans(batch["input_ids"], self.model.obj_id, self.model.seg_id)[0] if s[0] >= len(prompt)
        ]
        logits = self.model.masks(hidden, batch, [spans])[0]
        return responses, (logits > MASK_THRESHOLD).any(0).cpu().numpy()

    def predict(self, record: Record) -> Prediction:
        """The :class:`Prediction` line of one reference record (its user turns are replayed)."""
        users = [content for role, content in record.turns if role == "user"]
        responses, mask = self.respond(record.image, users)
        return Prediction(
            sample_id=record.sample_id, responses=responses, mask=encode(mask) if mask is not None else None
        )


def predict_file(
    predictor: Predictor, records: Iterable[Record], out: Path, on_done: Callable[[Prediction], None] | None = None
) -> int:
    """Write one :class:`Prediction` JSON line per record to ``out``; re-runs skip sample ids already there.

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
    with out.open("a", encoding="utf-8") as handle:
        for record in records:
            if record.sample_id in done:
                continue
            prediction = predictor.predict(record)
            handle.write(prediction.model_dump_json() + "\n")
            handle.flush()
            written += 1
            if on_done is not None:
                on_done(prediction)
    return written
