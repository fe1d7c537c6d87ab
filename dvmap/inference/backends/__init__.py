"""Backends behind one interface: ``generate(conversations) -> list of outputs per conversation`` and
``score(conversations, continuations) -> per conversation, per continuation (summed log-probability, tokens)``.

An output is a string, or None when the request failed; a conversation's scores are None when its request failed
(the caller records it as failed and retries it on the next run). Heavy libraries are imported only when their
backend is selected.
"""

from __future__ import annotations

from typing import Protocol

from ...errors import DvmapError
from ..models import ModelSpec


class Backend(Protocol):
    def generate(self, conversations: list[list[dict]]) -> list[list[str | None]]:
        """``generation.samples`` outputs for each conversation."""

    def score(self, conversations: list[list[dict]], continuations: list[list[str]]
              ) -> list[list[tuple[float, int]] | None]:
        """For each conversation, each of its continuations as the start of the assistant's reply: the summed
        log-probability of its tokens and their number."""

    def close(self) -> None:
        """Release the model (and any engine processes) before the program exits."""


def load_backend(spec: ModelSpec, model_path: str | None = None, device: str | None = None) -> Backend:
    """The backend of ``spec``; ``model_path`` is the local directory for hf/gguf sources."""
    if spec.backend == "transformers":
        from .transformers_backend import TransformersBackend

        return TransformersBackend(model_path, spec, device=device)
    if spec.backend == "vllm":
        from .vllm_backend import VllmBackend

        return VllmBackend(model_path, spec)
    if spec.backend == "openai":
        from .openai_backend import OpenAIBackend

        return OpenAIBackend(spec)
    raise DvmapError(f"models.{spec.name}.backend: unknown backend {spec.backend!r}")
