"""Optional SFT warm-up (TRL's SFTTrainer): teach the answer format on the corpus answers before GRPO.

Each item becomes a prompt-completion pair whose completion is ``<answer>gold option</answer>``; the loss is on the
completion only. The warmed-up model is saved as a plain HF directory, atomically, and GRPO starts from it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from .checkpoints import load_tokenizer, save_final
from .datasets import sft_dataset
from .spec import TrainSpec, lora_config, sft_config


def train_sft(train: Path, model_path: str, output: Path, spec: TrainSpec) -> pd.DataFrame:
    """Fine-tune ``model_path`` on the corpus answers; save to ``output``; return the logged losses."""
    from trl import SFTTrainer

    output, work = Path(output), Path(f"{output}.work")
    data = sft_dataset(train, spec.max_train_items, spec.data_seed)
    args = sft_config(spec, str(work))
    tokenizer = load_tokenizer(model_path)
    trainer = SFTTrainer(model=model_path, args=args, train_dataset=data, processing_class=tokenizer,
                         peft_config=lora_config(spec))
    trainer.train()
    save_final(trainer, output, spec.lora is not None)
    if trainer.accelerator.is_main_process:
        shutil.rmtree(work, ignore_errors=True)
    return pd.DataFrame([h for h in trainer.state.log_history if "loss" in h])
