"""Build the pretrained parts of MIRAS from local folders, or with random weights from shapes.

Real weights: ``model.weights.llava`` (LLaVA-NeXT + its processor), ``.sam``, ``.convnext``,
each a Hugging Face folder. A SAM checkpoint in the original ``sam_vit_h_*.pth`` layout must
first be converted with transformers' script
``python -m transformers.models.sam.convert_sam_to_hf --model_name sam_vit_h_4b8939
--checkpoint_path sam_vit_h_4b8939.pth --pytorch_dump_folder_path SAM_DIR``.

Random weights (tests, the tiny config, the 7B-shaped benchmark): architecture kwargs from
``model.shapes``, and for LLaVA a byte-level BPE tokenizer trained on the given texts.
Nothing is ever downloaded.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from transformers import (
    ConvNextConfig,
    ConvNextModel,
    LlavaNextConfig,
    LlavaNextForConditionalGeneration,
    LlavaNextProcessor,
    PreTrainedTokenizerFast,
    SamConfig,
    SamModel,
)
from transformers.models.llava_next.image_processing_pil_llava_next import LlavaNextImageProcessorPil

from prist_builder.model.config import ModelSettings

IMAGE_TOKEN = "<image>"
SEG_TOKEN = "[SEG]"
"""Its hidden state prompts the mask decoder (section 4.1)."""
OBJ_TOKEN = "[OBJ]"
"""Opens the ``[OBJ] {class} [SEG]`` span that region alignment pools (eq. 6)."""
PAD_TOKEN = "<pad>"
RANDOM_SPECIALS = ["<unk>", "<s>", "</s>", PAD_TOKEN, IMAGE_TOKEN, SEG_TOKEN, OBJ_TOKEN]
"""Special tokens of the tokenizer trained for a random LLaVA."""


@dataclass
class Parts:
    """The pretrained parts, before LoRA and the new modules."""

    llava: LlavaNextForConditionalGeneration
    processor: LlavaNextProcessor
    sam: SamModel
    convnext: ConvNextModel | None


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer with ``vocab_size`` tokens trained on ``texts`` (any text encodes);
    like LLaMA's, it puts ``<s>`` first when special tokens are added."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=RANDOM_SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer)
    bos = tok.token_to_id("<s>")
    tok.post_processor = processors.TemplateProcessing(  # BOS first, as LLaMA tokenizers (add_bos_token)
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token=PAD_TOKEN,
        extra_special_tokens={"image_token": IMAGE_TOKEN},
    )


def add_seg_tokens(processor: LlavaNextProcessor) -> list[str]:
    """Add ``[SEG]`` and ``[OBJ]`` (and a pad token if missing) to the tokenizer; returns the added."""
    tokenizer = processor.tokenizer
    added = [t for t in (SEG_TOKEN, OBJ_TOKEN) if t not in tokenizer.get_vocab()]
    if added:
        tokenizer.add_tokens(added, special_tokens=True)
    if tokenizer.pad_token is None:
        tokenizer.add_special_tokens({"pad_token": PAD_TOKEN})
    return added


def _random_llava(
    settings: ModelSettings, texts: Iterable[str], processor: LlavaNextProcessor | None
) -> tuple[LlavaNextForConditionalGeneration, LlavaNextProcessor]:
    shapes = dict(settings.shapes.llava)
    tokenizer = processor.tokenizer if processor is not None else train_tokenizer(texts, settings.shapes.vocab_words)
    text_shape = dict(shapes.pop("text_config", {}))
    text = {
        **text_shape,
        "vocab_size": max(len(tokenizer), int(text_shape.get("vocab_size", 0))),
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
    }
    vision = {"model_type": "clip_vision_model", **shapes.pop("vision_config", {})}
    text.setdefault("model_type", "llama")
    config = LlavaNextConfig(
        text_config=text, vision_config=vision, image_token_index=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN), **shapes
    )
    config._attn_implementation = settings.attn_implementation
    llava = LlavaNextForConditionalGeneration(config)
    if processor is not None:
        return llava, processor
    side = config.vision_config.image_size
    image_processor = LlavaNextImageProcessorPil(
        size={"shortest_edge": side},
        crop_size={"height": side, "width": side},
        image_grid_pinpoints=config.image_grid_pinpoints,
    )
    processor = LlavaNextProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=config.vision_config.patch_size,
        vision_feature_select_strategy=config.vision_feature_select_strategy,
        image_token=IMAGE_TOKEN,
        num_additional_image_tokens=1,
    )
    return llava, processor


def build_parts(
    settings: ModelSettings,
    texts: Iterable[str] = (),
    dtype: torch.dtype = torch.float32,
    processor: LlavaNextProcessor | None = None,
) -> Parts:
    """Load or randomly build LLaVA-NeXT (+ processor), SAM and (dual encoder on) ConvNeXt.

    Args:
        settings: the ``model`` section of the config.
        texts: training texts, used only to train the tokenizer of a random LLaVA.
        dtype: parameter dtype of the loaded parts.
        processor: a saved processor (a training folder's) to use instead of building one.

    Raises:
        OSError: a weights folder is missing or incomplete (from transformers).
    """
    weights = settings.weights
    attn = settings.attn_implementation
    if weights.llava:
        llava = LlavaNextForConditionalGeneration.from_pretrained(weights.llava, dtype=dtype, attn_implementation=attn)
        processor = processor or LlavaNextProcessor.from_pretrained(weights.llava)
    else:
        llava, processor = _random_llava(settings, texts, processor)
    if weights.sam:
        sam = SamModel.from_pretrained(weights.sam, dtype=dtype)
    else:
        sam = SamModel(SamConfig(**settings.shapes.sam))
    convnext = None
    if settings.dual_encoder:
        if weights.convnext:
            convnext = ConvNextModel.from_pretrained(weights.convnext, dtype=dtype)
        else:
            convnext = ConvNextModel(ConvNextConfig(**settings.shapes.convnext))
    add_seg_tokens(processor)
    if len(processor.tokenizer) > llava.get_input_embeddings().weight.shape[0]:
        llava.resize_token_embeddings(len(processor.tokenizer))
    return Parts(
        llava=llava.to(dtype),
        processor=processor,
        sam=sam.to(dtype),
        convnext=convnext.to(dtype) if convnext is not None else None,
    )
