"""GRPO with the ``distribution`` reward on CPU with the tiny random model (tests/tiny_model.py), as
tests/test_training.py trains with ``binary``: an SFT warm-up teaches the answer format, then two GRPO steps on a
corpus whose items carry answer counts (as items built from archetypes do). The counts reach the reward through the
GRPO dataset and TRL, and each completion is scored with its row's share + 0.1·format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dvmap.answers import parse_answer
from dvmap.corpus.prompts import prompt_corpus
from dvmap.io import read_tsv, write_parquet

from .grpo_recording import recorded_grpo_run
from .items_factory import make_items

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("trl")
pytest.importorskip("datasets")

OPTIONS = ["Yes", "No", "Maybe"]
#: Answer counts per option of a group labelled Yes and of one labelled No: neither is unanimous.
COUNTS = {0: [3, 2, 0], 1: [1, 4, 1]}
#: tests/test_training.py's CPU settings: SFT teaches the tiny model the answer format, GRPO rewards then vary.
TRAINING = {"max_train_items": 8, "eval_items": 4,
            "sft": {"max_steps": 40, "learning_rate": 2e-2, "per_device_train_batch_size": 4, "logging_steps": 4},
            "grpo": {"max_steps": 2, "learning_rate": 1e-3, "max_completion_length": 12, "temperature": 0.5}}


def corpus_items(split: str, incomes: list[str]):
    """One question, profiles varying Gender and Income Bracket, gold alternating Yes/No, with answer counts."""
    rows = [{"question_id": "Q1", "options": OPTIONS, "answer_index": i % 2, "Gender": gender, "Income Bracket": income}
            for i, (gender, income) in enumerate((g, inc) for g in ("Female", "Male") for inc in incomes)]
    items = make_items(rows, split)
    items["counts"] = [COUNTS[g] for g in items["answer_index"]]
    return prompt_corpus(items, "country_only")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("corpus")
    write_parquet(corpus_items("train", ["Low income", "Middle income", "High income", "Top income"]),
                  folder / "train.parquet")
    write_parquet(corpus_items("dev", ["Other income", "No income"]), folder / "dev.parquet")
    return {"train": folder / "train.parquet", "dev": folder / "dev.parquet"}


@pytest.fixture(scope="module")
def grpo_run(corpus, tiny_model_dir, tmp_path_factory):
    """SFT warm-up, then two GRPO steps with reward distribution, make_reward wrapped to record what TRL scored."""
    from dvmap.training.sft import train_sft
    from dvmap.training.spec import train_spec

    folder = tmp_path_factory.mktemp("distribution")
    train_sft(corpus["train"], str(tiny_model_dir), folder / "sft", train_spec(TRAINING, "binary", 0))
    return recorded_grpo_run(corpus["train"], corpus["dev"], str(folder / "sft"), folder,
                             train_spec(TRAINING, "distribution", 0), counts=True)


def test_grpo_trains_with_the_distribution_reward(grpo_run):
    out = grpo_run["dir"]
    assert (out / "config.json").is_file() and list(out.glob("*.safetensors"))
    assert not Path(f"{out}.work").exists()
    log = read_tsv(grpo_run["log"])
    assert log["step"].tolist() == [1, 2], "one row per step"
    assert log["reward_mean"].notna().all() and log["train_accuracy"].notna().all()
    assert log["dev_accuracy"].notna().iloc[-1]
    assert (log["reward_std"] > 0).any(), "GRPO needs reward variance within a group"

    calls = grpo_run["calls"]
    assert calls, "the reward function was never called"
    assert all(c["counts"] == [COUNTS[g] for g in c["answer_index"]] for c in calls), "counts must reach the reward"
    # Each value is the share of the row's respondents who gave the parsed answer + 0.1·format.
    for c in calls:
        for text, value, options, counts in zip(c["texts"], c["values"], c["options"], c["counts"]):
            answer = parse_answer(text, options)
            share = 0.0 if answer is None else counts[options.index(answer)] / sum(counts)
            tagged = "<answer>" in text and answer is not None
            assert value == pytest.approx(share + 0.1 * tagged)
    step1 = [v for c in calls if c["global_step"] == 0 for v in c["values"]]
    assert log.set_index("step").loc[1, "reward_mean"] == pytest.approx(np.mean(step1), rel=1e-5, abs=1e-6)
