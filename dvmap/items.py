"""The item table shared by corpus splits and benchmark splits: one row per (profile, question) with its label."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from . import ATTRIBUTES
from .catalog import Question
from .io import to_frame

#: Columns every item table has, in order, after the profile attributes.
ITEM_COLUMNS = ("item_id", "profile_id", "question_id", "category", "question", "options", "answer", "answer_index",
                "n", "entropy", "frequency", "split", "data_source")


def items_from_archetypes(table: pa.Table | pd.DataFrame, catalog: dict[str, Question], split: str,
                          data_source: str) -> pd.DataFrame:
    """Turn archetype rows into items labelled with their modal answer (frequency is added per split later)."""
    frame = to_frame(table)
    questions = frame["question_id"].map(catalog.__getitem__)
    frame["item_id"] = frame["profile_id"] + ":" + frame["question_id"]
    frame["category"] = [q.section for q in questions]
    frame["question"] = [q.text for q in questions]
    frame["options"] = [list(q.options) for q in questions]
    frame["answer_index"] = [q.option_index(a) for q, a in zip(questions, frame["answer"])]
    frame["split"] = split
    frame["data_source"] = data_source
    frame["frequency"] = 0.0
    return order_items(add_frequency(frame))


def attribute_columns(frame: pd.DataFrame) -> list[str]:
    """Profile attribute columns of an item table: DVMap's, in DVMap's order, then any custom ones."""
    known = [a for a in ATTRIBUTES if a in frame.columns]
    other = set(ITEM_COLUMNS) | set(EXTRA_COLUMNS) | set(PROMPT_COLUMNS) | set(PREDICTION_COLUMNS)
    extra = [c for c in frame.columns if c not in known and c not in other]
    return known + extra


#: Optional columns an item table may carry: counts from archetypes, DVMap's own prompt from an imported release,
#: the original of a counterfactually flipped item.
EXTRA_COLUMNS = ("counts", "answer_share", "release_prompt", "source_item_id")
#: Columns a prompt corpus adds.
PROMPT_COLUMNS = ("prompt", "style")
#: Columns a prediction table adds (see dvmap.predictions).
PREDICTION_COLUMNS = ("predictor", "model", "threshold", "seed", "prediction", "prediction_index", "raw_output",
                      "fallback")


def order_items(frame: pd.DataFrame, sort_rows: bool = True) -> pd.DataFrame:
    """Put columns in the canonical order and, unless told not to, rows in (question, profile) order."""
    columns = ["item_id", "profile_id", *attribute_columns(frame), *ITEM_COLUMNS[2:]]
    columns += [c for c in EXTRA_COLUMNS if c in frame.columns]
    frame = frame[columns]
    if sort_rows:
        frame = frame.sort_values(["question_id", "profile_id"], kind="stable")
    return frame.reset_index(drop=True)


def add_frequency(frame: pd.DataFrame) -> pd.DataFrame:
    """DVMap's frequency: the share of profiles in the same split, country and question giving this answer."""
    keys = ["split", "Country", "question_id"]
    same_answer = frame.groupby(keys + ["answer"], sort=False)["profile_id"].transform("size")
    same_question = frame.groupby(keys, sort=False)["profile_id"].transform("size")
    frame = frame.copy()
    frame["frequency"] = (same_answer / same_question).astype(float)
    return frame


def sample_items(items: pd.DataFrame, max_items: int | None, seed: int) -> pd.DataFrame:
    """At most ``max_items`` items, a seeded sample kept in the table's order (all items when None)."""
    if max_items is None or len(items) <= max_items:
        return items.reset_index(drop=True)
    keep = np.sort(np.random.default_rng(seed).choice(len(items), size=max_items, replace=False))
    return items.iloc[keep].reset_index(drop=True)
