"""Training datasets from prompt corpora: the columns TRL's trainers and dvmap's rewards read."""

from __future__ import annotations

from pathlib import Path

from ..errors import DvmapError
from ..io import read_parquet
from ..corpus.items import sample_items

#: Dataset columns the rewards read, besides the conversational ``prompt``.
REWARD_COLUMNS = ("options", "answer_index", "frequency")


def reward_dataset(path: Path, max_items: int | None, seed: int):
    """A datasets.Dataset of a prompt corpus: prompt (messages), options (list), answer_index, frequency;
    a seeded sample of ``max_items`` items when given."""
    from datasets import Dataset

    corpus = read_parquet(path)
    missing = [c for c in ("prompt", *REWARD_COLUMNS) if c not in corpus.columns]
    if missing:
        raise DvmapError(f"{path}: missing column(s) {missing}; expected a prompt corpus from `dvmap prompts`")
    if corpus.empty:
        raise DvmapError(f"{path}: no items to train on")
    corpus = sample_items(corpus, max_items, seed)
    return Dataset.from_dict({
        "prompt": [[{"role": m["role"], "content": m["content"]} for m in p] for p in corpus["prompt"]],
        "options": [[str(o) for o in opts] for opts in corpus["options"]],
        "answer_index": corpus["answer_index"].astype(int).tolist(),
        "frequency": corpus["frequency"].astype(float).tolist(),
    })


def sft_dataset(path: Path, max_items: int | None, seed: int):
    """The corpus as conversational prompt-completion pairs with the gold answer in the answer tag."""
    data = reward_dataset(path, max_items, seed)

    def pair(row):
        gold = row["options"][row["answer_index"]]
        return {"completion": [{"role": "assistant", "content": f"<answer>{gold}</answer>"}]}

    return data.map(pair).select_columns(["prompt", "completion"])
