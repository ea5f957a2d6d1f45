"""Settings of the ``openai`` provider: LLM execution plus how images are sent."""

from __future__ import annotations

from pydantic import Field

from prist_builder.llm.settings import Detail, LLMSettings, flag

DEFAULT_TEMPERATURE = 0.5
"""Sampling temperature the provider sends unless told otherwise. The answers are JSON full
of cross-references (region, element and node ids), where the servers' default of 1.0
breaks more of them; 0.5 still varies the wording between images. Recorded in the run
manifest with the other provider options."""


class OpenAIProviderConfig(LLMSettings):
    """Every option of ``--provider openai`` (see :class:`~prist_builder.llm.settings.LLMSettings`)."""

    temperature: float | None = Field(
        DEFAULT_TEMPERATURE,
        ge=0.0,
        le=2.0,
        description="Sampling temperature.",
        json_schema_extra=flag("--temperature"),
    )
    detail: Detail = Field(
        "high", description="Image detail sent with each image.", json_schema_extra=flag("--detail", identity=True)
    )
    max_side: int | None = Field(
        1024,
        ge=16,
        description="Downscale images to this long side in pixels.",
        json_schema_extra=flag("--max-side", identity=True),
    )
    send_clean_image: bool = Field(
        False,
        description="With marked regions, also send the image without marks (some models do better with both).",
        json_schema_extra=flag("--send-clean-image", identity=True),
    )
