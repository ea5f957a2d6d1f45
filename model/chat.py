"""Conversation formatting from the base model's own chat template (paper section 4.1 input format).

A dialogue is rendered with the Jinja chat template of the LLaVA-NeXT processor it is trained
or prompted with (llava-hf folders ship one in ``chat_template.json``), or, when the processor
has none (a random tiny model), with the template of a family from :data:`FAMILIES`. The
rendered text is tokenised once, the way the processor does it: the tokenizer adds BOS only
when the text does not already start with it, so ``<s>`` appears exactly once whatever the
tokenizer's ``add_bos_token``. Labels are found from character offsets: an assistant turn is
the text between the prompt rendered with the generation prompt and the prompt rendered with
that answer, so no per-template arithmetic is needed.

Templates whose assistant turns carry no end-of-sequence token (Vicuna's llava-hf template ends
an answer with a space) get ``</s>`` appended to each answer for training, as LLaVA trained
them; otherwise the model never learns to stop. Prompts for generation are exactly the
template's.
"""

from __future__ import annotations

from dataclasses import dataclass

IMAGE_TOKEN = "<image>"

VICUNA = (
    "{% for message in messages %}{% if message['role'] != 'system' %}{{ message['role'].upper() + ': '}}{% endif %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>\\n' }}{% endfor %}"
    "{% if message['role'] != 'assistant' %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] + ' '}}"
    "{% endfor %}{% else %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{% generation %}{{ content['text'] + ' '}}{% endgeneration %}{% endfor %}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)
"""The chat template of llava-hf/llava-1.5-7b-hf and llava-hf/llava-v1.6-vicuna-7b-hf."""

MISTRAL = (
    "{% for message in messages %}{% if message['role'] == 'system' %}"
    "{{ '<<SYS>>\\n' + message['content'][0]['text'] + '\\n<</SYS>>\\n\\n' }}"
    "{% elif message['role'] == 'user' %}{{ '[INST] ' }}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>\\n' }}{% endfor %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] }}{% endfor %}"
    "{{' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' ' + message['content'][0]['text'] + '</s> '}}"
    "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}"
)
"""The chat template of llava-hf/llava-v1.6-mistral-7b-hf."""

LLAMA3 = (
    "{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'}}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>' }}{% endfor %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{{ '\\n' + content['text'] + '<|eot_id|>' }}{% endfor %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)
"""The chat template of llava-hf/llama3-llava-next-8b-hf (answers end with ``<|eot_id|>``)."""

LLAVA_SYSTEM = (
    "A chat between a curious human and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the human's questions."
)
"""The system prompt LLaVA-v1.5/1.6-vicuna were trained with."""


@dataclass(frozen=True)
class Family:
    """A conversation family: its Jinja template, default system prompt and the marker that detects it."""

    template: str
    system: str
    marker: str


FAMILIES = {
    "vicuna": Family(VICUNA, LLAVA_SYSTEM, "ASSISTANT:"),
    "mistral": Family(MISTRAL, "", "[INST]"),
    "llama3": Family(LLAMA3, "", "<|start_header_id|>"),
}
"""Per-family table used when the processor has no chat template, or when the config names a family."""


def detect_family(template: str) -> str:
    """The family a chat template belongs to (``vicuna`` when none matches): picks the default system prompt."""
    for name in ("llama3", "mistral", "vicuna"):
        if FAMILIES[name].marker in template:
            return name
    return "vicuna"


def to_messages(turns: list[tuple[str, str]], system: str = "") -> list[dict]:
    """HF chat messages (content lists) of a dialogue; the image goes first in the first user message.

    Raises:
        ValueError: roles do not alternate user/assistant starting with the user.
    """
    messages = [{"role": "system", "content": [{"type": "text", "text": system}]}] if system else []
    for index, (role, content) in enumerate(turns):
        expected = "user" if index % 2 == 0 else "assistant"
        if role != expected:
            raise ValueError(f"message {index}: role {role!r}, expected {expected!r}")
        parts = [{"type": "image"}] if index == 0 else []
        messages.append({"role": role, "content": [*parts, {"type": "text", "text": content}]})
    return messages


class ChatFormat:
    """Renders and tokenises dialogues with one chat template.

    Args:
        tokenizer: the (fast) tokenizer of the processor, with ``<image>`` as a special token.
        own_template: the processor's ``chat_template`` (``None`` when it has none).
        template: ``auto`` (the processor's own, else ``vicuna``) or a :data:`FAMILIES` name.
        system_prompt: ``None`` = the family's default; ``""`` = no system message.
    """

    def __init__(
        self, tokenizer, own_template: str | None, template: str = "auto", system_prompt: str | None = None
    ) -> None:
        self.tokenizer = tokenizer
        if template == "auto":
            self.template = own_template or VICUNA
            family = detect_family(self.template)
        else:
            self.template, family = FAMILIES[template].template, template
        self.system = FAMILIES[family].system if system_prompt is None else system_prompt
        self.image_id = tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
        probe = self.render(to_messages([("user", "q"), ("assistant", "PROBE")]))
        eos = tokenizer.eos_token or ""
        self.add_eos = not probe[probe.index("PROBE") + len("PROBE") :].lstrip().startswith(eos) and bool(eos)
        """Append EOS to answers for training (the template ends them without one)."""

    def render(self, messages: list[dict], generation_prompt: bool = False) -> str:
        """The template's text of ``messages`` (no tokenisation)."""
        return self.tokenizer.apply_chat_template(
            messages, chat_template=self.template, tokenize=False, add_generation_prompt=generation_prompt
        )

    def tokenize(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """Ids and character offsets of a rendered text; BOS added unless the text starts with it."""
        bos = self.tokenizer.bos_token
        add = not (bos and text.startswith(bos))
        encoded = self.tokenizer(text, add_special_tokens=add, return_offsets_mapping=True)
        return list(encoded["input_ids"]), [tuple(o) for o in encoded["offset_mapping"]]

    def encode(self, turns: list[tuple[str, str]], prompt_only: bool = False) -> tuple[list[int], list[bool]]:
        """Token ids of a dialogue (one ``<image>`` token, not yet expanded) and which are supervised.

        ``prompt_only``: the text ends with the generation prompt after the last user turn (the
        last turn must then be a user turn), nothing supervised.

        Raises:
            ValueError: roles do not alternate user/assistant starting with the user.
        """
        if self.add_eos and not prompt_only:
            turns = [(r, c + self.tokenizer.eos_token if r == "assistant" else c) for r, c in turns]
        messages = to_messages(turns, self.system)
        if prompt_only:
            ids, _ = self.tokenize(self.render(messages, generation_prompt=True))
            return ids, [False] * len(ids)
        spans = []
        first = 1 if self.system else 0
        for index, (role, content) in enumerate(turns):
            if role != "assistant":
                continue
            cut = first + index
            start = len(self.render(messages[:cut], generation_prompt=True))
            upto = self.render(messages[: cut + 1])
            found = upto.find(content, start)
            end = found + len(content) if found >= 0 else len(upto)
            eos = self.tokenizer.eos_token or ""
            if eos and upto[end:].lstrip(" ").startswith(eos):
                end = upto.index(eos, end) + len(eos)
            spans.append((start, end))
        text = self.render(messages)
        ids, offsets = self.tokenize(text)
        # a token belongs to an answer when it overlaps it and starts inside it (or on blanks just
        # before it: SentencePiece's "▁word" carries the separating space); tokens added by the
        # tokenizer (BOS) have empty offsets
        supervised = [
            end > begin and any(end > s and begin < e and not text[begin:s].strip() for s, e in spans)
            for begin, end in offsets
        ]
        return ids, supervised
