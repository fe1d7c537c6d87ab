"""Checkpoints of a training run: resume from the last one, save the final model as a plain HF directory."""

from __future__ import annotations

import shutil
from pathlib import Path


def last_checkpoint(work: Path) -> str | None:
    """The newest ``checkpoint-N`` folder of an interrupted run, if any."""
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(work)) if work.is_dir() else None


def save_final(trainer, output: Path, merge_lora: bool) -> None:
    """Save the trained model as a plain HF directory (LoRA adapters merged in), atomically."""
    tmp = output.with_name(f".{output.name}.tmp")
    trainer.accelerator.wait_for_everyone()
    if merge_lora:
        model = trainer.accelerator.unwrap_model(trainer.model)
        if trainer.accelerator.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
            model.merge_and_unload().save_pretrained(tmp, safe_serialization=True)
    else:
        trainer.save_model(str(tmp))  # gathers ZeRO-3 shards on the main process
    if trainer.accelerator.is_main_process:
        trainer.processing_class.save_pretrained(tmp)
        shutil.rmtree(output, ignore_errors=True)
        tmp.rename(output)
    trainer.accelerator.wait_for_everyone()
