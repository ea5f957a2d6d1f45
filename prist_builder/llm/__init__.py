"""LLM execution, shared by every part of prist that calls a model: the OpenAI-compatible
transport (retries, pacing, connection pools), the response cache, the Batch API, prices
and accounting. :class:`~.client.LLMClient` is its interface; :class:`~.settings.LLMSettings`
its configuration. It knows nothing of PRIST's steps: callers bring messages, an answer
model and the task's own rules."""
