"""Training datasets from prompt corpora: the columns TRL's trainers and dvmap's rewards read."""

from __future__ import annotations

from pathlib import Path

from ..corpus.items import sample_items
from ..schema import PROMPTS, read_checked
from .rewards import missing_columns_error, reward_columns


def reward_dataset(path: Path, max_items: int | None, seed: int, command: str = "train", reward: str | None = None):
    """A datasets.Dataset of a prompt corpus (checked for ``dvmap command``): prompt (messages), options (list),
    answer_index, frequency, and counts (list of ints) when the corpus has them; a seeded sample of ``max_items``
    items when given. With ``reward``, a corpus without a column that reward needs (``reward_columns``), or with an
    item lacking it, is refused before any training."""
    from datasets import Dataset

    corpus = read_checked(path, PROMPTS, command)
    needed = reward_columns(reward) if reward is not None else ()
    missing = [column for column in needed if column not in corpus.columns]
    if missing:
        raise missing_columns_error(reward, missing, str(path))
    corpus = sample_items(corpus, max_items, seed)
    data = {
        "prompt": [[{"role": m["role"], "content": m["content"]} for m in p] for p in corpus["prompt"]],
        "options": [[str(o) for o in opts] for opts in corpus["options"]],
        "answer_index": corpus["answer_index"].astype(int).tolist(),
        "frequency": corpus["frequency"].astype(float).tolist(),
    }
    if "counts" in corpus.columns:  # answer counts per option, of items built from archetypes (reward distribution)
        data["counts"] = [None if c is None or isinstance(c, float) else [int(n) for n in c] for c in corpus["counts"]]
        absent = [row for row, c in enumerate(data["counts"]) if c is None]
        if absent and "counts" in needed:
            raise missing_columns_error(reward, ["counts"], f"{path}: {len(absent)} of the {len(corpus)} items "
                                        f"drawn (e.g. {corpus['item_id'].iloc[absent[0]]})")
    return Dataset.from_dict(data)


def sft_dataset(path: Path, max_items: int | None, seed: int):
    """The corpus as conversational prompt-completion pairs with the gold answer in the answer tag."""
    data = reward_dataset(path, max_items, seed, "sft")

    def pair(row):
        gold = row["options"][row["answer_index"]]
        return {"completion": [{"role": "assistant", "content": f"<answer>{gold}</answer>"}]}

    return data.map(pair).select_columns(["prompt", "completion"])
