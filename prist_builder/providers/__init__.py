"""Providers write step content; the registry maps ``--provider NAME`` to a class."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from prist_builder.errors import FatalError
from prist_builder.providers.base import Provider, StepContext

PROVIDERS: dict[str, str] = {
    "offline": "prist_builder.providers.offline.provider:OfflineProvider",
    "openai": "prist_builder.providers.openai.provider:OpenAIProvider",
}
"""Provider name -> ``module:Class``, imported on demand so the CLI starts fast."""
CONFIGS: dict[str, str] = {
    "offline": "prist_builder.providers.offline.config:OfflineProviderConfig",
    "openai": "prist_builder.providers.openai.config:OpenAIProviderConfig",
}
"""Provider name -> ``module:Class`` of its configuration model."""


def _load(target: str) -> Any:
    module_name, _, class_name = target.partition(":")
    return getattr(__import__(module_name, fromlist=[class_name]), class_name)


def provider_config(name: str) -> type[BaseModel]:
    """The configuration model of provider ``name``.

    Raises:
        ValueError: unknown provider name.
    """
    if name not in CONFIGS:
        raise ValueError(f"unknown provider {name!r}; choose one of {', '.join(sorted(PROVIDERS))}")
    return _load(CONFIGS[name])


def get_provider(name: str, **options: Any) -> Provider:
    """Instantiate the provider called ``name`` with its options.

    Raises:
        ValueError: unknown provider name.
    """
    if name not in PROVIDERS:
        raise ValueError(f"unknown provider {name!r}; choose one of {', '.join(sorted(PROVIDERS))}")
    return _load(PROVIDERS[name])(**options)


__all__ = ["CONFIGS", "PROVIDERS", "FatalError", "Provider", "StepContext", "get_provider", "provider_config"]
