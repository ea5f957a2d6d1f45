"""Settings of the ``offline`` provider: none today (it is deterministic from the run seed)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class OfflineProviderConfig(BaseModel):
    """The offline provider takes no options; any given is an error naming it."""

    model_config = ConfigDict(extra="forbid")
