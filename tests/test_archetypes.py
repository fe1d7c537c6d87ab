"""archetype_stats / select_archetypes / parse_tau on hand-computed data and against a naive pandas version."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from dvmap.survey.archetypes import (
    MAJORITY,
    archetype_stats,
    parse_tau,
    profile_sizes,
    select_archetypes,
    tau_label,
)
from dvmap.survey.attribute_map import load_attribute_map
from dvmap.survey.catalog import Question, load_catalog
from dvmap.errors import DvmapError
from dvmap.survey.respondents import build_respondents
from dvmap.survey.synth import write_synthetic_sav

# --------------------------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------------------------

K3 = ("Low", "Medium", "High")
K5 = ("Very bad", "Quite bad", "Neither good nor bad", "Quite good", "Very good")

CATALOG = {
    "QA": Question("QA", "SECTION A", "How much A?", K3, {1: "Low", 2: "Medium", 3: "High"}),
    "QB": Question("QB", "SECTION B", "How good is B?", K5, {i + 1: o for i, o in enumerate(K5)}),
}

# (Country, Gender, QA answer, QB answer) per respondent; None = missing answer.
# Profiles (sorted): P1 (Aland, Female), P2 (Aland, Male), P3 (Borduria, Female), P4 (Borduria, Male).
ROWS = [
    # P1: QA [2,1,0] + one missing; QB [1,1,1,1,0]
    ("Aland", "Female", "Low", "Very bad"),
    ("Aland", "Female", "Low", "Quite bad"),
    ("Aland", "Female", "Medium", "Neither good nor bad"),
    ("Aland", "Female", None, "Quite good"),
    # P2: QA consensus High x4; QB tie 2 vs 2, "Very good" seen first but "Quite bad" is the earlier option
    ("Aland", "Male", "High", "Very good"),
    ("Aland", "Male", "High", "Quite bad"),
    ("Aland", "Male", "High", "Very good"),
    ("Aland", "Male", "High", "Quite bad"),
    # P3: QA one answer; QB never answered -> no (P3, QB) row
    ("Borduria", "Female", "Medium", None),
    ("Borduria", "Female", None, None),
    # P4: QA never answered -> no (P4, QA) row; QB one answer
    ("Borduria", "Male", None, "Neither good nor bad"),
]

H_2_1 = -(2 / 3) * math.log2(2 / 3) - (1 / 3) * math.log2(1 / 3)  # 0.9183 bits

# (Country, Gender, question) -> (n, counts, answer, answer_share, entropy), worked out by hand.
EXPECTED = {
    ("Aland", "Female", "QA"): (3, [2, 1, 0], "Low", 2 / 3, H_2_1),
    ("Aland", "Male", "QA"): (4, [0, 0, 4], "High", 1.0, 0.0),
    ("Borduria", "Female", "QA"): (1, [0, 1, 0], "Medium", 1.0, 0.0),
    ("Aland", "Female", "QB"): (4, [1, 1, 1, 1, 0], "Very bad", 0.25, 2.0),
    ("Aland", "Male", "QB"): (4, [0, 2, 0, 0, 2], "Quite bad", 0.5, 1.0),
    ("Borduria", "Male", "QB"): (1, [0, 0, 1, 0, 0], "Neither good nor bad", 1.0, 0.0),
}
#: documented row order: entropy, then catalog order, then profiles in lexicographic order of their attributes
EXPECTED_ORDER = [
    ("Aland", "Male", "QA"), ("Borduria", "Female", "QA"), ("Borduria", "Male", "QB"),  # H = 0
    ("Aland", "Female", "QA"),  # 0.918
    ("Aland", "Male", "QB"),  # 1.0
    ("Aland", "Female", "QB"),  # 2.0
]


def hand_respondents(rows=ROWS, shuffle_seed: int | None = 0) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["Country", "Gender", "QA", "QB"])
    frame.insert(0, "respondent_id", [f"r{i:03d}" for i in range(len(frame))])
    if shuffle_seed is not None:  # row order must not matter
        order = np.random.default_rng(shuffle_seed).permutation(len(frame))
        frame = frame.iloc[order].reset_index(drop=True)
    frame["QA"] = pd.Categorical(frame["QA"], categories=list(K3))
    # categories deliberately NOT in option order: counts must still come out in option order
    frame["QB"] = pd.Categorical(frame["QB"], categories=sorted(K5))
    return frame


def rows_of(table: pa.Table) -> list[dict]:
    """Plain python rows (avoids to_pandas, see test_stats_table_converts_to_pandas)."""
    return table.to_pylist()


def key(row: dict) -> tuple:
    return (row["Country"], row["Gender"], row["question_id"])


def md5_id(*values: str) -> str:
    return hashlib.md5("\x1f".join(values).encode("utf-8")).hexdigest()[:12]


@pytest.fixture(scope="module")
def hand_stats() -> pa.Table:
    return archetype_stats(hand_respondents(), CATALOG)


@pytest.fixture(scope="module")
def synthetic_respondents(tmp_path_factory) -> tuple[pd.DataFrame, dict[str, Question]]:
    catalog = load_catalog()
    path = tmp_path_factory.mktemp("synth") / "survey.sav"
    write_synthetic_sav(path, catalog, respondents_per_country=80, n_countries=3, seed=11)
    return build_respondents([path], catalog, load_attribute_map()), catalog


# --------------------------------------------------------------------------------------------------------------
# Hand-computed statistics
# --------------------------------------------------------------------------------------------------------------

def test_columns_and_row_order(hand_stats):
    assert hand_stats.column_names == ["profile_id", "Country", "Gender", "question_id", "n", "counts", "answer",
                                       "answer_share", "entropy"]
    assert [key(r) for r in rows_of(hand_stats)] == EXPECTED_ORDER
    entropies = [r["entropy"] for r in rows_of(hand_stats)]
    assert entropies == sorted(entropies)


@pytest.mark.parametrize("pair", EXPECTED_ORDER, ids=lambda k: "-".join(k))
def test_hand_computed_group_statistics(hand_stats, pair):
    rows = {key(r): r for r in rows_of(hand_stats)}
    n, counts, answer, share, entropy = EXPECTED[pair]
    row = rows[pair]
    assert row["n"] == n
    assert row["counts"] == counts
    assert sum(row["counts"]) == row["n"]
    assert row["answer"] == answer
    assert row["answer_share"] == pytest.approx(share, abs=1e-12)
    assert row["entropy"] == pytest.approx(entropy, abs=1e-9)


def test_entropy_reference_values(hand_stats):
    rows = {key(r): r for r in rows_of(hand_stats)}
    assert rows[("Aland", "Female", "QA")]["entropy"] == pytest.approx(0.9183, abs=1e-4)
    assert rows[("Aland", "Female", "QB")]["entropy"] == pytest.approx(2.0, abs=1e-12)
    # consensus is exactly zero, not a rounding artefact
    assert rows[("Aland", "Male", "QA")]["entropy"] == 0.0
    assert rows[("Borduria", "Female", "QA")]["entropy"] == 0.0


def test_tie_goes_to_earlier_option_not_first_seen(hand_stats):
    row = {key(r): r for r in rows_of(hand_stats)}[("Aland", "Male", "QB")]
    assert row["counts"] == [0, 2, 0, 0, 2]
    assert row["answer"] == "Quite bad"  # "Very good" appears first in the data but is the later option


def test_missing_answers_not_counted_and_unanswered_pairs_absent(hand_stats):
    keys = {key(r) for r in rows_of(hand_stats)}
    assert ("Borduria", "Female", "QB") not in keys  # all answers missing
    assert ("Borduria", "Male", "QA") not in keys
    rows = {key(r): r for r in rows_of(hand_stats)}
    assert rows[("Aland", "Female", "QA")]["n"] == 3  # 4 respondents, one missing answer
    assert rows[("Borduria", "Female", "QA")]["n"] == 1


def test_row_order_of_respondents_does_not_matter():
    a = archetype_stats(hand_respondents(shuffle_seed=None), CATALOG)
    b = archetype_stats(hand_respondents(shuffle_seed=5), CATALOG)
    assert rows_of(a) == rows_of(b)


def test_answer_not_an_option_raises():
    frame = hand_respondents()
    frame["QA"] = pd.Categorical(frame["QA"].astype(object).where(frame["QA"].notna(), None),
                                 categories=[*K3, "Bogus"])
    frame.loc[0, "QA"] = "Bogus"
    with pytest.raises(DvmapError, match="QA"):
        archetype_stats(frame, CATALOG)


def test_answer_not_an_option_raises_for_plain_string_column():
    """A plain (non-categorical) answer column is accepted too; a label that is no option must not be dropped
    silently as if it were a missing answer."""
    frame = hand_respondents()
    frame["QA"] = frame["QA"].astype(object)
    frame.loc[0, "QA"] = "Bogus"
    with pytest.raises(DvmapError, match="QA"):
        archetype_stats(frame, CATALOG)


def test_plain_string_columns_give_the_same_statistics(hand_stats):
    frame = hand_respondents()
    for q in CATALOG:
        frame[q] = frame[q].astype(object).where(frame[q].notna(), None)
    assert rows_of(archetype_stats(frame, CATALOG)) == rows_of(hand_stats)


def test_errors_on_empty_or_questionless_tables():
    with pytest.raises(DvmapError, match="no column of a catalog question"):
        archetype_stats(hand_respondents().drop(columns=["QA", "QB"]), CATALOG)
    with pytest.raises(DvmapError, match="empty"):
        archetype_stats(hand_respondents().iloc[:0], CATALOG)


def test_stats_table_converts_to_pandas(hand_stats):
    """The in-memory stats table feeds assign_profiles / items_from_archetypes, which call to_pandas(); its
    dictionary columns must therefore have unique dictionaries (here two profiles share 'Aland', and
    realistic catalogs share option labels across questions)."""
    frame = hand_stats.to_pandas()
    assert len(frame) == len(EXPECTED)
    assert sorted(frame["Country"].astype(str)) == sorted(k[0] for k in EXPECTED)


def test_synthetic_stats_table_converts_to_pandas(synthetic_respondents):
    """Same with the packaged catalog, where questions share option labels ('Very important', 'Low', ...)."""
    respondents, catalog = synthetic_respondents
    stats = archetype_stats(respondents, catalog)
    frame = stats.to_pandas()
    assert len(frame) == stats.num_rows
    assert frame["answer"].astype(str).tolist() == stats["answer"].to_pylist()
    assert frame["Country"].astype(str).tolist() == stats["Country"].to_pylist()


# --------------------------------------------------------------------------------------------------------------
# Profile ids
# --------------------------------------------------------------------------------------------------------------

def test_profile_ids_are_md5_of_joined_attributes(hand_stats):
    for row in rows_of(hand_stats):
        assert row["profile_id"] == md5_id(row["Country"], row["Gender"])


def test_profile_ids_stable_and_distinct(hand_stats):
    ids = {(r["Country"], r["Gender"]): r["profile_id"] for r in rows_of(hand_stats)}
    assert len(set(ids.values())) == 4  # four different profiles, four ids
    # same attributes in another table (fewer respondents, another profile added) -> same id
    other_rows = [r for r in ROWS if r[0] == "Aland"][:3] + [("Cordinia", "Female", "Low", "Very good")]
    other = archetype_stats(hand_respondents(other_rows), CATALOG)
    other_ids = {(r["Country"], r["Gender"]): r["profile_id"] for r in rows_of(other)}
    assert other_ids[("Aland", "Female")] == ids[("Aland", "Female")]
    assert other_ids[("Cordinia", "Female")] not in ids.values()
    # every (profile, question) row of one profile carries the same id
    per_profile = {}
    for r in rows_of(hand_stats):
        per_profile.setdefault((r["Country"], r["Gender"]), set()).add(r["profile_id"])
    assert all(len(v) == 1 for v in per_profile.values())


def test_profile_sizes(hand_stats):
    sizes = profile_sizes(hand_respondents(), CATALOG)
    assert sizes.to_dict() == {md5_id("Aland", "Female"): 4, md5_id("Aland", "Male"): 4,
                               md5_id("Borduria", "Female"): 2, md5_id("Borduria", "Male"): 1}


# --------------------------------------------------------------------------------------------------------------
# select_archetypes
# --------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("tau, min_size, expected", [
    (0.0, 1, {("Aland", "Male", "QA"), ("Borduria", "Female", "QA"), ("Borduria", "Male", "QB")}),
    (1.0, 1, {("Aland", "Female", "QA"), ("Aland", "Male", "QA"), ("Borduria", "Female", "QA"),
              ("Aland", "Male", "QB"), ("Borduria", "Male", "QB")}),  # H = 1.0 exactly is kept
    (0.9, 1, {("Aland", "Male", "QA"), ("Borduria", "Female", "QA"), ("Borduria", "Male", "QB")}),
    (MAJORITY, 1, set(EXPECTED)),
    (MAJORITY, 2, {("Aland", "Female", "QA"), ("Aland", "Male", "QA"), ("Aland", "Female", "QB"),
                   ("Aland", "Male", "QB")}),
    (0.0, 2, {("Aland", "Male", "QA")}),
    (MAJORITY, 5, set()),
])
def test_select_archetypes(hand_stats, tau, min_size, expected):
    kept = select_archetypes(hand_stats, tau, min_group_size=min_size)
    assert {key(r) for r in rows_of(kept)} == expected
    assert kept.schema == hand_stats.schema
    for r in rows_of(kept):
        assert r["n"] >= min_size
        if tau != MAJORITY:
            assert r["entropy"] <= tau + 1e-9


@pytest.mark.parametrize("tau", [0.0, 1.0])
def test_select_archetypes_never_silently_wrong_on_reordered_stats(hand_stats, tau):
    """Rows out of entropy order (e.g. a stats file sorted by someone else): either a clear error or the right
    pairs, never a wrong subset."""
    reordered = hand_stats.take(pa.array([5, 3, 0, 4, 1, 2]))
    try:
        kept = select_archetypes(reordered, tau)
    except DvmapError:
        return
    assert {key(r) for r in rows_of(kept)} == {k for k in EXPECTED if EXPECTED[k][4] <= tau + 1e-9}


def test_select_archetypes_parsed_label(hand_stats):
    assert rows_of(select_archetypes(hand_stats, parse_tau("1.0"))) == rows_of(select_archetypes(hand_stats, 1.0))
    assert rows_of(select_archetypes(hand_stats, parse_tau("majority"))) == rows_of(hand_stats)


# --------------------------------------------------------------------------------------------------------------
# parse_tau / tau_label
# --------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("tau", [0.0, 0.5, 1.0, 1.5, 2.25, MAJORITY])
def test_tau_round_trip(tau):
    assert parse_tau(tau_label(tau)) == tau
    assert tau_label(parse_tau(tau_label(tau))) == tau_label(tau)


def test_tau_labels():
    assert tau_label(0) == "0.0"
    assert tau_label(1) == "1.0"
    assert tau_label("0.50") == "0.5"
    assert tau_label(MAJORITY) == "majority"
    assert parse_tau("0") == 0.0
    assert parse_tau("0.5") == 0.5


@pytest.mark.parametrize("label, message", [
    ("-1", "must be a finite entropy"),
    ("-0.5", "must be a finite entropy"),
    ("abc", "neither a number nor 'majority'"),
    ("", "neither a number nor 'majority'"),
    ("nan", "must be a finite entropy"),
    ("inf", "must be a finite entropy"),
    (None, "neither a number nor 'majority'"),
])
def test_parse_tau_errors(label, message):
    with pytest.raises(DvmapError, match=message):
        parse_tau(label)


# --------------------------------------------------------------------------------------------------------------
# Against a naive pandas implementation on the synthetic survey
# --------------------------------------------------------------------------------------------------------------

def naive_stats(respondents: pd.DataFrame, catalog: dict[str, Question]) -> dict[tuple, dict]:
    attributes = [c for c in respondents.columns if c != "respondent_id" and c not in catalog]
    out = {}
    for qid, question in catalog.items():
        if qid not in respondents.columns:
            continue
        answers = respondents[attributes].astype(str).assign(_a=respondents[qid].astype(object))
        answers = answers[answers["_a"].notna()]
        for profile, group in answers.groupby(attributes, sort=True):
            values = group["_a"].tolist()
            counts = [values.count(o) for o in question.options]
            n = len(values)
            best = max(range(len(counts)), key=lambda i: (counts[i], -i))
            entropy = -sum(c / n * math.log2(c / n) for c in counts if c)
            out[(*profile, qid)] = {
                "profile_id": md5_id(*profile),
                "n": n, "counts": counts, "answer": question.options[best],
                "answer_share": counts[best] / n, "entropy": entropy,
            }
    return out


def test_matches_naive_groupby_on_synthetic_survey(synthetic_respondents):
    respondents, catalog = synthetic_respondents
    stats = archetype_stats(respondents, catalog)
    attributes = [c for c in respondents.columns if c != "respondent_id" and c not in catalog]
    assert stats.column_names[1:1 + len(attributes)] == attributes
    expected = naive_stats(respondents, catalog)
    rows = rows_of(stats)
    got = {(*(r[a] for a in attributes), r["question_id"]): r for r in rows}
    assert len(got) == len(rows)  # one row per (profile, question)
    assert set(got) == set(expected)
    for k, exp in expected.items():
        row = got[k]
        assert row["profile_id"] == exp["profile_id"], k
        assert row["n"] == exp["n"], k
        assert row["counts"] == exp["counts"], k
        assert row["answer"] == exp["answer"], k
        assert row["answer_share"] == pytest.approx(exp["answer_share"], abs=1e-12), k
        assert row["entropy"] == pytest.approx(exp["entropy"], abs=1e-9), k
    # the survey has both consensus and disagreeing groups, and ties, so the comparison is not vacuous
    entropies = [r["entropy"] for r in rows]
    assert any(e == 0.0 for e in entropies) and any(e > 0.5 for e in entropies)
    assert any(sorted(r["counts"])[-1] == sorted(r["counts"])[-2] for r in rows)
    # rows are ordered by entropy, then catalog order, then profile (lexicographic attribute values)
    position = {q: i for i, q in enumerate(catalog)}
    keys = [(r["entropy"], position[r["question_id"]], tuple(r[a] for a in attributes)) for r in rows]
    assert keys == sorted(keys)


def test_synthetic_profile_ids_distinct_per_profile(synthetic_respondents):
    respondents, catalog = synthetic_respondents
    stats = archetype_stats(respondents, catalog)
    attributes = [c for c in respondents.columns if c != "respondent_id" and c not in catalog]
    by_id: dict[str, set] = {}
    for r in rows_of(stats):
        by_id.setdefault(r["profile_id"], set()).add(tuple(r[a] for a in attributes))
    assert all(len(v) == 1 for v in by_id.values())
    assert len(by_id) == len(respondents[attributes].astype(str).drop_duplicates())
    sizes = profile_sizes(respondents, catalog)
    assert sizes.sum() == len(respondents)
    assert set(sizes.index) == set(by_id)


def test_counts_cover_options_nobody_chose():
    """Options absent from the data still get a zero count: every counts list has K entries."""
    question = Question("QX", "S", "t", ("a", "b", "c", "d", "e"), {1: "a", 2: "b", 3: "c", 4: "d", 5: "e"})
    respondents = pd.DataFrame({"respondent_id": ["1", "2"], "Country": ["X", "X"],
                                "QX": pd.Categorical(["a", "b"], categories=list("abcde"))})
    assert archetype_stats(respondents, {"QX": question}).to_pydict()["counts"] == [[1, 1, 0, 0, 0]]
