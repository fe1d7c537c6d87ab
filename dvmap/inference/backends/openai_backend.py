"""Any OpenAI-compatible endpoint (vLLM's server, an API): concurrent requests, retries with backoff.

Generation uses chat completions. Score mode uses completions with ``echo`` and ``logprobs`` (the log-probabilities
of the prompt's own tokens, which vLLM's server gives and OpenAI's API no longer does): the chat prompt is written
out with the model's chat template from a local tokenizer folder (``source.tokenizer``), each option's reply appended,
and the reply's tokens' log-probabilities summed.
"""

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
        self.spec, self.tokenizer = spec, None
        # the client retries failed requests (connection errors, 429, 5xx) with exponential backoff
        self.client = OpenAI(base_url=spec.url, api_key=key, max_retries=spec.max_retries, timeout=120)

    def close(self) -> None:
        self.client.close()

    def generate(self, conversations: list[list[dict]]) -> list[list[str | None]]:
        with ThreadPoolExecutor(self.spec.concurrency) as pool:
            return list(pool.map(self._one, conversations))

    def score(self, conversations: list[list[dict]], continuations: list[list[str]]
              ) -> list[list[tuple[float, int]] | None]:
        texts = [self._chat_text(c) for c in conversations]
        jobs = [(text, reply) for text, replies in zip(texts, continuations) for reply in replies]
        with ThreadPoolExecutor(self.spec.concurrency) as pool:
            scores = iter(list(pool.map(lambda job: self._echo(*job), jobs)))
        out = []
        for replies in continuations:
            item = [next(scores) for _ in replies]
            out.append(None if any(s is None for s in item) else item)
        return out

    def _chat_text(self, conversation: list[dict]) -> str:
        """The prompt as the model sees it, from the local tokenizer's chat template."""
        if self.tokenizer is None:
            if not self.spec.tokenizer:
                raise DvmapError(f"models.{self.spec.name}.source.tokenizer: score mode on an endpoint needs the "
                                 "model's tokenizer (a local folder with its chat template) to write the prompt")
            from transformers import AutoTokenizer

            try:
                self.tokenizer = AutoTokenizer.from_pretrained(self.spec.tokenizer)
            except OSError as exc:
                raise DvmapError(f"models.{self.spec.name}.source.tokenizer: {self.spec.tokenizer}: not a "
                                 f"tokenizer folder ({exc})") from exc
        return self.tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True,
                                                  **self.spec.chat_template_kwargs)

    def _echo(self, prompt: str, reply: str) -> tuple[float, int] | None:
        """(summed log-probability of ``reply``'s tokens after ``prompt``, their number): the tokens that begin at
        or after the reply's first character, and a token that straddles the boundary (it holds the reply's
        start); None when the request failed after its retries."""
        from openai import BadRequestError, NotFoundError, OpenAIError

        try:
            response = self.client.completions.create(model=self.spec.remote_model, prompt=prompt + reply,
                                                      max_tokens=1, echo=True, logprobs=0, temperature=0.0)
        except (BadRequestError, NotFoundError) as exc:
            raise DvmapError(f"models.{self.spec.name}: {self.spec.url} refused a completions request with echo "
                             f"and logprobs, which score mode needs ({exc})") from exc
        except OpenAIError as exc:
            log.warning("request failed after retries: %s", exc)
            return None
        logprobs = response.choices[0].logprobs if response.choices else None
        if logprobs is None or not logprobs.token_logprobs or not logprobs.text_offset:
            raise DvmapError(f"models.{self.spec.name}: {self.spec.url} returns no log-probabilities of the prompt's "
                             "tokens (completions with echo and logprobs), which score mode needs")
        start, end = len(prompt), len(prompt) + len(reply)
        ends = list(logprobs.text_offset[1:]) + [len(prompt + reply) + 1]
        picked = [lp for offset, stop, lp in zip(logprobs.text_offset, ends, logprobs.token_logprobs)
                  if stop > start and offset < end]
        if not picked or any(lp is None for lp in picked):
            raise DvmapError(f"models.{self.spec.name}: {self.spec.url}: no log-probability for the reply's tokens")
        return float(sum(picked)), len(picked)

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
