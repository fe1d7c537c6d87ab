"""Any OpenAI-compatible chat endpoint (vLLM's server, an API): concurrent requests, retries with backoff."""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor

from ...errors import DvmapError
from ..models import ModelSpec

log = logging.getLogger(__name__)


class OpenAIBackend:
    def __init__(self, spec: ModelSpec):
        from openai import OpenAI

        key = os.environ.get(spec.api_key_env, "") if spec.api_key_env else "none"
        if spec.api_key_env and not key:
            raise DvmapError(f"models.{spec.name}.source.api_key_env: environment variable {spec.api_key_env} is "
                             "not set")
        self.spec = spec
        # the client retries failed requests (connection errors, 429, 5xx) with exponential backoff
        self.client = OpenAI(base_url=spec.url, api_key=key, max_retries=spec.max_retries, timeout=120)

    def generate(self, conversations: list[list[dict]]) -> list[list[str | None]]:
        with ThreadPoolExecutor(self.spec.concurrency) as pool:
            return list(pool.map(self._one, conversations))

    def _one(self, conversation: list[dict]) -> list[str | None]:
        from openai import OpenAIError

        gen = self.spec.generation
        extra = {"chat_template_kwargs": self.spec.chat_template_kwargs} if self.spec.chat_template_kwargs else None
        try:
            response = self.client.chat.completions.create(
                model=self.spec.remote_model, messages=conversation, n=gen.samples, temperature=gen.temperature,
                max_tokens=gen.max_new_tokens, seed=gen.seed, extra_body=extra)
        except OpenAIError as exc:
            log.warning("request failed after retries: %s", exc)
            return [None] * gen.samples
        return [choice.message.content or "" for choice in response.choices]
