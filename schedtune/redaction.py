"""Secrets never leave the process: every message written to a log, a report, summary.json or
the terminal goes through `redact`.

Redacted: the values of registered secrets (the LLM's API key, read from its environment
variable), URL credentials (`user:password@`), secret-looking query parameters
(`?password=...`), `Authorization`/`Bearer` values and strings shaped like API keys.
"""

from __future__ import annotations

import logging
import re

MASK = "***"
_SECRETS: set[str] = set()
_PATTERNS = (
    (re.compile(r"(\b[a-z][a-z0-9+.-]*://)[^\s/@]+@", re.I), rf"\1{MASK}@"),
    (
        re.compile(r"([?&;](?:password|passwd|pwd|secret|token|api[_-]?key|key|sslpassword)=)[^&\s;]+", re.I),
        rf"\1{MASK}",
    ),
    (re.compile(r"((?:authorization|api[_-]?key|x-api-key)\s*[:=]\s*)(?:bearer\s+)?[^\s,'\"}]+", re.I), rf"\1{MASK}"),
    (re.compile(r"(\bbearer\s+)[^\s,'\"}]+", re.I), rf"\1{MASK}"),
    # Provider key shapes: OpenAI (sk-, sk-proj-), Anthropic (sk-ant-), Groq (gsk_), xAI,
    # Hugging Face (hf_), Google (AIza).
    (
        re.compile(
            r"\b(?:sk-[A-Za-z0-9_-]{8,}|gsk_[A-Za-z0-9]{8,}|xai-[A-Za-z0-9]{8,}|hf_[A-Za-z0-9]{8,}|AIza[0-9A-Za-z_-]{20,})"
        ),
        MASK,
    ),
)


def register_secret(value: str | None) -> None:
    """Remember a secret's value so that it is masked wherever it appears (4+ characters)."""
    if value and len(value) >= 4:
        _SECRETS.add(value)


def redact(text: str) -> str:
    for secret in sorted(_SECRETS, key=len, reverse=True):
        text = text.replace(secret, MASK)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """A handler filter that redacts each record's message (arguments merged in) and traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def quiet_http_loggers() -> None:
    """httpx and openai log every request URL (credentials included) at INFO."""
    for name in ("httpx", "httpcore", "openai"):
        logging.getLogger(name).setLevel(logging.WARNING)
