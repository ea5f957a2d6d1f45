"""Segmentation head: SAM's frozen image encoder and prompt encoder, and its trained mask decoder (eq. 5, 7)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import SamModel


class SegmentationHead(nn.Module):
    """Decode one mask per prompt with SAM's mask decoder.

    Args:
        sam: a ``SamModel``; its side (``vision_config.image_size``, 1024) and prompt width
            (``prompt_encoder_config.hidden_size``, 256) fix the input and prompt sizes.
    """

    def __init__(self, sam: SamModel) -> None:
        super().__init__()
        self.sam = sam
        self.side = int(sam.config.vision_config.image_size)
        self.prompt_dim = int(sam.config.prompt_encoder_config.hidden_size)

    def image_embeddings(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """``E_seg`` (eq. 5): ``(B, 3, side, side)`` -> ``(B, prompt_dim, side/16, side/16)``, no gradient."""
        with torch.no_grad():
            return self.sam.vision_encoder(pixel_values.to(self.sam.vision_encoder.dtype)).last_hidden_state

    def forward(
        self, embedding: torch.Tensor, prompts: torch.Tensor, resized: tuple[int, int], original: tuple[int, int]
    ) -> torch.Tensor:
        """Masks of one image (eq. 7).

        Args:
            embedding: ``(prompt_dim, h, w)`` SAM image embedding of the image.
            prompts: ``(n, prompt_dim)`` one prompt per target (n >= 1).
            resized: ``(h', w')`` pixels the image occupies in the padded SAM input.
            original: ``(H, W)`` pixels of the source image.

        Returns:
            ``(n, H, W)`` float mask logits in the source frame.
        """
        sam = self.sam
        emb = embedding[None].to(sam.mask_decoder.iou_token.weight.dtype)
        dense = sam.prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(1, -1, *emb.shape[-2:])
        positional = sam.get_image_wide_positional_embeddings().to(emb.dtype)
        low_res, _ = sam.mask_decoder(
            image_embeddings=emb,
            image_positional_embeddings=positional,
            sparse_prompt_embeddings=prompts[None, :, None, :].to(emb.dtype),
            dense_prompt_embeddings=dense.to(emb.dtype),
            multimask_output=False,
        )
        masks = low_res[0, :, 0].float()[:, None]
        masks = F.interpolate(masks, size=(self.side, self.side), mode="bilinear", align_corners=False)
        masks = masks[..., : resized[0], : resized[1]]
        return F.interpolate(masks, size=tuple(original), mode="bilinear", align_corners=False)[:, 0]
