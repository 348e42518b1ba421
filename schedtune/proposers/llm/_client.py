"""A chat client for any OpenAI-compatible endpoint, with responses cached by prompt hash.

The API key is read from the environment variable the job names and is never written to
disk, logs or reports. Schema-constrained decoding: llama.cpp's server takes
`{"type": "json_object", "schema": ...}`, OpenAI and vLLM take `{"type": "json_schema", ...}`;
`auto` tries the latter, then the former, then plain JSON mode.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time

from ...redaction import redact, register_secret
from ...store import Cache, cache_key

log = logging.getLogger("schedtune")


@dataclasses.dataclass
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    cached: bool
    response_format: str


class LLMClient:
    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str | None,
        *,
        timeout_s: float = 60.0,
        cache: Cache | None = None,
        response_format: str = "auto",
        max_tokens: int = 600,
    ) -> None:
        import openai

        key = os.environ.get(api_key_env, "") if api_key_env else ""
        register_secret(key)
        self._client = openai.OpenAI(base_url=base_url, api_key=key or "not-needed", timeout=timeout_s, max_retries=0)
        self.base_url = base_url
        self.model = model
        self.cache = cache
        self.response_format = response_format
        self.max_tokens = max_tokens
        self._working_format: str | None = None if response_format == "auto" else response_format

    def _formats(self) -> list[str]:
        if self._working_format:
            return [self._working_format]
        return ["json_schema", "json_object_schema", "json_object"]

    @staticmethod
    def _format_arg(kind: str, schema: dict) -> dict | None:
        if kind == "json_schema":
            return {"type": "json_schema", "json_schema": {"name": "skeletons", "schema": schema, "strict": False}}
        if kind == "json_object_schema":
            return {"type": "json_object", "schema": schema}
        if kind == "json_object":
            return {"type": "json_object"}
        return None

    def complete(self, messages: list[dict], schema: dict, *, seed: int = 0) -> Completion:
        key = cache_key(
            kind="llm",
            base_url=self.base_url,
            model=self.model,
            messages=messages,
            schema=schema,
            seed=seed,
            max_tokens=self.max_tokens,
        )
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                return Completion(**{**hit, "cached": True})
        import openai

        last_error: Exception | None = None
        for kind in self._formats():
            start = time.monotonic()
            try:
                response = self._client.chat.completions.create(
                    model=self.model,
                    messages=messages,
                    temperature=0.2,
                    seed=seed,
                    max_tokens=self.max_tokens,
                    response_format=self._format_arg(kind, schema),
                )
            except (openai.BadRequestError, openai.InternalServerError, openai.UnprocessableEntityError) as exc:
                # This server does not take this response_format: try the next form.
                last_error = exc
                log.info("LLM endpoint rejected response_format %s: %s", kind, redact(str(exc))[:200])
                continue
            self._working_format = kind
            usage = response.usage
            completion = Completion(
                text=response.choices[0].message.content or "",
                prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
                completion_tokens=getattr(usage, "completion_tokens", 0) or 0,
                latency_s=time.monotonic() - start,
                cached=False,
                response_format=kind,
            )
            if self.cache is not None:
                payload = dataclasses.asdict(completion)
                payload.pop("cached")
                self.cache.put(key, "llm", f"{self.model} {kind}", payload)
            return completion
        raise last_error or RuntimeError("no response format accepted by the endpoint")
