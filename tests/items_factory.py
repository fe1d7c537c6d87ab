"""Hand-built item tables (dvmap's item schema) for tests of baselines and metrics."""

from __future__ import annotations

import pandas as pd

from dvmap import ATTRIBUTES
from dvmap.survey.archetypes import profile_ids
from dvmap.corpus.items import order_items

BASE_PROFILE = {"Country": "Xland", "Gender": "Female", "Marital Status": "Married",
                "Has Children": "has at least one child", "Education Level": "Tertiary", "Occupation": "Employed",
                "Work Nature": "Private business", "Religion": "None", "Life Stage": "Adulthood",
                "Income Bracket": "Middle income", "Common Language": "English"}


def make_items(rows: list[dict], split: str, country: str = "Xland", n: float = 1.0) -> pd.DataFrame:
    """rows: dicts with question_id, options, answer_index (default 0), category (default VALUES) and attribute
    overrides; attributes not given come from BASE_PROFILE with ``country``."""
    base = {**BASE_PROFILE, "Country": country}
    frame = pd.DataFrame([{**base, **{k: v for k, v in r.items() if k in ATTRIBUTES}} for r in rows])
    frame["profile_id"] = profile_ids(frame[list(ATTRIBUTES)]).to_pylist()
    frame["question_id"] = [r["question_id"] for r in rows]
    frame["item_id"] = frame["profile_id"] + ":" + frame["question_id"]
    frame["category"] = [r.get("category", "VALUES") for r in rows]
    frame["question"] = [f"Question {q}?" for q in frame["question_id"]]
    frame["options"] = [list(r["options"]) for r in rows]
    frame["answer_index"] = [r.get("answer_index", 0) for r in rows]
    frame["answer"] = [o[i] for o, i in zip(frame["options"], frame["answer_index"])]
    frame["n"] = n
    frame["entropy"] = 0.0
    frame["frequency"] = 1.0
    frame["split"] = split
    frame["data_source"] = "test"
    assert frame["item_id"].is_unique, "test items have a duplicate (profile, question)"
    return order_items(frame, sort_rows=False)
