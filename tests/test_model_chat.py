"""Chat formatting with tokenizers configured as the llava-hf checkpoints' (issue 21, items 2 and 3).

The tokenizers are built here, no download: a LLaMA/SentencePiece-style BPE (Metaspace, byte
fallback, ``<s>``/``</s>``/``<unk>`` at ids 0-2) trained on a few sentences, with the settings of
``llava-hf/llava-v1.6-vicuna-7b-hf`` (``add_bos_token: true``, ``add_eos_token: false``,
``legacy: false``, added ``<image>`` and ``<pad>``) and of ``llava-hf/llava-v1.6-mistral-7b-hf``
(the same BOS/EOS settings, ``legacy: true``, ``<unk>`` as pad), and their ``chat_template.json``
templates. The reference is the processor's own ``apply_chat_template``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")

from PIL import Image  # noqa: E402

from prist_builder.model.chat import LLAVA_SYSTEM, MISTRAL, VICUNA, ChatFormat, detect_family  # noqa: E402
from prist_builder.model.collator import MirasCollator  # noqa: E402
from prist_builder.model.losses import IGNORE_INDEX  # noqa: E402

WORDS = (
    "A chat between a curious human and an artificial intelligence assistant. The assistant gives helpful, "
    "detailed, and polite answers to the human's questions. USER: ASSISTANT: [INST] [/INST] <<SYS>> <</SYS>> "
    "What is on the table? A red cup near the window. Segment the cup, please. Sure, it is [OBJ]the red cup[SEG]."
)
TURNS = [
    ("user", "What is on the table?"),
    ("assistant", "A red cup near the window."),
    ("user", "Segment the cup, please."),
    ("assistant", "Sure, it is [OBJ]the red cup[SEG]."),
]


def llama_style_tokenizer(legacy: bool, pad: str):
    """A LLaMA-layout tokenizer (ids 0-2 ``<unk> <s> </s>``, 256 byte tokens, BPE) with llava-hf's settings."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaTokenizer

    byte_tokens = [f"<0x{i:02X}>" for i in range(256)]
    raw = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    raw.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first", split=False)
    trainer = trainers.BpeTrainer(
        vocab_size=600, special_tokens=["<unk>", "<s>", "</s>", *byte_tokens], show_progress=False
    )
    raw.train_from_iterator([WORDS] * 3, trainer)
    model = json.loads(raw.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    tokenizer = LlamaTokenizer(
        vocab=model["vocab"], merges=merges, add_bos_token=True, add_eos_token=False, legacy=legacy
    )
    tokenizer.add_tokens(["<image>"], special_tokens=True)
    if pad == "<pad>":
        tokenizer.add_special_tokens({"pad_token": "<pad>"})
    else:
        tokenizer.pad_token = pad
    tokenizer.add_tokens(["[SEG]", "[OBJ]"], special_tokens=True)
    return tokenizer


def llava_processor(template: str, legacy: bool, pad: str):
    from transformers import LlavaNextProcessor
    from transformers.models.llava_next.image_processing_pil_llava_next import LlavaNextImageProcessorPil

    image_processor = LlavaNextImageProcessorPil(
        size={"shortest_edge": 56}, crop_size={"height": 56, "width": 56}, image_grid_pinpoints=[[56, 112], [112, 56]]
    )
    return LlavaNextProcessor(
        image_processor=image_processor,
        tokenizer=llama_style_tokenizer(legacy, pad),
        patch_size=14,
        vision_feature_select_strategy="default",
        image_token="<image>",
        num_additional_image_tokens=1,
        chat_template=template,
    )


def hf_conversation(turns, image, system: str = "") -> list[dict]:
    messages = [{"role": "system", "content": [{"type": "text", "text": system}]}] if system else []
    for index, (role, text) in enumerate(turns):
        parts = [{"type": "image", "image": image}] if index == 0 else []
        messages.append({"role": role, "content": [*parts, {"type": "text", "text": text}]})
    return messages


def reference_ids(processor, turns, image, system: str, generation_prompt: bool) -> list[int]:
    out = processor.apply_chat_template(
        hf_conversation(turns, image, system),
        add_generation_prompt=generation_prompt,
        tokenize=True,
        return_dict=True,
    )
    return list(out["input_ids"][0])


@pytest.fixture(scope="module")
def image() -> Image.Image:
    return Image.fromarray(np.random.default_rng(0).integers(0, 255, (60, 90, 3), dtype=np.uint8))


@pytest.mark.parametrize(
    ("name", "template", "legacy", "pad", "system"),
    [("vicuna", VICUNA, False, "<pad>", LLAVA_SYSTEM), ("mistral", MISTRAL, True, "<unk>", "")],
)
def test_formatted_dialogue_ids_equal_the_processors_chat_template(image, name, template, legacy, pad, system) -> None:
    processor = llava_processor(template, legacy, pad)
    tokenizer = processor.tokenizer
    collator = MirasCollator(processor, 128, 0, 4096)
    assert detect_family(template) == name and collator.chat.system == system
    _, image_ids = collator.images([image])

    prompt = collator.encode(TURNS[:3], image_ids[0], prompt_only=True).ids
    assert prompt == reference_ids(processor, TURNS[:3], image, system, generation_prompt=True)
    assert prompt.count(tokenizer.bos_token_id) == 1 and prompt[0] == tokenizer.bos_token_id

    encoded = collator.encode(TURNS, image_ids[0])
    # vicuna's llava-hf template ends an answer with a space: training appends </s> (LLaVA's format)
    eos = tokenizer.eos_token if name == "vicuna" else ""
    trained = [(role, text + eos if role == "assistant" else text) for role, text in TURNS]
    assert encoded.ids == reference_ids(processor, trained, image, system, generation_prompt=False)
    assert encoded.ids.count(tokenizer.bos_token_id) == 1
    supervised = [t for t, label in zip(encoded.ids, encoded.labels, strict=True) if label != IGNORE_INDEX]
    assert tokenizer.decode(supervised).replace(" ", "") == "".join(
        f"{text}{tokenizer.eos_token}".replace(" ", "") for role, text in TURNS if role == "assistant"
    )
    assert supervised.count(tokenizer.eos_token_id) == 2


def test_the_image_tokens_carry_no_bos_and_the_config_can_name_a_family(image) -> None:
    processor = llava_processor(VICUNA, False, "<pad>")
    collator = MirasCollator(processor, 128, 0, 4096)
    _, image_ids = collator.images([image])
    assert set(image_ids[0]) == {processor.tokenizer.convert_tokens_to_ids("<image>")}
    mistral = ChatFormat(processor.tokenizer, processor.chat_template, template="mistral")
    ids, _ = mistral.encode(TURNS[:1], prompt_only=True)
    assert ids[0] == processor.tokenizer.bos_token_id and "[INST]" in processor.tokenizer.decode(ids)
    assert not mistral.add_eos and collator.chat.add_eos
