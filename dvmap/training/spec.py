"""One training run's settings (config key ``training``), checked once, turned into TRL and PEFT config objects."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ..errors import DvmapError
from .rewards import reward_params, reward_weights

#: GRPO settings for a CPU laptop (TRL's GRPOConfig keywords); config ``training.grpo`` overrides any of them.
GRPO_DEFAULTS = {
    "max_steps": 3,
    "num_generations": 4,
    "per_device_train_batch_size": 8,
    "gradient_accumulation_steps": 1,
    "learning_rate": 1.0e-6,
    "beta": 0.001,
    "temperature": 1.0,
    "max_completion_length": 16,
    "logging_steps": 1,
    "save_steps": 1,
    "save_total_limit": 2,
}
#: SFT warm-up settings (TRL's SFTConfig keywords); config ``training.sft`` overrides them.
SFT_DEFAULTS = {"max_steps": 20, "learning_rate": 5.0e-5, "per_device_train_batch_size": 8, "logging_steps": 5}
#: Learning curves (dvmap.training.curves): score the dev sample every ``every`` steps (0: never), ``items`` items,
#: ``batch_size`` at a time.
CURVE_DEFAULTS = {"every": 0, "items": 64, "batch_size": 8}
LORA_DEFAULTS = {"r": 16, "lora_alpha": 32, "lora_dropout": 0.05, "target_modules": "all-linear"}
#: Settings that dvmap owns; TRL must not get them through ``training.grpo`` / ``training.sft``.
RESERVED = ("output_dir", "seed", "data_seed", "report_to", "save_strategy", "use_cpu", "reward_weights", "use_vllm",
            "vllm_mode", "vllm_gpu_memory_utilization", "bf16", "gradient_checkpointing", "chat_template_kwargs",
            "model_init_kwargs", "resume_from_checkpoint")


@dataclass(frozen=True)
class TrainSpec:
    """Everything one `dvmap train` / `dvmap sft` run needs besides its files."""

    reward: str = "binary"
    reward_params: dict = field(default_factory=dict)
    seed: int = 0
    data_seed: int = 0
    max_train_items: int | None = 32
    eval_items: int = 8
    grpo: dict = field(default_factory=dict)
    sft: dict = field(default_factory=dict)
    use_vllm: bool = False
    vllm_mode: str = "colocate"
    vllm_gpu_memory_utilization: float = 0.3
    bf16: bool = False
    gradient_checkpointing: bool = False
    lora: dict | None = None
    chat_template_kwargs: dict = field(default_factory=dict)
    curves: dict = field(default_factory=lambda: dict(CURVE_DEFAULTS))


def train_spec(training: dict, reward: str = "binary", seed: int = 0, chat_template_kwargs: dict | None = None
               ) -> TrainSpec:
    """A TrainSpec from the ``training`` config section for one reward and seed; errors name the key."""
    for section in ("grpo", "sft"):
        clash = sorted(set(training.get(section) or {}) & set(RESERVED))
        if clash:
            raise DvmapError(f"training.{section}: {clash} are set by dvmap (see the README), not here")
    lora = training.get("lora") or {}
    if lora.get("enabled"):
        lora = {**LORA_DEFAULTS, **{k: v for k, v in lora.items() if k != "enabled"}}
    else:
        lora = None
    sft = {k: v for k, v in (training.get("sft") or {}).items() if k != "enabled"}
    default = TrainSpec()
    return TrainSpec(
        reward=reward,
        reward_params=reward_params(reward, (training.get("reward_params") or {}).get(reward)),
        seed=int(seed),
        data_seed=int(training.get("data_seed", default.data_seed)),
        max_train_items=training.get("max_train_items", default.max_train_items),
        eval_items=int(training.get("eval_items", default.eval_items)),
        grpo={**GRPO_DEFAULTS, **(training.get("grpo") or {})},
        sft={**SFT_DEFAULTS, **sft},
        use_vllm=bool(training.get("use_vllm", default.use_vllm)),
        vllm_mode=training.get("vllm_mode", default.vllm_mode),
        vllm_gpu_memory_utilization=float(training.get("vllm_gpu_memory_utilization",
                                                       default.vllm_gpu_memory_utilization)),
        bf16=bool(training.get("bf16", default.bf16)),
        gradient_checkpointing=bool(training.get("gradient_checkpointing", default.gradient_checkpointing)),
        lora=lora,
        chat_template_kwargs=dict(chat_template_kwargs or {}),
        curves=_curves(training.get("curves") or {}),
    )


def _curves(values: dict) -> dict:
    """training.curves over its defaults; an unknown key or a value that is not a whole number >= 0 (>= 1 for items
    and batch_size) is an error naming the key."""
    unknown = sorted(set(values) - set(CURVE_DEFAULTS))
    if unknown:
        raise DvmapError(f"training.curves: unknown key(s) {unknown}; known: {sorted(CURVE_DEFAULTS)}")
    curves = {**CURVE_DEFAULTS, **values}
    for key, value in curves.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < (0 if key == "every" else 1):
            raise DvmapError(f"training.curves.{key}: {value!r} is not a whole number >= {0 if key == 'every' else 1}")
    return curves


def _config(cls, where: str, values: dict):
    """Build a TRL config; an unknown keyword is an error naming the config key."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(k for k in values if k not in known)
    if unknown:
        raise DvmapError(f"training.{where}: unknown key(s) {unknown} for trl.{cls.__name__}")
    return cls(**values)


def grpo_config(spec: TrainSpec, output_dir: str):
    """TRL's GRPOConfig for this run, with the weights of the training reward and the logged ones (dvmap.training.rewards).
    Dev accuracy is evaluated after training; ``training.grpo.eval_strategy`` adds evaluations during it."""
    from trl import GRPOConfig

    values = {
        **spec.grpo,
        **_owned(spec, output_dir),
        "report_to": ["tensorboard"],
        "save_strategy": "steps",
        "reward_weights": reward_weights(spec.reward),
        "use_vllm": spec.use_vllm,
        "vllm_mode": spec.vllm_mode,
        "vllm_gpu_memory_utilization": spec.vllm_gpu_memory_utilization,
        "chat_template_kwargs": spec.chat_template_kwargs or None,
    }
    return _config(GRPOConfig, "grpo", values)


def sft_config(spec: TrainSpec, output_dir: str):
    from trl import SFTConfig

    values = {**spec.sft, **_owned(spec, output_dir), "report_to": [], "save_strategy": "no"}
    return _config(SFTConfig, "sft", values)


def lora_config(spec: TrainSpec):
    """PEFT's LoraConfig when ``training.lora.enabled``; None otherwise."""
    if spec.lora is None:
        return None
    from peft import LoraConfig

    try:
        return LoraConfig(task_type="CAUSAL_LM", **spec.lora)
    except TypeError as exc:
        raise DvmapError(f"training.lora: {exc}") from None


def _owned(spec: TrainSpec, output_dir: str) -> dict:
    """The settings dvmap owns in both TRL configs: folder, seeds (the model's; the data order's is
    training.data_seed), precision (the starting model is loaded in bfloat16 with training.bf16, float32
    otherwise), gradient checkpointing, CPU when there is no GPU."""
    return {"output_dir": output_dir, "seed": spec.seed, "data_seed": spec.data_seed, "bf16": spec.bf16,
            "gradient_checkpointing": spec.gradient_checkpointing, "use_cpu": not _cuda(),
            "model_init_kwargs": {"dtype": "bfloat16" if spec.bf16 else "float32"}}


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()
