"""Learning curves during GRPO: a fixed dev sample scored in score mode every N steps (config training.curves).

Score mode needs no generation and never fails to parse, so a curve point costs one forward pass per item and its
accuracy moves only with what the policy prefers. Each point logs the sample's accuracy (argmax of the options'
summed log-probabilities as the direct-style reply) and expected accuracy (mean probability of the gold option) into
the trainer's log history (so into the train log beside reward, KL and completion length), and its per-item
predictions, a prediction table with a ``step`` column, into ``dev_curve.parquet`` beside the checkpoints (then in
the final model's folder): its first and last steps are the base and the trained model on the same items.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..answers import ANSWER_REPLY
from ..corpus.items import sample_items
from ..evaluation.predictions import prediction_table
from ..inference.backends.transformers_backend import score_conversations
from ..inference.predict import option_distribution
from ..io import read_parquet, write_parquet
from ..schema import PROMPTS, read_checked

#: The file of per-item curve predictions, in the work folder during training and in the final model's folder.
CURVE_FILE = "dev_curve.parquet"
#: The train log's columns of a curve point (also keys of the trainer's log history).
CURVE_KEYS = ("dev_score_accuracy", "dev_expected_accuracy")


def curve_items(dev: Path, n: int, seed: int) -> pd.DataFrame:
    """The fixed dev sample of a run: ``n`` items of the dev prompt corpus drawn with the data seed."""
    return sample_items(read_checked(dev, PROMPTS, "train"), n, seed)


class DevScoreCurve:
    """A transformers TrainerCallback (made by :func:`dev_score_callback`) that scores the sample before the first
    step, every ``every`` steps and after the last. Every process scores (a sharded model needs them all); only
    the main one writes."""

    def __init__(self, items: pd.DataFrame, tokenizer, every: int, batch_size: int, work: Path, label: str,
                 chat_template_kwargs: dict | None = None):
        self.items, self.tokenizer, self.every, self.batch_size = items, tokenizer, every, batch_size
        self.path, self.label, self.chat = Path(work) / CURVE_FILE, label, chat_template_kwargs or {}
        self.conversations = [[{"role": m["role"], "content": m["content"]} for m in p] for p in items["prompt"]]
        self.replies = [[ANSWER_REPLY.format(o) for o in options] for options in items["options"]]

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if state.global_step == 0:   # a resumed run has its points up to the checkpoint in the log already
            if args.process_index == 0:
                self.path.unlink(missing_ok=True)   # of an interrupted run that left no checkpoint
            self._point(args, state, model)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step % self.every == 0 or state.global_step >= state.max_steps:
            self._point(args, state, model)

    def _point(self, args, state, model) -> None:
        import torch

        was_training = model.training
        model.eval()
        scores = []
        with torch.inference_mode():
            for begin in range(0, len(self.items), self.batch_size):
                end = begin + self.batch_size
                scores += score_conversations(model, self.tokenizer, self.conversations[begin:end],
                                              self.replies[begin:end], self.chat)
        model.train(was_training)
        probs = [option_distribution(np.array([s for s, _ in item])) for item in scores]
        table = prediction_table(self.items, [int(np.argmax(p)) for p in probs], self.label, "none", None,
                                 option_probs=probs)
        table.insert(0, "step", state.global_step)
        gold = self.items["answer_index"].to_numpy(dtype=int)
        state.log_history.append({
            "step": state.global_step,
            CURVE_KEYS[0]: float(np.mean([np.argmax(p) == g for p, g in zip(probs, gold)])),
            CURVE_KEYS[1]: float(np.mean([p[g] for p, g in zip(probs, gold)])),
        })
        if args.process_index == 0:
            previous = read_parquet(self.path) if self.path.is_file() else None
            if previous is not None:
                table = pd.concat([previous[previous["step"] != state.global_step], table], ignore_index=True)
            write_parquet(table, self.path)


def dev_score_callback(*args, **kwargs):
    """A :class:`DevScoreCurve` that is a transformers TrainerCallback (imported only when training)."""
    from transformers import TrainerCallback

    callback = type("DevScoreCallback", (DevScoreCurve, TrainerCallback), {})
    return callback(*args, **kwargs)
