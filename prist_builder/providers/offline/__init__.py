"""The embedded ``offline`` provider (no model, no network)."""
