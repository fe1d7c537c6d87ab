"""The compact reader of large artifacts (prediction tables at benchmark scale): the same values as a plain read,
labels as categoricals, and one shared tuple per distinct list."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from dvmap import io
from dvmap.io import read_compact, read_parquet, shared_lists, write_parquet

LISTS = [["a", "b"], ["a", "b"], ["a"], ["a", "b", ""], [], ["b", "a"], ["a", "b"], None, ["a", None],
         ["a\x1fb"], ["a", "\x1fb"], ["a\x1f", "b"], [], ["a", None]]


def plain(values):
    return [None if v is None else tuple(v) for v in values]


def test_shared_lists_keep_every_list_and_share_equal_ones():
    shared = shared_lists(pa.chunked_array([pa.array(LISTS[:5], pa.list_(pa.string())),
                                            pa.array(LISTS[5:], pa.list_(pa.string()))]))
    assert shared.tolist() == plain(LISTS)
    for i, a in enumerate(LISTS):
        for j, b in enumerate(LISTS):
            if a is not None and b is not None:
                assert (shared[i] is shared[j]) == (a == b), (a, b)


def test_a_hash_collision_falls_back_to_the_exact_grouping(monkeypatch):
    """Rows whose hashes collide (here every row, with a factorize that puts them all in one group) are told apart
    by the exact comparison."""
    monkeypatch.setattr(io.pd, "factorize", lambda key: (np.zeros(len(key), dtype=np.intp), None))
    shared = shared_lists(pa.array(LISTS, pa.list_(pa.string())))
    assert shared.tolist() == plain(LISTS)
    assert shared[0] is shared[1] and shared[0] is not shared[5]


def test_read_compact_matches_a_plain_read(tmp_path):
    frame = pd.DataFrame({"item_id": [f"p{i}:Q1" for i in range(len(LISTS))],
                          "label": ["x", "y"] * (len(LISTS) // 2), "options": LISTS,
                          "count": range(len(LISTS)), "note": [None, "n"] * (len(LISTS) // 2)})
    write_parquet(frame, tmp_path / "t.parquet")
    compact = read_compact(tmp_path / "t.parquet", plain=("item_id",))
    full = read_parquet(tmp_path / "t.parquet")
    assert isinstance(compact["label"].dtype, pd.CategoricalDtype)
    assert not isinstance(compact["item_id"].dtype, pd.CategoricalDtype)
    for column in ("item_id", "label", "count", "note"):
        assert compact[column].astype(object).where(compact[column].notna(), None).tolist() == \
            full[column].astype(object).where(full[column].notna(), None).tolist()
    assert compact["options"].tolist() == plain(LISTS)
    assert read_compact(tmp_path / "t.parquet", columns=["count"]).columns.tolist() == ["count"]


def test_read_compact_names_an_unreadable_file(tmp_path):
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(io.DvmapError, match="bad.parquet: cannot read parquet"):
        read_compact(tmp_path / "bad.parquet")
