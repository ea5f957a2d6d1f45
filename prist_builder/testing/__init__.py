"""Test helpers: a local fake of the OpenAI HTTP API (see `fake_openai`)."""

from prist_builder.testing.fake_openai import BatchFaultRule, EnforcedLimit, FakeOpenAIServer, FaultRule

__all__ = ["BatchFaultRule", "EnforcedLimit", "FakeOpenAIServer", "FaultRule"]
