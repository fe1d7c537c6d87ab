"""Training datasets from prompt corpora: the columns TRL's trainers and dvmap's rewards read."""

from __future__ import annotations

from pathlib import Path

from ..corpus.items import sample_items
from ..schema import PROMPTS, read_checked


def reward_dataset(path: Path, max_items: int | None, seed: int, command: str = "train"):
    """A datasets.Dataset of a prompt corpus (checked for ``dvmap command``): prompt (messages), options (list),
    answer_index, frequency; a seeded sample of ``max_items`` items when given."""
    from datasets import Dataset

    corpus = sample_items(read_checked(path, PROMPTS, command), max_items, seed)
    return Dataset.from_dict({
        "prompt": [[{"role": m["role"], "content": m["content"]} for m in p] for p in corpus["prompt"]],
        "options": [[str(o) for o in opts] for opts in corpus["options"]],
        "answer_index": corpus["answer_index"].astype(int).tolist(),
        "frequency": corpus["frequency"].astype(float).tolist(),
    })


def sft_dataset(path: Path, max_items: int | None, seed: int):
    """The corpus as conversational prompt-completion pairs with the gold answer in the answer tag."""
    data = reward_dataset(path, max_items, seed, "sft")

    def pair(row):
        gold = row["options"][row["answer_index"]]
        return {"completion": [{"role": "assistant", "content": f"<answer>{gold}</answer>"}]}

    return data.map(pair).select_columns(["prompt", "completion"])
