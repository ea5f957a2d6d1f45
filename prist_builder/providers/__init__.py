"""Providers write step content; the registry maps ``--provider NAME`` to a class."""

from __future__ import annotations

from typing import Any

from prist_builder.providers.base import FatalProviderError, Provider, StepContext

PROVIDERS: dict[str, str] = {
    "offline": "prist_builder.providers.offline.provider:OfflineProvider",
    "openai": "prist_builder.providers.openai.provider:OpenAIProvider",
}
"""Provider name -> ``module:Class``, imported on demand so the CLI starts fast."""


def get_provider(name: str, **options: Any) -> Provider:
    """Instantiate the provider called ``name`` with its options.

    Raises:
        ValueError: unknown provider name.
    """
    if name not in PROVIDERS:
        raise ValueError(f"unknown provider {name!r}; choose one of {', '.join(sorted(PROVIDERS))}")
    module_name, _, class_name = PROVIDERS[name].partition(":")
    module = __import__(module_name, fromlist=[class_name])
    return getattr(module, class_name)(**options)


__all__ = ["PROVIDERS", "FatalProviderError", "Provider", "StepContext", "get_provider"]
