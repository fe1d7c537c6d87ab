"""A GRPO run for tests with make_reward wrapped to record what TRL scored (step, completions, values, columns)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dvmap.training.rewards import completion_text


def recorded_grpo_run(train: Path, dev: Path, model_dir: str, folder: Path, run_spec, counts: bool = False) -> dict:
    """Train with ``run_spec`` into ``folder``/model; the calls record each completion's text, reward value, options
    and answer_index (and the items' counts with ``counts``)."""
    import dvmap.training.grpo
    from dvmap.training.grpo import train_grpo

    calls = []
    real = dvmap.training.grpo.make_reward

    def recording_make_reward(name, params=None):
        reward = real(name, params)

        def recorded(completions, **kwargs):
            values = reward(completions=completions, **kwargs)
            state = kwargs.get("trainer_state")
            call = {"global_step": None if state is None else state.global_step,
                    "texts": [completion_text(c) for c in completions], "values": list(values),
                    "options": [list(o) for o in kwargs["options"]],
                    "answer_index": [int(i) for i in kwargs["answer_index"]]}
            if counts:
                call["counts"] = [[int(n) for n in c] for c in kwargs["counts"]]
            calls.append(call)
            return values

        recorded.__name__ = reward.__name__
        return recorded

    output, log = folder / "model", folder / "train_log.tsv"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(dvmap.training.grpo, "make_reward", recording_make_reward)
        mp.delenv("TENSORBOARD_LOGGING_DIR", raising=False)  # train_grpo sets it; restored afterwards
        train_grpo(train, dev, model_dir, output, log, run_spec)
    return {"dir": output, "log": log, "calls": calls, "spec": run_spec}
