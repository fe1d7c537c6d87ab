"""Offline generation with vLLM (GPU only; the optional ``vllm`` extra)."""

from __future__ import annotations

from ..errors import DvmapError
from ..models import ModelSpec


class VllmBackend:
    def __init__(self, path: str, spec: ModelSpec):
        try:
            from vllm import LLM, SamplingParams
        except ImportError as exc:
            raise DvmapError(f"models.{spec.name}.backend is vllm, but vLLM is not installed "
                             "(pip install 'dvmap[vllm]' on a machine with a GPU)") from exc
        gen = spec.generation
        self.spec = spec
        self.llm = LLM(model=path, seed=gen.seed)
        self.params = SamplingParams(n=gen.samples, temperature=gen.temperature, max_tokens=gen.max_new_tokens,
                                     seed=gen.seed)

    def generate(self, conversations: list[list[dict]]) -> list[list[str | None]]:
        outputs = self.llm.chat(conversations, self.params, use_tqdm=False,
                                chat_template_kwargs=self.spec.chat_template_kwargs or None)
        return [[o.text for o in out.outputs] for out in outputs]
