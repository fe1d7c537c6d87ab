"""GRPO training with TRL's GRPOTrainer on a prompt corpus; resumable; writes a plain HF model directory and a log.

Intermediate checkpoints go to ``<output>.work/`` (kept when a run is interrupted, so that a rerun resumes from the
last one); the final model is saved to a temporary folder and renamed onto ``<output>`` only when training ends.
Run it under ``accelerate launch`` for several GPUs or DeepSpeed; on one device plain ``python -m dvmap`` works too.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pandas as pd

from .checkpoints import last_checkpoint, load_tokenizer, save_final
from ..errors import DvmapError
from ..io import write_tsv
from ..schema import LOG_COLUMNS
from .rewards import logged_funcs, make_reward
from .curves import CURVE_FILE, curve_items, dev_score_callback
from .datasets import reward_dataset
from .spec import TrainSpec, grpo_config, lora_config

log = logging.getLogger(__name__)


def train_grpo(train: Path, dev: Path | None, model_path: str, output: Path, log_path: Path, spec: TrainSpec) -> None:
    """Train ``model_path`` with GRPO on the ``train`` corpus, score ``dev`` after training, save to ``output``."""
    from trl import GRPOTrainer

    output, work = Path(output), Path(f"{output}.work")
    train_set = reward_dataset(train, spec.max_train_items, spec.data_seed, reward=spec.reward)
    dev_set = (reward_dataset(dev, spec.eval_items, spec.data_seed, reward=spec.reward)
               if dev is not None and spec.eval_items else None)
    os.environ["TENSORBOARD_LOGGING_DIR"] = str(work / "tensorboard")  # kept with the model: see below
    args = grpo_config(spec, str(work))
    tokenizer = load_tokenizer(model_path, padding_side="left")
    rewards = [make_reward(spec.reward, spec.reward_params), *logged_funcs()]  # weights: grpo_config
    callbacks = []
    if spec.curves["every"] and dev is not None:
        callbacks.append(dev_score_callback(curve_items(dev, spec.curves["items"], spec.data_seed), tokenizer,
                                            spec.curves["every"], spec.curves["batch_size"], work, "policy",
                                            spec.chat_template_kwargs))
    trainer = GRPOTrainer(model=model_path, reward_funcs=rewards, args=args, train_dataset=train_set,
                          eval_dataset=dev_set, processing_class=tokenizer, peft_config=lora_config(spec),
                          callbacks=callbacks)
    resume = last_checkpoint(work)
    if resume:
        log.info("resuming from %s", resume)
    trainer.train(resume_from_checkpoint=resume)
    if dev_set is not None:
        trainer.evaluate()
    save_final(trainer, output, spec.lora is not None)
    if trainer.accelerator.is_main_process:
        write_tsv(train_log(trainer.state.log_history), log_path)
        for kept in ("tensorboard", CURVE_FILE):   # the curves' files go with the model
            if (work / kept).exists():
                shutil.move(work / kept, output / kept)
        shutil.rmtree(work, ignore_errors=True)


def train_log(history: list[dict]) -> pd.DataFrame:
    """One row per logged step: reward mean/std, KL, completion length, train/dev accuracy, loss and timing."""
    if not history:
        raise DvmapError("training logged nothing; set training.grpo.logging_steps")
    frame = pd.DataFrame(history)
    frame = frame[[c for c in LOG_COLUMNS if c in frame.columns]].rename(columns=LOG_COLUMNS)
    frame = frame.dropna(how="all", subset=[c for c in frame.columns if c not in ("step", "epoch")])
    return frame.groupby("step", as_index=False, sort=True).first()  # an eval row shares its train row's step
