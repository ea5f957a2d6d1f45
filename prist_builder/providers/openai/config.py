"""Settings of the ``openai`` provider: LLM execution plus how images are sent."""

from __future__ import annotations

from pydantic import Field

from prist_builder.llm.images import Detail
from prist_builder.llm.settings import LLMSettings, flag


class OpenAIProviderConfig(LLMSettings):
    """Every option of ``--provider openai`` (see :class:`~prist_builder.llm.settings.LLMSettings`)."""

    detail: Detail = Field(
        "high", description="Image detail sent with each image.", json_schema_extra=flag("--detail", identity=True)
    )
    max_side: int | None = Field(
        1024,
        ge=16,
        description="Downscale images to this long side in pixels.",
        json_schema_extra=flag("--max-side", identity=True),
    )
