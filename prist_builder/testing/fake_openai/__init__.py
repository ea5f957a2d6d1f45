"""A stdlib-only fake of the OpenAI HTTP API for tests and throughput benchmarks.

It serves chat completions (with scriptable faults), files and the Batch API on
127.0.0.1, so the real `openai` client can be pointed at it through `base_url`.

    with FakeOpenAIServer(latency_s=0.05) as server:
        server.add_fault(FaultRule("rate_limit", match="item-7"))
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
"""

from prist_builder.testing.fake_openai.batches import FakeBatchLimits
from prist_builder.testing.fake_openai.chat import Responder, default_responder
from prist_builder.testing.fake_openai.faults import BatchFaultRule, FaultRule
from prist_builder.testing.fake_openai.limits import EnforcedLimit
from prist_builder.testing.fake_openai.schema_instance import minimal_instance
from prist_builder.testing.fake_openai.server import FakeOpenAIServer

__all__ = [
    "BatchFaultRule",
    "EnforcedLimit",
    "FakeBatchLimits",
    "FakeOpenAIServer",
    "FaultRule",
    "Responder",
    "default_responder",
    "minimal_instance",
]
