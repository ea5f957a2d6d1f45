"""MIRAS configuration: one YAML or TOML file per training stage (paper Table 9).

A config file has three sections, ``model``, ``train`` and ``data``, validated by the
pydantic classes below. Weights come from local Hugging Face folders (``model.weights``);
when a part has no folder it is built with random weights from the architecture keyword
arguments in ``model.shapes`` (the tiny CPU config, and the 7B-shaped benchmark).
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
"""The configs shipped with the package (tiny, stage1, stage2)."""


class ConfigError(ValueError):
    """A config file is unreadable or a field is invalid; the message names the file and field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Weights(_Strict):
    """Local Hugging Face folders of the pretrained parts (``None``: build with random weights).

    Attributes:
        llava: LLaVA-NeXT folder (``llava-hf/llava-v1.6-vicuna-7b-hf`` layout), model and processor.
        sam: SAM folder (``facebook/sam-vit-huge`` layout).
        convnext: ConvNeXt folder (``facebook/convnext-large-*`` layout), the high-resolution encoder.
    """

    llava: str | None = None
    sam: str | None = None
    convnext: str | None = None


class Shapes(_Strict):
    """Architecture keyword arguments for parts built with random weights.

    Attributes:
        llava: kwargs of ``LlavaNextConfig`` (``text_config`` and ``vision_config`` as dicts).
        sam: kwargs of ``SamConfig`` (``vision_config``, ``prompt_encoder_config``, ``mask_decoder_config``).
        convnext: kwargs of ``ConvNextConfig``.
        vocab_words: for a random LLaVA only: size of the byte-level BPE vocabulary trained on
            the training texts (tokens).
    """

    llava: dict[str, Any] = Field(default_factory=dict)
    sam: dict[str, Any] = Field(default_factory=dict)
    convnext: dict[str, Any] = Field(default_factory=dict)
    vocab_words: int = 400


class Lora(_Strict):
    """LoRA on the language model's attention projections (paper appendix C.1: r = 8)."""

    r: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: list[str] = Field(default_factory=lambda: ["q_proj", "v_proj"])


class ModelSettings(_Strict):
    """What to build.

    Attributes:
        weights, shapes: see :class:`Weights`, :class:`Shapes`.
        dual_encoder: fuse ConvNeXt features into the CLIP features (eq. 4); off = plain LLaVA-NeXT.
        region_alignment: pool the ``[OBJ] ... [SEG]`` span (eq. 6); off = the ``[SEG]`` state alone (LISA).
        high_res: side of the square ConvNeXt input (pixels; paper: 768). The SAM input side
            (1024) and prompt width (256) come from the SAM config.
        fusion_heads, alignment_heads: attention heads of the two new modules.
        lora: see :class:`Lora`.
        train_embeddings: train the token embeddings and LM head (new ``[SEG]``/``[OBJ]`` rows), as LISA.
        padding_side: ``right`` for training; generation pads on the left.
        template: conversation format. ``auto``: the chat template the base processor ships
            (llava-hf folders carry one), else ``vicuna``; or a family of the table in
            :mod:`prist_builder.model.chat` (``vicuna``, ``mistral``, ``llama3``).
        system_prompt: system message put before every dialogue; ``None`` = the family's
            default (vicuna: LLaVA's; mistral, llama3: none); ``""`` = none.
        init_from: a ``prist train --out`` folder whose newest checkpoint initialises a *new*
            run (Stage 2 from Stage 1): its processor, trained weights and (random parts) base
            state. Only used when the run's own folder has no checkpoint yet (then it resumes).
        max_length: longest token sequence kept (tokens; image tokens included).
        max_new_tokens: longest generated answer in ``predict`` (tokens).
        gradient_checkpointing: ``auto`` = on for CUDA only.
        attn_implementation: transformers attention backend (``sdpa`` on CUDA and CPU).
    """

    weights: Weights = Field(default_factory=Weights)
    shapes: Shapes = Field(default_factory=Shapes)
    dual_encoder: bool = True
    region_alignment: bool = True
    high_res: int = 768
    fusion_heads: int = 8
    alignment_heads: int = 8
    lora: Lora = Field(default_factory=Lora)
    train_embeddings: bool = True
    padding_side: Literal["left", "right"] = "right"
    template: Literal["auto", "vicuna", "mistral", "llama3"] = "auto"
    system_prompt: str | None = None
    init_from: str | None = None
    max_length: int = 4096
    max_new_tokens: int = 256
    gradient_checkpointing: Literal["auto", "on", "off"] = "auto"
    attn_implementation: str = "sdpa"


