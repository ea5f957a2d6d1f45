"""Token prices of OpenAI chat models and the running cost of a build.

Prices are list prices in USD per one million tokens, as published by OpenAI on
2025-06-01 (standard tier, text and image input billed alike). They change: users
override or extend them with ``--prices prices.json`` (see :func:`load_prices`).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

TOKENS_PER_PRICE_UNIT = 1_000_000
"""Prices are quoted per this many tokens."""

BATCH_DISCOUNT = 0.5
"""Factor applied to the price of requests run through the Batch API (half price)."""

COST_DECIMALS = 6
"""Cost figures in reports are rounded to a millionth of a dollar."""

PRICES_PER_MILLION: dict[str, tuple[float, float]] = {
    # model: (USD per 1M input tokens, USD per 1M output tokens) -- list prices as of 2025-06-01;
    # override them with a JSON file, prices drift.
    "gpt-4o-2024-08-06": (2.50, 10.00),
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
}

_DATE_SUFFIX = re.compile(r"-\d{4}-\d{2}-\d{2}$")


def load_prices(path: Path | None) -> dict[str, tuple[float, float]]:
    """The default price table, updated by the entries of a JSON file.

    The file holds ``{"model": [input USD per 1M tokens, output USD per 1M tokens], ...}``.
    ``path=None`` returns a copy of :data:`PRICES_PER_MILLION`.

    Raises:
        ValueError: the file cannot be read, is not JSON, is not an object, or an entry is
            not a pair of non-negative numbers; the message names the file and the key.
    """
    prices = dict(PRICES_PER_MILLION)
    if path is None:
        return prices
    try:
        data: Any = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot read prices ({exc})") from exc
    if not isinstance(data, dict):
        raise ValueError(f'{path}: expected a JSON object {{"model": [input, output]}}')
    for model, pair in data.items():
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and all(_is_price(p) for p in pair)):
            raise ValueError(
                f"{path}: key {model!r} must be [USD per 1M input tokens, USD per 1M output tokens], got {pair!r}"
            )
        prices[str(model)] = (float(pair[0]), float(pair[1]))
    return prices


def _is_price(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0


def model_prices(model: str, prices: dict[str, tuple[float, float]]) -> tuple[float, float] | None:
    """The (input, output) USD per 1M tokens of ``model``, also trying it without a ``-YYYY-MM-DD`` suffix."""
    if model in prices:
        return prices[model]
    undated = _DATE_SUFFIX.sub("", model)
    return prices.get(undated)


def cost_usd(
    model: str,
    prompt_tokens: int,
    completion_tokens: int,
    prices: dict[str, tuple[float, float]],
    batch: bool = False,
) -> float | None:
    """Cost in USD of one usage; ``None`` when ``model`` has no price.

    ``batch=True`` applies :data:`BATCH_DISCOUNT`. Token counts are as reported by the API
    (prompt tokens include image tokens; cached-input discounts are not modelled).
    """
    pair = model_prices(model, prices)
    if pair is None:
        return None
    input_price, output_price = pair
    cost = (prompt_tokens * input_price + completion_tokens * output_price) / TOKENS_PER_PRICE_UNIT
    return cost * BATCH_DISCOUNT if batch else cost


@dataclass
class Usage:
    """Running totals of one transport (or a whole build).

    Attributes:
        requests: HTTP attempts sent (each retry counts), whether answered or failed.
        cached: chat calls answered from the response cache (no request, no cost).
        prompt_tokens, completion_tokens: tokens reported by the server for answered calls.
        cost_usd: USD for those tokens at the configured prices (unknown models add 0).
        retries: attempts that were repeated after a transient error or a rate limit.
        rate_limited: attempts answered with a 429 rate-limit error.
    """

    requests: int = 0
    cached: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    retries: int = 0
    rate_limited: int = 0

    def add(self, other: Usage) -> None:
        """Add every counter of ``other`` to this one."""
        self.requests += other.requests
        self.cached += other.cached
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.cost_usd += other.cost_usd
        self.retries += other.retries
        self.rate_limited += other.rate_limited

    def as_dict(self) -> dict[str, Any]:
        """The counters as a plain dict (cost rounded to a millionth of a dollar), for manifests."""
        values = asdict(self)
        values["cost_usd"] = round(self.cost_usd, COST_DECIMALS)
        return values
