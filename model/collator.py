"""Turn :class:`~prist_builder.model.records.Record` lists into MIRAS batches.

Text follows LLaVA-v1.6-vicuna's template: ``<s>{system} USER: <image>\\n{u1} ASSISTANT: {a1}</s>USER:
{u2} ASSISTANT: {a2}</s>...``. Each piece is tokenised on its own and concatenated, so the
labels mask user turns, the system prompt and image tokens exactly (-100) with no offset
arithmetic, and the image placeholder is expanded to the processor's feature count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from prist_builder.model.build import OBJ_TOKEN, SEG_TOKEN
from prist_builder.model.losses import IGNORE_INDEX
from prist_builder.model.records import Record

SYSTEM = (
    "A chat between a curious human and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the human's questions."
)
"""LLaVA-v1.6-vicuna's system prompt."""
SAM_MEAN = (123.675, 116.28, 103.53)
SAM_STD = (58.395, 57.12, 57.375)
"""SAM pixel normalisation (0..255 scale)."""
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
"""ConvNeXt pixel normalisation (0..1 scale)."""


@dataclass
class Encoded:
    """One tokenised dialogue: ``ids`` and ``labels`` are equal-length token lists."""

    ids: list[int]
    labels: list[int]


def sam_input(image: Image.Image, side: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """SAM pixels: longest side resized to ``side``, normalised, zero-padded bottom/right.

    Returns:
        ``(3, side, side)`` float32 and the resized ``(h, w)`` in pixels.
    """
    w, h = image.size
    scale = side / max(h, w)
    new_h, new_w = int(h * scale + 0.5), int(w * scale + 0.5)
    array = np.asarray(image.resize((new_w, new_h), Image.Resampling.BILINEAR), dtype=np.float32)
    array = (array - np.array(SAM_MEAN, dtype=np.float32)) / np.array(SAM_STD, dtype=np.float32)
    out = torch.zeros(3, side, side)
    out[:, :new_h, :new_w] = torch.from_numpy(array).permute(2, 0, 1)
    return out, (new_h, new_w)


def high_res_input(image: Image.Image, side: int) -> torch.Tensor:
    """ConvNeXt pixels: the image resized to ``side`` x ``side``, ImageNet-normalised, ``(3, side, side)`` float32."""
    array = np.asarray(image.resize((side, side), Image.Resampling.BICUBIC), dtype=np.float32) / 255.0
    array = (array - np.array(IMAGENET_MEAN, dtype=np.float32)) / np.array(IMAGENET_STD, dtype=np.float32)
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def find_spans(input_ids: torch.Tensor, obj_id: int, seg_id: int) -> list[list[tuple[int, int]]]:
    """``(start, end)`` positions of each ``[OBJ] ... [SEG]`` span, per row, in order.

    ``end`` is the ``[SEG]`` position; ``start`` the nearest ``[OBJ]`` after the previous
    ``[SEG]``, or ``end`` itself when there is none. Works on the expanded ``input_ids`` of
    any padding side.

    Args:
        input_ids: ``(B, L)`` long.
    """
    spans: list[list[tuple[int, int]]] = []
    for row in input_ids.tolist():
        found, start = [], None
        for pos, token in enumerate(row):
            if token == obj_id:
                start = pos
            elif token == seg_id:
                found.append((pos if start is None else start, pos))
                start = None
        spans.append(found)
    return spans


class MirasCollator:
    """Builds batches for :class:`~prist_builder.model.miras.Miras`.

    Args:
        processor: the LLaVA-NeXT processor (tokenizer with ``[SEG]``/``[OBJ]``).
        sam_size: SAM input side (pixels). high_res: ConvNeXt input side (pixels, 0 = none).
        max_length: longest sequence kept (tokens); longer dialogues lose their last turns.
        padding_side: ``right`` or ``left``.
    """

    def __init__(self, processor, sam_size: int, high_res: int, max_length: int, padding_side: str = "right") -> None:
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.sam_size = sam_size
        self.high_res = high_res
        self.max_length = max_length
        self.padding_side = padding_side
        self.seg_id = self.tokenizer.convert_tokens_to_ids(SEG_TOKEN)
        self.obj_id = self.tokenizer.convert_tokens_to_ids(OBJ_TOKEN)

    def _tok(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False).input_ids

    def image_inputs(self, image: Image.Image) -> tuple[dict[str, torch.Tensor], list[int]]:
        """LLaVA-NeXT ``pixel_values`` ``(1, P, 3, S, S)``, ``image_sizes`` ``(1, 2)`` and the expanded image ids."""
        out = self.processor(images=[image], text=[self.processor.image_token], return_tensors="pt")
        return {"pixel_values": out["pixel_values"], "image_sizes": out["image_sizes"]}, out["input_ids"][0].tolist()

    def encode(self, turns: list[tuple[str, str]], image_ids: list[int], prompt_only: bool = False) -> Encoded:
        """Tokenise a dialogue; ``prompt_only`` ends after the last user turn's ``ASSISTANT:``.

        Raises:
            ValueError: roles do not alternate user/assistant starting with the user.
        """
        ids = [self.tokenizer.bos_token_id] + self._tok(f"{SYSTEM} USER: ") + image_ids
        labels = [IGNORE_INDEX] * len(ids)
        for index, (role, content) in enumerate(turns):
            expected = "user" if index % 2 == 0 else "assistant"
            if role != expected:
                raise ValueError(f"message {index}: role {role!r}, expected {expected!r}")
            if role == "user":
                piece = self._tok(f"\n{content} ASSISTANT:" if index == 0 else f"USER: {content} ASSISTANT:")
                ids += piece
                labels += [IGNORE_INDEX] * len(piece)
            else:
                piece = self._tok(f" {content}") + [self.tokenizer.eos_token_id]
                ids += piece
                labels += piece
        if not prompt_only and len(ids) > self.max_length:
            ids, labels = ids[: self.max_length], labels[: self.max_length]
        return Encoded(ids, labels)

    def pad(self, rows: list[Encoded]) -> dict[str, torch.Tensor]:
        """``input_ids``, ``attention_mask``, ``labels``: ``(B, L)`` long, padded on ``padding_side``."""
        length = max(len(r.ids) for r in rows)
        pad_id = self.tokenizer.pad_token_id
        ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
        labels = torch.full((len(rows), length), IGNORE_INDEX, dtype=torch.long)
        mask = torch.zeros((len(rows), length), dtype=torch.long)
        for i, row in enumerate(rows):
            n = len(row.ids)
            where = slice(length - n, length) if self.padding_side == "left" else slice(0, n)
            ids[i, where] = torch.tensor(row.ids)
            labels[i, where] = torch.tensor(row.labels)
            mask[i, where] = 1
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}

    def images(self, images: list[Image.Image]) -> tuple[dict[str, torch.Tensor], list[list[int]]]:
        """Every image input of a batch, and the expanded image ids of each image."""
        llava, image_ids = zip(*(self.image_inputs(im) for im in images), strict=True)
        patches = max(x["pixel_values"].shape[1] for x in llava)
        pixel_values = torch.zeros((len(images), patches, *llava[0]["pixel_values"].shape[2:]))
        for i, x in enumerate(llava):
            pixel_values[i, : x["pixel_values"].shape[1]] = x["pixel_values"][0]
        sam = [sam_input(im, self.sam_size) for im in images]
        batch = {
            "pixel_values": pixel_values,
            "image_sizes": torch.cat([x["image_sizes"] for x in llava]),
            "sam_pixel_values": torch.stack([s[0] for s in sam]),
            "sam_sizes": torch.tensor([s[1] for s in sam], dtype=torch.long),
            "orig_sizes": torch.tensor([(im.height, im.width) for im in images], dtype=torch.long),
        }
        if self.high_res:
            batch["pixel_values_hr"] = torch.stack([high_res_input(im, self.high_res) for im in images])
        return batch, [list(x) for x in image_ids]

    def __call__(self, records: list[Record]) -> dict:
        """A training batch: :meth:`pad` + :meth:`images` + ``target_masks``.

        ``target_masks`` is a list of ``(n_i, H_i, W_i)`` float {0, 1} tensors, one per record,
        holding the targets whose ``[SEG]`` survived truncation, in ``[SEG]`` order.
        """
        batch, image_ids = self.images([r.image for r in records])
        encoded = [self.encode(r.turns, ids) for r, ids in zip(records, image_ids, strict=True)]
        batch.update(self.pad(encoded))
        masks = []
        for record, row in zip(records, encoded, strict=True):
            kept = row.ids.count(self.seg_id)
            if kept > len(record.targets):
                raise ValueError(f"{record.sample_id}: {kept} [SEG] tokens but {len(record.targets)} targets")
            h, w = record.image.height, record.image.width
            stack = [torch.from_numpy(t.mask.astype(np.float32)) for t in record.targets[:kept]]
            masks.append(torch.stack(stack) if stack else torch.zeros((0, h, w)))
        batch["target_masks"] = masks
        batch["sample_ids"] = [r.sample_id for r in records]
        return batch
