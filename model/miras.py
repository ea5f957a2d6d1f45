"""MIRAS (paper section 4): LLaVA-NeXT + LoRA, dual visual encoder, region alignment, SAM decoder.

Device-agnostic (no ``.cuda()``); the training engine moves it and handles autocast.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from peft import LoraConfig, get_peft_model
from torch import nn
from transformers.models.llava_next.modeling_llava_next import image_size_to_num_patches

from prist_builder.model.alignment import RegionAlignment, SegProjection
from prist_builder.model.build import OBJ_TOKEN, SEG_TOKEN, Parts
from prist_builder.model.collator import find_spans
from prist_builder.model.config import ModelSettings, TrainSettings
from prist_builder.model.fusion import DualEncoderFusion
from prist_builder.model.head import SegmentationHead
from prist_builder.model.losses import LossParts, miras_loss, text_ce

LM_LORA_PATTERN = r".*language_model.*\.({names})$"
"""LoRA goes on the language model only (the CLIP tower has the same projection names)."""
TRAINED_PREFIXES = (
    "llava.base_model.model.model.multi_modal_projector.",
    "fusion.",
    "seg_proj.",
    "alignment.",
    "head.sam.mask_decoder.",
)
"""Parameters trained besides LoRA: projector, new modules, SAM's mask decoder."""
EMBEDDING_NAMES = ("embed_tokens.weight", "lm_head.weight")
"""Trained too with ``train_embeddings`` (the new ``[SEG]``/``[OBJ]`` rows, as LISA)."""
UNUSED = ("iou_prediction_head",)
"""Parts of the mask decoder MIRAS never uses (SAM's mask-quality score): kept frozen."""


@dataclass
class MirasOutput:
    """Loss parts and the predicted masks (``(n_i, H_i, W_i)`` logits per image)."""

    loss: LossParts | None
    mask_logits: list[torch.Tensor]
    hidden: torch.Tensor