class TrainSettings(_Strict):
    """Optimisation (paper Table 9; eq. 8 weights).

    Attributes:
        lr: peak learning rate; betas: AdamW betas; weight_decay: AdamW decay.
        warmup_steps: linear warmup (optimizer steps), then linear decay to 0 at ``max_steps``.
        max_steps: optimizer steps of the stage.
        batch_size: samples per optimizer step over all processes (the global batch of Table 9):
            ``micro_batch x processes x accumulation``; must be a multiple of ``micro_batch``, and
            at launch of ``micro_batch x processes`` (:meth:`accumulation`).
        micro_batch: samples per forward pass on one process (DeepSpeed's
            ``train_micro_batch_size_per_gpu``).
        ce_weight, bce_weight, dice_weight: eq. 8 (paper: 1.0, 2.0, 0.5).
        max_grad_norm: gradient clipping (``0`` = off).
        mixed_precision: ``auto`` = bf16 on CUDA, fp32 elsewhere; or ``no`` / ``bf16`` / ``fp16``.
        save_every: checkpoint interval (optimizer steps); log_every: metrics interval.
        keep_checkpoints: newest checkpoints kept on disk.
        seed: seed of initialisation, data order and dropout.
        num_workers: data loader processes preparing micro-batches (0 = in the training process).
    """

    lr: float = 3e-4
    betas: tuple[float, float] = (0.9, 0.9)
    weight_decay: float = 0.0
    warmup_steps: int = 100
    max_steps: int = 50_000
    batch_size: int = 16
    micro_batch: int = 1
    ce_weight: float = 1.0
    bce_weight: float = 2.0
    dice_weight: float = 0.5
    max_grad_norm: float = 1.0
    mixed_precision: Literal["auto", "no", "bf16", "fp16"] = "auto"
    save_every: int = 1000
    log_every: int = 1
    keep_checkpoints: int = 2
    seed: int = 0
    num_workers: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _divisible(self) -> TrainSettings:
        if self.micro_batch < 1 or self.batch_size % self.micro_batch:
            raise ValueError(
                f"batch_size {self.batch_size} is not a multiple of micro_batch {self.micro_batch} "
                "(batch_size is the global batch: micro_batch x processes x accumulation)"
            )
        return self

    def accumulation(self, processes: int = 1) -> int:
        """Forward passes per optimizer step on each of ``processes`` processes.

        Raises:
            ValueError: ``batch_size`` is not a multiple of ``micro_batch x processes`` (no rounding:
                the global batch stays what the config says).
        """
        per_round = self.micro_batch * processes
        if self.batch_size % per_round:
            raise ValueError(
                f"train.batch_size {self.batch_size} is not a multiple of micro_batch {self.micro_batch} "
                f"x {processes} processes; pick a batch size, micro-batch or process count that divide"
            )
        return self.batch_size // per_round


class Source(_Strict):
    """One training source of the mixture.

    Attributes:
        name: label in logs.
        path: a ``prist export`` folder (``prist convert`` writes one per public dataset), a run
            folder, or a LLaVA-format JSON file; or a list of them, read as one source (sampled
            in proportion to their sizes), e.g. all referring-segmentation folders at ratio 6.
        format: ``export`` (parquet, the export contract), ``run`` (``iter_samples``),
            ``llava`` (JSON list of ``{id, image, conversations}``; text only, no mask), or
            ``auto`` (decided from the path).
        split: split of an export folder.
        ratio: relative share of the mixture (paper stage 1 9:6:2:2, stage 2 4:1).
        image_root: folder the ``image`` fields of a ``llava`` file are relative to.
    """

    name: str
    path: str | list[str]
    format: Literal["auto", "export", "run", "llava"] = "auto"
    split: str = "train"
    ratio: float = Field(default=1.0, gt=0)
    image_root: str | None = None


class DataSettings(_Strict):
    """The training mixture; ``prist train --data DIR`` replaces the first source's path."""

    sources: list[Source] = Field(default_factory=list)


class MirasConfig(_Strict):
    """A whole config file."""

    model: ModelSettings = Field(default_factory=ModelSettings)
    train: TrainSettings = Field(default_factory=TrainSettings)
    data: DataSettings = Field(default_factory=DataSettings)


def load_config(path: Path | str) -> MirasConfig:
    """Read a ``.yaml``/``.yml``/``.toml``/``.json`` config file.

    A bare name (``tiny``, ``stage2``) picks a shipped config from :data:`CONFIG_DIR`.

    Raises:
        ConfigError: missing file, unknown suffix, parse error, or an invalid field (named).
    """
    path = Path(path)
    if not path.exists() and not path.suffix:
        path = CONFIG_DIR / f"{path.name}.yaml"
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix in (".yaml", ".yml"):
            raw = yaml.safe_load(text) or {}
        elif path.suffix == ".toml":
            raw = tomllib.loads(text)
        elif path.suffix == ".json":
            raw = json.loads(text)
        else:
            raise ConfigError(f"{path}: unknown config format (use .yaml, .toml or .json)")
    except (yaml.YAMLError, tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: cannot parse: {exc}") from exc
    try:
        return MirasConfig.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{path}: field {field}: {first['msg']}") from exc
