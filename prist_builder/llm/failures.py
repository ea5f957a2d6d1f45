"""How LLM execution fails for good: typed errors, with one-line, key-free messages."""

from __future__ import annotations

import openai

from prist_builder.errors import FatalError
from prist_builder.llm import retry

UNAUTHORIZED_STATUS = 401
FORBIDDEN_STATUS = 403


class TransportGaveUp(RuntimeError):
    """Retries ran out (attempts or total wait) on rate limits or transient failures.

    Attributes:
        malformed: the last failure was a malformed answer (not a network or server fault).
    """

    def __init__(self, message: str, malformed: bool = False) -> None:
        super().__init__(message)
        self.malformed = malformed


class RequestRejected(FatalError):
    """The server refused one request for good (400/404/422...): ``status`` and ``code`` tell why.

    A subclass of :class:`FatalError`, so by default it stops the run; a provider
    that knows a rejection is specific to one input (say an image the API refuses) may
    catch it and reject just that input.
    """

    def __init__(self, message: str, status: int, code: str | None) -> None:
        super().__init__(message)
        self.status, self.code = status, code


def fatal_error(exc: openai.APIStatusError, server: str, secrets: list[str]) -> FatalError:
    """The error for a response that retrying cannot fix: no quota, a refused key or access
    (:class:`FatalError`), or a refused request (:class:`RequestRejected`). ``server`` names
    the server in the message; ``secrets`` are masked out of it."""
    status, code = exc.status_code, retry.error_code(exc)
    label = f"{status} {code}" if code else str(status)
    if status == retry.RATE_LIMIT_STATUS:
        return FatalError(f"the account has no quota left ({label})")
    if status == UNAUTHORIZED_STATUS:
        return FatalError(retry.scrub(f"{server} rejected the API key ({label})", secrets))
    if status == FORBIDDEN_STATUS:
        return FatalError(retry.scrub(f"{server} denied access ({label}): {retry.server_message(exc)}", secrets))
    message = retry.scrub(f"{server} rejected the request ({label}): {retry.server_message(exc)}", secrets)
    return RequestRejected(message, status, code)
