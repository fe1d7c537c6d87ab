"""Seeded samples of benchmark items (``dvmap predict --max-items/--sample-unit``)."""

from __future__ import annotations

import pandas as pd
import pytest

from dvmap.corpus.items import sample_items


def table(profiles: int = 30, questions: int = 7) -> pd.DataFrame:
    """Items listed question by question, so that one profile's items are not adjacent."""
    return pd.DataFrame([{"item_id": f"p{p}:q{q}", "profile_id": f"p{p}", "question_id": f"q{q}"}
                         for q in range(questions) for p in range(profiles)])


@pytest.mark.parametrize("unit", ["item", "profile"])
def test_sample_size_order_and_seed(unit):
    items = table()
    sample = sample_items(items, 40, 3, unit)
    assert len(sample) == 40 and sample["item_id"].is_unique
    position = {item: i for i, item in enumerate(items["item_id"])}
    assert [position[i] for i in sample["item_id"]] == sorted(position[i] for i in sample["item_id"]), \
        "the sample keeps the table's order"
    assert sample.equals(sample_items(items, 40, 3, unit))
    assert not sample.equals(sample_items(items, 40, 4, unit))


def test_profile_unit_takes_whole_profiles():
    """Every sampled profile brings all its items, but for the last one, cut at the sample size."""
    items = table()
    sample = sample_items(items, 40, 0, "profile")
    sizes = sample.groupby("profile_id").size()
    assert len(sizes) == 6 and (sizes == 7).sum() == 5 and sorted(sizes)[0] == 5
    assert sample_items(items, 40, 0, "item")["profile_id"].nunique() > 15, "items alone spread over profiles"


def test_no_sample_when_the_table_is_small_enough():
    items = table(3, 2)
    for unit in ("item", "profile"):
        assert sample_items(items, None, 0, unit).equals(items)
        assert sample_items(items, 6, 0, unit).equals(items)
