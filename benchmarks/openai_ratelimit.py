"""How much of a server's rate limit ``prist build all --provider openai`` really uses.

The fake server (another process, 200 ms latency, ``prist_responder``) enforces 60,000
tokens and 500 requests per sliding minute, counted by one of two rules: ``billed``
(``total_tokens`` of each answer) or ``admission`` (OpenAI's: ``max(max_tokens, prompt
estimate)`` when the request arrives), answers 429 past the budget and sends
``x-ratelimit-*`` headers on every answer. The build runs as a real CLI process with
``--tpm 60000 --rpm 500`` for the measured duration (then it is interrupted). Utilisation
is the tokens the server counted, by its own rule, over the first ``D`` seconds after its
first request, divided by the budget for ``D`` seconds (the baseline); the target is
>= 0.9 with under 1% of answers refused (429).

Environment: ``PRIST_BENCH_RATE_S`` (measured seconds per rule, default 90).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from openai_build import ServerProcess, build_args

from prist_builder.testing.synthetic import write_synthetic

TITLE = "Rate limit use: prist build all --tpm 60000 --rpm 500 vs a server enforcing it (sliding 60 s)"

TPM = 60_000
RPM = 500
LATENCY_S = 0.2
DURATION_S = 90.0
STARTUP_S = 6.0
"""Seconds allowed for the CLI to start before its first request (imports, inputs)."""
IMAGES = 400
"""More inputs than the budget lets through in the measured time."""
TARGET_UTILISATION = 0.9
MAX_REFUSED = 0.01
SECONDS_PER_MINUTE = 60.0


def _window(entries: list[tuple[float, int]], start: float, duration_s: float) -> int:
    return sum(tokens for stamp, tokens in entries if start <= stamp < start + duration_s)


def measure(rule: str, inputs: Path, work: Path, duration_s: float) -> dict[str, str]:
    """One row: the build against a server enforcing ``rule`` for ``duration_s`` seconds."""
    limit = {"tpm": TPM, "rpm": RPM, "rule": rule}
    server = ServerProcess(LATENCY_S, limit)
    base_url = server.__enter__()
    try:
        args = build_args(base_url, inputs, work / f"run-{rule}", work / f"cache-{rule}", 8)
        command = [sys.executable, "-m", "prist_builder", *args, "--tpm", str(TPM), "--rpm", str(RPM)]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(STARTUP_S + duration_s + LATENCY_S)
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    finally:
        stats = server.stop()
    assert stats is not None
    counted, billed = stats["counted"], stats["billed"]
    start = min(stamp for stamp, _ in counted) if counted else 0.0
    measured = duration_s
    used = _window(counted, start, measured)
    utilisation = used / (TPM * measured / SECONDS_PER_MINUTE)
    answers = stats["admitted"] + stats["refused"]
    refused = stats["refused"] / answers if answers else 0.0
    ok = utilisation >= TARGET_UTILISATION and refused < MAX_REFUSED
    return {
        "server rule": rule,
        "seconds": f"{measured:.0f}",
        "requests": str(answers),
        "429 share": f"{100 * refused:.2f}%",
        "counted tokens/min": f"{used * SECONDS_PER_MINUTE / measured:.0f}",
        "billed tokens/min": f"{_window(billed, start, measured) * SECONDS_PER_MINUTE / measured:.0f}",
        "budget tokens/min": str(TPM),
        "utilisation": f"{utilisation:.3f}",
        "target": f">= {TARGET_UTILISATION}, < 1% 429" + (" ok" if ok else " MISSED"),
    }


def run() -> list[dict[str, str]]:
    """One row per counting rule."""
    duration_s = float(os.environ.get("PRIST_BENCH_RATE_S", DURATION_S))
    with tempfile.TemporaryDirectory(prefix="prist-bench-rate-") as tmp:
        work = Path(tmp)
        inputs = work / "inputs"
        write_synthetic(inputs, IMAGES, seed=11)
        return [measure(rule, inputs, work, duration_s) for rule in ("billed", "admission")]