class Miras(nn.Module):
    """The whole model.

    Args:
        parts: pretrained parts from :func:`prist_builder.model.build.build_parts`.
        settings: the config's ``model`` section.
    """

    def __init__(self, parts: Parts, settings: ModelSettings) -> None:
        super().__init__()
        self.settings = settings
        self.processor = parts.processor
        tokenizer = parts.processor.tokenizer
        self.seg_id = tokenizer.convert_tokens_to_ids(SEG_TOKEN)
        self.obj_id = tokenizer.convert_tokens_to_ids(OBJ_TOKEN)
        lora = settings.lora
        pattern = LM_LORA_PATTERN.format(names="|".join(lora.target_modules))
        with warnings.catch_warnings():  # peft calls a transformers property deprecated in 5.x
            warnings.simplefilter("ignore", FutureWarning)
            lora_config = LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, target_modules=pattern)
            self.llava = get_peft_model(parts.llava, lora_config)
        base = self.base
        hidden = base.config.text_config.hidden_size
        self.head = SegmentationHead(parts.sam)
        self.convnext = parts.convnext
        self.fusion = None
        if settings.dual_encoder and parts.convnext is not None:
            self.fusion = DualEncoderFusion(
                base.config.vision_config.hidden_size, parts.convnext.config.hidden_sizes[-1], settings.fusion_heads
            )
        self.seg_proj = SegProjection(hidden, self.head.prompt_dim)
        self.alignment = (
            RegionAlignment(self.head.prompt_dim, settings.alignment_heads) if settings.region_alignment else None
        )
        self.set_trainable()

    @property
    def base(self):
        """The ``LlavaNextForConditionalGeneration`` (with LoRA layers injected)."""
        return self.llava.get_base_model()

    def set_trainable(self) -> None:
        """Freeze everything except LoRA, projector, fusion, alignment, mask decoder (and embeddings)."""
        for name, param in self.named_parameters():
            param.requires_grad = not any(u in name for u in UNUSED) and (
                "lora_" in name
                or name.startswith(TRAINED_PREFIXES)
                or (self.settings.train_embeddings and name.endswith(EMBEDDING_NAMES))
            )

    def checkpointing(self, enable: bool) -> None:
        """Turn activation (gradient) checkpointing of the LLM on or off (non-reentrant)."""
        lm = self.base.model.language_model
        kwargs = {"use_reentrant": False}
        if enable and hasattr(lm, "activation_checkpointing_enable"):  # transformers >= 5.24
            lm.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
        elif enable:
            lm.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
        else:
            (getattr(lm, "activation_checkpointing_disable", None) or lm.gradient_checkpointing_disable)()

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """Trainable parameters by name (what a checkpoint holds)."""
        return {n: p.detach() for n, p in self.named_parameters() if p.requires_grad}

    # ---- vision ----------------------------------------------------------------------------
    def image_features(
        self, pixel_values: torch.Tensor, image_sizes: torch.Tensor, pixel_values_hr: torch.Tensor | None
    ) -> torch.Tensor:
        """Packed LLaVA-NeXT image features, CLIP fused with ConvNeXt when the dual encoder is on (eq. 4).

        Args:
            pixel_values: ``(B, P, 3, S, S)`` AnyRes patches (zero-padded to P).
            image_sizes: ``(B, 2)`` long, (H, W) pixels.
            pixel_values_hr: ``(B, 3, R, R)`` high-resolution images for ConvNeXt, or ``None``.

        Returns:
            ``(T, hidden)`` features, T = image tokens of the batch, in order.
        """
        base = self.base
        config, inner = base.config, base.model
        if not isinstance(config.vision_feature_layer, int):
            raise ValueError("MIRAS supports one vision_feature_layer (an int)")
        counts = [
            image_size_to_num_patches(
                image_size=s, grid_pinpoints=config.image_grid_pinpoints, patch_size=config.vision_config.image_size
            )
            for s in image_sizes.tolist()
        ]
        patches = torch.cat([pv[:n] for pv, n in zip(pixel_values, counts, strict=True)])
        dtype = inner.vision_tower.dtype
        with torch.no_grad():
            out = inner.vision_tower(patches.to(dtype), output_hidden_states=True)
            selected = out.hidden_states[config.vision_feature_layer]
            high = None
            if self.fusion is not None and pixel_values_hr is not None:
                high = self.convnext(pixel_values_hr.to(self.convnext.dtype)).last_hidden_state
                high = high.flatten(2).transpose(1, 2)
                high = high.repeat_interleave(torch.tensor(counts, device=high.device), dim=0)
        if high is not None:
            selected = self.fusion(selected.to(self.fusion.q.weight.dtype), high)
        if config.vision_feature_select_strategy == "default":
            selected = selected[:, 1:]
        features = torch.split(inner.multi_modal_projector(selected), counts, dim=0)
        packed, _ = inner.pack_image_features(
            features, image_sizes, config.vision_feature_select_strategy, image_newline=inner.image_newline
        )
        return torch.cat(packed)

    def embed(
        self,
        input_ids: torch.Tensor,
        pixel_values: torch.Tensor,
        image_sizes: torch.Tensor,
        pixel_values_hr: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Token embeddings with image features scattered into the image tokens: ``(B, L, hidden)``.

        Raises:
            ValueError: the number of image tokens differs from the number of image features.
        """
        base = self.base
        embeds = base.get_input_embeddings()(input_ids)
        features = self.image_features(pixel_values, image_sizes, pixel_values_hr).to(embeds.dtype)
        mask = input_ids == base.config.image_token_id
        if int(mask.sum()) != features.shape[0]:
            raise ValueError(f"{int(mask.sum())} image tokens but {features.shape[0]} image features")
        return embeds.masked_scatter(mask[..., None], features)

    # ---- forward ---------------------------------------------------------------------------
    def hidden_states(self, batch: dict) -> torch.Tensor:
        """Last hidden states of the language model: ``(B, L, hidden)``."""
        embeds = self.embed(
            batch["input_ids"], batch["pixel_values"], batch["image_sizes"], batch.get("pixel_values_hr")
        )
        mask = batch["attention_mask"]
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        out = self.base.model.language_model(
            inputs_embeds=embeds, attention_mask=mask, position_ids=positions, use_cache=False
        )
        return out.last_hidden_state

    def prompts(self, hidden: torch.Tensor, spans: list[tuple[int, int]]) -> torch.Tensor:
        """Mask decoder prompts of one row: ``hidden`` ``(L, D)`` -> ``(n, prompt_dim)`` (eq. 6)."""
        if self.alignment is None:
            return self.seg_proj(hidden[[end for _, end in spans]])
        lengths = torch.tensor([end - start + 1 for start, end in spans], device=hidden.device)
        width = int(lengths.max())
        padded = hidden.new_zeros((len(spans), width, hidden.shape[-1]))
        for i, (start, end) in enumerate(spans):
            padded[i, : end - start + 1] = hidden[start : end + 1]
        return self.alignment(self.seg_proj(padded), lengths)

    def masks(self, hidden: torch.Tensor, batch: dict, spans: list[list[tuple[int, int]]]) -> list[torch.Tensor]:
        """``(n_i, H_i, W_i)`` mask logits per row for its spans (``n_i = 0`` gives an empty tensor)."""
        wanted = [i for i, s in enumerate(spans) if s]
        out = []
        embeddings = self.head.image_embeddings(batch["sam_pixel_values"][wanted]) if wanted else None
        for i, row_spans in enumerate(spans):
            h, w = batch["orig_sizes"][i].tolist()
            if not row_spans:
                out.append(hidden.new_zeros((0, h, w), dtype=torch.float32))
                continue
            prompts = self.prompts(hidden[i], row_spans)
            out.append(self.head(embeddings[wanted.index(i)], prompts, tuple(batch["sam_sizes"][i].tolist()), (h, w)))
        return out

    def forward(self, batch: dict, weights: tuple[float, float, float] | None = None) -> MirasOutput:
        """Training forward: text CE on supervised tokens, masks for each ``[SEG]``, eq. 8.

        Args:
            batch: from :class:`~prist_builder.model.collator.MirasCollator`.
            weights: ``(w_ce, w_bce, w_dice)``; default the paper's 1.0, 2.0, 0.5.
        """
        hidden = self.hidden_states(batch)
        labels = batch["labels"][:, 1:]
        supervised = labels != -100
        logits = self.base.lm_head(hidden[:, :-1][supervised])
        ce = text_ce(logits, labels[supervised])
        spans = find_spans(batch["input_ids"], self.obj_id, self.seg_id)
        spans = [s[: len(t)] for s, t in zip(spans, batch["target_masks"], strict=True)]
        mask_logits = self.masks(hidden, batch, spans)
        targets = [t.to(m.device) for t, m in zip(batch["target_masks"], mask_logits, strict=True)]
        default = TrainSettings()
        loss = miras_loss(
            ce, mask_logits, targets, weights or (default.ce_weight, default.bce_weight, default.dice_weight)
        )
        return MirasOutput(loss=loss, mask_logits=mask_logits, hidden=hidden)
