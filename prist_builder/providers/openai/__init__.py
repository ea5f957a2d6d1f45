"""The ``openai`` provider: GPT-4o and any OpenAI-compatible server."""
