"""Models of a training run: the starting model's tokenizer, resuming from the last complete checkpoint, saving the
final model as a plain HF directory."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from ..errors import DvmapError


def load_tokenizer(model_path: str, padding_side: str = "right"):
    """The tokenizer of the model to start from (pad token = end of sequence where it has none)."""
    from transformers import AutoTokenizer

    if not (Path(model_path) / "config.json").is_file():
        raise DvmapError(f"{model_path}: not a model directory (no config.json)")
    tokenizer = AutoTokenizer.from_pretrained(model_path, padding_side=padding_side)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def last_checkpoint(work: Path) -> str | None:
    """The newest complete ``checkpoint-N`` folder of an interrupted run, if any. Transformers writes
    ``trainer_state.json`` last, so a checkpoint whose saving was interrupted lacks it and is skipped."""
    if not work.is_dir():
        return None
    steps = {int(m.group(1)): p for p in work.iterdir() if (m := re.fullmatch(r"checkpoint-(\d+)", p.name))}
    complete = [step for step, path in steps.items() if (path / "trainer_state.json").is_file()]
    return str(steps[max(complete)]) if complete else None


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
