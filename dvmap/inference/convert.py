"""Convert a GGUF model into a plain Hugging Face safetensors directory (transformers dequantises GGUF on load)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from ..errors import DvmapError


def convert_gguf(gguf: Path, output: Path) -> None:
    """Load ``gguf`` with transformers, rebuild it as an ordinary model (a GGUF-loaded one refuses
    ``save_pretrained``) and write model, config and tokenizer into ``output`` atomically."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    except (OSError, ValueError) as exc:
        raise DvmapError(f"{gguf}: cannot load as GGUF ({exc})") from exc
    config = loaded.config
    for attribute in ("quantization_config",):
        if hasattr(config, attribute):
            delattr(config, attribute)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    staging.chmod(0o755)
    try:
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        if output.exists():
            shutil.rmtree(output)
        staging.rename(output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
