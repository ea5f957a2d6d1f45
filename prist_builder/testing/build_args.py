"""Command lines for tests and benchmarks: ``prist build`` against a local fake server."""

from __future__ import annotations

from pathlib import Path

TEST_API_KEY = "sk-test"
"""A key the fake server accepts (it checks none)."""


def openai_build_args(
    base_url: str, inputs: Path, run: Path, *extra: object, api_key: str = TEST_API_KEY, step: str = "all"
) -> list[str]:
    """``prist build STEP`` arguments for the openai provider on Labelme ``inputs``.

    Args:
        base_url: the server, e.g. ``FakeOpenAIServer.base_url``.
        inputs: a folder of Labelme files.
        run: the run folder.
        extra: more arguments, made strings (``"--concurrency", 8``).
        api_key: the key sent.
        step: ``all``, ``elements``, ``trees`` or ``dialogues``.
    """
    return [
        "build",
        step,
        "--provider",
        "openai",
        "--base-url",
        base_url,
        "--api-key",
        api_key,
        "--labelme",
        str(inputs),
        "--run",
        str(run),
        *map(str, extra),
    ]
