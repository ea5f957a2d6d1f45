"""Errors that cross layers: the run cannot go on, or an input cannot finish now.

Lowest layer: anything may import it; it imports nothing of the project.
"""

from __future__ import annotations


class FatalError(RuntimeError):
    """The work cannot go on at all (a bad API key, no quota, a dead worker process): the
    command stops cleanly, keeping what it finished. The message is one line, key-free."""


class Deferred(Exception):
    """The input cannot finish now (a batch answer not in yet, a server that kept failing):
    it is not journalled, so the next run of the same command does it.

    Attributes:
        reason: why, in one line.
        quiet: an expected wait (a batch answer not in yet) rather than a failure worth
            telling the user about as it happens.
    """

    def __init__(self, reason: str, quiet: bool = False) -> None:
        super().__init__(reason)
        self.reason, self.quiet = reason, quiet
