"""The one error base class: everything schedtune raises on purpose derives from it.

The CLI catches `SchedtuneError` once and prints its first line; a subclass decides the exit
code (`ConfigError`: 2, bad input before any work; anything else: 1).
"""

from __future__ import annotations


class SchedtuneError(Exception):
    """A failure schedtune explains in one line (no traceback for the user)."""

    exit_code = 1


class ConfigError(SchedtuneError):
    """A problem in the job config: one line, naming the key."""

    exit_code = 2


class ToolError(SchedtuneError):
    """An IREE tool is missing, failed where it must not, or its output could not be read."""


class FrontendError(SchedtuneError):
    """Importing the model (torch, onnx) failed."""


class SpaceError(SchedtuneError):
    """A space file that does not describe a valid space."""


def last_line(text: str) -> str:
    """A failed tool's last non-empty output line (300 characters at most): its error, in one line."""
    lines = [line for line in (text or "").splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no message"
