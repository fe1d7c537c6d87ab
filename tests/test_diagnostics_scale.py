"""dvmap diagnostics on Arrow tables as the pipeline reads them (chunked, a dictionary per chunk) and on edge cases:
an empty kept table, a (question, country) with no kept pair, a category present only in the full data."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from dvmap.survey.diagnostics import diagnostics

#: (profile_id, Country, Gender, question_id, counts, kept): two questions of different widths.
ROWS = [
    ("p1", "Aland", "Female", "Q1", [2, 1, 0], True),
    ("p2", "Aland", "Male", "Q1", [0, 1, 0], False),  # the only Male pair, not kept
    ("p1", "Aland", "Female", "Q2", [1, 1], True),  # a tied pair
    ("p3", "Borduria", "Female", "Q1", [0, 0, 2], False),  # (Q1, Borduria): nothing kept
    ("p3", "Borduria", "Female", "Q2", [1, 0], True),
]
SIZES = pd.Series([1, 2, 1], index=["p1", "p2", "p3"])


def arrow(rows, chunks: int) -> pa.Table:
    """The rows as stats/archetypes tables are read: dictionary string columns, one dictionary per chunk."""
    parts = []
    for part in np.array_split(np.arange(len(rows)), chunks):
        picked = [rows[i] for i in part]
        columns = {name: pa.array([r[i] for r in picked], type=pa.string()).dictionary_encode()
                   for i, name in enumerate(["profile_id", "Country", "Gender", "question_id"])}
        columns["n"] = pa.array([sum(r[4]) for r in picked], type=pa.int32())
        columns["counts"] = pa.array([r[4] for r in picked], type=pa.list_(pa.int32()))
        columns["answer"] = pa.array(["A"] * len(picked)).dictionary_encode()
        columns["answer_share"] = pa.array([0.5] * len(picked))
        columns["entropy"] = pa.array([1.0] * len(picked))
        parts.append(pa.table(columns))
    return pa.concat_tables(parts)


def values(table: pd.DataFrame, section: str) -> dict:
    rows = table[table["section"] == section]
    return {(r.key, r.country, r.category, r.metric): r.value for r in rows.itertuples()}


def jsd(p, q) -> float:
    p, q = np.array(p) / sum(p), np.array(q) / sum(q)
    m = (p + q) / 2
    return sum(0.5 * a * math.log2(a / b) for a, b in zip(np.r_[p, q], np.r_[m, m]) if a > 0)


def test_diagnostics_by_hand():
    stats = arrow(ROWS, chunks=3)
    kept = arrow([r for r in ROWS if r[5]], chunks=2)
    table = diagnostics(stats, kept, SIZES)
    assert values(table, "summary") == pytest.approx({
        ("", "", "", "rows_full"): 5, ("", "", "", "rows_kept"): 3, ("", "", "", "rows_kept_share"): 0.6,
        ("", "", "", "profiles_full"): 3, ("", "", "", "profiles_kept"): 2, ("", "", "", "profiles_kept_share"): 2 / 3,
        ("", "", "", "respondents_full"): 4, ("", "", "", "respondents_kept"): 2,
        ("", "", "", "respondents_kept_share"): 0.5, ("", "", "", "singleton_profile_share"): 1.0,
        ("", "", "", "singleton_row_share"): 1 / 3})
    h23 = -(2 / 3 * math.log2(2 / 3) + 1 / 3 * math.log2(1 / 3))
    expected = {
        ("Q1", "Aland"): (4, 3, 1.0, h23, jsd([2, 2, 0], [2, 1, 0])),
        ("Q1", "Borduria"): (2, 0, 0.0, np.nan, np.nan),
        ("Q2", "Aland"): (2, 2, 1.0, 1.0, 0.0),
        ("Q2", "Borduria"): (1, 1, 0.0, 0.0, 0.0),
    }
    question_country = table[table["section"] == "question_country"]
    assert list(dict.fromkeys(zip(question_country["key"], question_country["country"]))) == list(expected)
    metrics = ("answers_full", "answers_kept", "entropy_full", "entropy_kept", "jsd")
    got = values(table, "question_country")
    for (qid, country), numbers in expected.items():
        assert [got[qid, country, "", m] for m in metrics] == pytest.approx(list(numbers), nan_ok=True)
    assert values(table, "ties") == {("", "Aland", "", "tied_pairs"): 1, ("", "Borduria", "", "tied_pairs"): 0}
    assert values(table, "attribute") == pytest.approx({
        ("Country", "", "Aland", "share_full"): 6 / 9, ("Country", "", "Aland", "share_kept"): 5 / 6,
        ("Country", "", "Borduria", "share_full"): 3 / 9, ("Country", "", "Borduria", "share_kept"): 1 / 6,
        ("Gender", "", "Female", "share_full"): 8 / 9, ("Gender", "", "Female", "share_kept"): 1.0,
        ("Gender", "", "Male", "share_full"): 1 / 9, ("Gender", "", "Male", "share_kept"): 0.0})


@pytest.mark.parametrize("empty", ["sliced", "no chunk"])
def test_diagnostics_of_an_empty_kept_table(empty):
    stats = arrow(ROWS, chunks=2)
    kept = stats.slice(0, 0) if empty == "sliced" else pa.Table.from_batches([], schema=stats.schema)
    table = diagnostics(stats, kept, SIZES)
    summary = values(table, "summary")
    assert (summary["", "", "", "rows_kept"], summary["", "", "", "profiles_kept"]) == (0, 0)
    assert math.isnan(summary["", "", "", "singleton_row_share"])
    got = values(table, "question_country")
    assert len(got) == 4 * 5
    assert all(v == 0 for k, v in got.items() if k[3] == "answers_kept")
    assert all(math.isnan(v) for k, v in got.items() if k[3] in ("entropy_kept", "jsd"))
    assert values(table, "ties") == {}
    shares = values(table, "attribute")
    assert all(math.isnan(v) for k, v in shares.items() if k[3] == "share_kept")
