"""Turn :class:`~prist_builder.model.records.Record` lists into MIRAS batches.

Text follows the base model's chat template (:mod:`prist_builder.model.chat`: the processor's
own, or the vicuna / mistral / llama3 table), rendered and tokenised once as the processor does
it (BOS exactly once). Only assistant answers are supervised; user turns, the system prompt and
image tokens are masked (-100). The ``<image>`` token is expanded to the processor's feature count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from prist_builder.model.build import OBJ_TOKEN, SEG_TOKEN
from prist_builder.model.chat import ChatFormat
from prist_builder.model.losses import IGNORE_INDEX
from prist_builder.model.records import Record

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
        template, system_prompt: see :class:`~prist_builder.model.chat.ChatFormat`.
    """

    def __init__(
        self,
        processor,
        sam_size: int,
        high_res: int,
        max_length: int,
        padding_side: str = "right",
        template: str = "auto",
        system_prompt: str | None = None,
    ) -> None:
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.chat = ChatFormat(self.tokenizer, getattr(processor, "chat_template", None), template, system_prompt)
        self.sam_size = sam_size
        self.high_res = high_res
        self.max_length = max_length
        self.padding_side = padding_side
        self.seg_id = self.tokenizer.convert_tokens_to_ids(SEG_TOKEN)
        self.obj_id = self.tokenizer.convert_tokens_to_ids(OBJ_TOKEN)

    @classmethod
    def for_model(cls, model, max_length: int | None = None, padding_side: str | None = None) -> MirasCollator:
        """The collator of a :class:`~prist_builder.model.miras.Miras` (its processor, SAM side and settings)."""
        s = model.settings
        return cls(
            model.processor,
            model.head.side,
            s.high_res if model.fusion is not None else 0,
            s.max_length if max_length is None else max_length,
            padding_side or s.padding_side,
            s.template,
            s.system_prompt,
        )

    def image_inputs(self, image: Image.Image) -> tuple[dict[str, torch.Tensor], list[int]]:
        """LLaVA-NeXT ``pixel_values`` ``(1, P, 3, S, S)``, ``image_sizes`` ``(1, 2)`` and the expanded image ids
        (the image tokens only: no BOS, whatever the tokenizer adds)."""
        out = self.processor(images=[image], text=[self.processor.image_token], return_tensors="pt")
        image_ids = [t for t in out["input_ids"][0].tolist() if t == self.chat.image_id]
        return {"pixel_values": out["pixel_values"], "image_sizes": out["image_sizes"]}, image_ids

    def encode(self, turns: list[tuple[str, str]], image_ids: list[int], prompt_only: bool = False) -> Encoded:
        """Tokenise a dialogue; ``prompt_only`` ends with the generation prompt after the last user turn.

        Raises:
            ValueError: roles do not alternate user/assistant starting with the user, or the
                template dropped the image.
        """
        raw, supervised = self.chat.encode(turns, prompt_only)
        if raw.count(self.chat.image_id) != 1:
            raise ValueError(f"the chat template rendered {raw.count(self.chat.image_id)} <image> tokens, expected 1")
        at = raw.index(self.chat.image_id)
        ids = raw[:at] + list(image_ids) + raw[at + 1 :]
        labels = [t if keep else IGNORE_INDEX for t, keep in zip(raw, supervised, strict=True)]
        labels = labels[:at] + [IGNORE_INDEX] * len(image_ids) + labels[at + 1 :]
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
