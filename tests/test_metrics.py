"""Item scores, bootstrap Evaluation and the evaluate() summary/breakdown, against values computed by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dvmap import ATTRIBUTES
from dvmap.evaluation.evaluate import evaluate
from dvmap.evaluation.metrics import METRICS, Evaluation, item_scores
from dvmap.evaluation.predictions import prediction_table
from dvmap.schema import PREDICTION_COLUMNS

from .items_factory import make_items

# --------------------------------------------------------------------------------------------------------------
# Fixtures: tiny scored item tables and a small item table in the full schema
# --------------------------------------------------------------------------------------------------------------

K3 = ["a", "b", "c"]
K5 = ["1", "2", "3", "4", "5"]
NA = pd.NA


def scored(rows) -> pd.DataFrame:
    """rows: (Country, question_id, options, answer_index, prediction_index or NA/-1)."""
    country, qid, options, gold, pred = zip(*rows)
    return pd.DataFrame({
        "Country": list(country),
        "question_id": list(qid),
        "options": [list(o) for o in options],
        "answer_index": list(gold),
        "prediction_index": pd.array([None if p is NA else p for p in pred], dtype="Int64"),
    })


@pytest.fixture
def mixed() -> pd.DataFrame:
    """K = 3 and K = 5 items, one unparseable as -1, one as NA."""
    return scored([
        ("X", "q1", K3, 0, 0),    # correct, LC 1
        ("X", "q1", K3, 0, 2),    # wrong, LC 1 - 2/2 = 0
        ("X", "q2", K5, 1, 2),    # wrong, LC 1 - 1/4 = 0.75
        ("Y", "q2", K5, 4, 4),    # correct, LC 1
        ("Y", "q2", K5, 0, -1),   # unparseable
        ("Y", "q1", K3, 1, NA),   # unparseable
    ])


@pytest.fixture
def cells() -> pd.DataFrame:
    """Five (country, question) cells with hand-computed Wasserstein distances."""
    return scored([
        # (X, q1), K=3: gold [a, a, b], predicted [a, b, b] -> |2/3 - 1/3| * 1/2 = 1/6
        ("X", "q1", K3, 0, 0), ("X", "q1", K3, 0, 1), ("X", "q1", K3, 1, 1),
        # (X, q2), K=3: every prediction unparseable -> 1
        ("X", "q2", K3, 0, -1), ("X", "q2", K3, 1, NA),
        # (Y, q1), K=5: gold [1, 5], predicted [5, 1]: every item wrong, same distribution -> 0
        ("Y", "q1", K5, 0, 4), ("Y", "q1", K5, 4, 0),
        # (Y, q3), K=5: gold [1], predicted [3] -> 2/4 = 0.5
        ("Y", "q3", K5, 0, 2),
        # (Y, q2), K=3: gold [a, c], predicted [c, unparseable] -> parsed ones only: (0.5 + 0.5) / 2 = 0.5
        ("Y", "q2", K3, 0, 2), ("Y", "q2", K3, 2, -1),
    ])


CELL_W = {("X", "q1"): 1 / 6, ("X", "q2"): 1.0, ("Y", "q1"): 0.0, ("Y", "q3"): 0.5, ("Y", "q2"): 0.5}

def item_table(rows, split: str = "dev") -> pd.DataFrame:
    """rows: dicts with question_id, options, answer_index, category and attribute overrides -> full item table."""
    return make_items(rows, split)


@pytest.fixture
def small_items() -> pd.DataFrame:
    rows = []
    for country in ["Xland", "Yland"]:
        for income in ["Low income", "High income"]:
            for qid, options, gold in [("q1", K3, 1), ("q2", K5, 3)]:
                rows.append({"Country": country, "Income Bracket": income, "question_id": qid, "options": options,
                             "answer_index": gold, "category": "A" if qid == "q1" else "B"})
    return item_table(rows)


# --------------------------------------------------------------------------------------------------------------
# item_scores
# --------------------------------------------------------------------------------------------------------------

def test_item_scores_by_hand():
    predicted = np.array([0, 2, 2, 4, -1, -1, 1])
    gold = np.array([0, 0, 1, 4, 0, 2, 2])
    k = np.array([3, 3, 5, 5, 5, 3, 3])
    correct, likert, parsed = item_scores(predicted, gold, k)
    np.testing.assert_array_equal(correct, [1, 0, 0, 1, 0, 0, 0])
    np.testing.assert_allclose(likert, [1, 0, 0.75, 1, 0, 0, 0.5])
    np.testing.assert_array_equal(parsed, [1, 1, 1, 1, 0, 0, 1])


def test_unparseable_is_worse_than_the_farthest_parsed_answer():
    correct, likert, parsed = item_scores(np.array([-1, 2]), np.array([1, 0]), np.array([3, 3]))
    # -1 would be at distance 2/2 = 1 from option 1 on a naive |ŷ - y|: it must still score 0, not be "parsed"
    assert correct.tolist() == [0, 0] and likert.tolist() == [0, 0] and parsed.tolist() == [0, 1]


# --------------------------------------------------------------------------------------------------------------
# Evaluation point estimates
# --------------------------------------------------------------------------------------------------------------

def test_accuracy_likert_unparseable_by_hand(mixed):
    table = Evaluation(mixed, n_boot=50, seed=0).table()
    assert set(table) == set(METRICS)
    assert table["accuracy"][0] == pytest.approx(2 / 6)
    assert table["likert_consistency"][0] == pytest.approx((1 + 0 + 0.75 + 1 + 0 + 0) / 6)
    assert table["unparseable_rate"][0] == pytest.approx(2 / 6)


def test_unparseable_counts_as_wrong(mixed):
    parsed_only = mixed[mixed["prediction_index"].notna() & (mixed["prediction_index"] >= 0)]
    all_items = Evaluation(mixed, n_boot=20).table()
    only_parsed = Evaluation(parsed_only, n_boot=20).table()
    assert only_parsed["accuracy"][0] == pytest.approx(2 / 4)
    assert only_parsed["unparseable_rate"][0] == 0
    assert all_items["accuracy"][0] < only_parsed["accuracy"][0]
    # making a correct item unparseable lowers accuracy and LC and raises the unparseable rate
    worse = mixed.copy()
    worse.loc[0, "prediction_index"] = NA
    w = Evaluation(worse, n_boot=20).table()
    assert w["accuracy"][0] == pytest.approx(1 / 6)
    assert w["likert_consistency"][0] == pytest.approx(1.75 / 6)
    assert w["unparseable_rate"][0] == pytest.approx(3 / 6)


def same_tables(first: dict, second: dict) -> bool:
    """Equal tables, NaN equal to NaN (the respondent-based metrics of items without counts)."""
    return first.keys() == second.keys() and all(
        np.array_equal(first[m], second[m], equal_nan=True) for m in first)


def test_prediction_index_as_float_nan(mixed):
    as_float = mixed.assign(prediction_index=mixed["prediction_index"].astype("float"))
    assert same_tables(Evaluation(as_float, n_boot=20).table(), Evaluation(mixed, n_boot=20).table())


def test_wasserstein_by_hand(cells):
    table = Evaluation(cells, n_boot=50, seed=0).table()
    assert table["wasserstein"][0] == pytest.approx(np.mean(list(CELL_W.values())))


@pytest.mark.parametrize("cell", list(CELL_W))
def test_wasserstein_per_cell(cells, cell):
    mask = ((cells["Country"] == cell[0]) & (cells["question_id"] == cell[1])).to_numpy()
    evaluation = Evaluation(cells, n_boot=20, seed=0)
    assert evaluation.table(mask)["wasserstein"][0] == pytest.approx(CELL_W[cell])
    alone = Evaluation(cells[mask], n_boot=20, seed=0)
    assert alone.table()["wasserstein"][0] == pytest.approx(CELL_W[cell])


def test_wasserstein_ties_perfect_and_worst():
    # ties: every prediction wrong but the predicted distribution equals the gold one
    swapped = scored([("X", "q", K3, 0, 2), ("X", "q", K3, 2, 0), ("X", "q", K3, 1, 1)])
    table = Evaluation(swapped, n_boot=20).table()
    assert table["wasserstein"][0] == pytest.approx(0.0)
    assert table["accuracy"][0] == pytest.approx(1 / 3)
    # extremes: everything on the wrong end of the scale -> 1
    extreme = scored([("X", "q", K5, 0, 4), ("X", "q", K5, 0, 4)])
    assert Evaluation(extreme, n_boot=20).table()["wasserstein"][0] == pytest.approx(1.0)
    # a tie in the gold distribution (half a, half c) against all b: |1/2 - 0| * 1/2 + |1/2 - 1| * 1/2 = 1/2
    half = scored([("X", "q", K3, 0, 1), ("X", "q", K3, 2, 1)])
    assert Evaluation(half, n_boot=20).table()["wasserstein"][0] == pytest.approx(0.5)


def test_wasserstein_cells_are_per_country_and_question():
    # the same question in two countries: each country's predictions match its own gold, not the pooled one
    frame = scored([("X", "q", K3, 0, 0), ("X", "q", K3, 0, 0), ("Y", "q", K3, 2, 2), ("Y", "q", K3, 2, 2)])
    assert Evaluation(frame, n_boot=20).table()["wasserstein"][0] == pytest.approx(0.0)
    crossed = scored([("X", "q", K3, 0, 2), ("X", "q", K3, 0, 2), ("Y", "q", K3, 2, 0), ("Y", "q", K3, 2, 0)])
    assert Evaluation(crossed, n_boot=20).table()["wasserstein"][0] == pytest.approx(1.0)


def test_wasserstein_independent_of_row_order(cells):
    shuffled = cells.sample(frac=1.0, random_state=3)
    a = Evaluation(cells, n_boot=20).table()["wasserstein"][0]
    b = Evaluation(shuffled, n_boot=20).table()["wasserstein"][0]
    assert a == pytest.approx(b)


# --------------------------------------------------------------------------------------------------------------
# Bootstrap intervals and subsets
# --------------------------------------------------------------------------------------------------------------

def random_items(n: int, seed: int) -> pd.DataFrame:
    """Independent random items (the item bootstrap's model); questions q1, q3 have 3 options, q2, q4 have 5."""
    rng = np.random.default_rng(seed)
    question = rng.choice(["q1", "q2", "q3", "q4"], size=n)
    k = np.where(np.isin(question, ["q1", "q3"]), 3, 5)
    gold = (rng.random(n) * k).astype(int)
    pred = np.where(rng.random(n) < 0.6, gold, (rng.random(n) * k).astype(int))
    pred = np.where(rng.random(n) < 0.1, -1, pred)
    return pd.DataFrame({
        "Country": rng.choice(["X", "Y", "Z"], size=n),
        "question_id": question,
        "options": [K3 if v == 3 else K5 for v in k],
        "answer_index": gold,
        "prediction_index": pred,
    })


#: Metrics that need the respondents' counts, which random_items do not have.
RESPONDENT_METRICS = ("jsd", "profile_wasserstein", "representativeness")


def test_ci_contains_point_estimate():
    table = Evaluation(random_items(300, 1), n_boot=400, seed=0).table()
    for metric, (value, low, high) in table.items():
        if metric in RESPONDENT_METRICS:
            assert np.isnan([value, low, high]).all(), metric
            continue
        assert np.isfinite([value, low, high]).all(), metric
        if metric == "wasserstein":
            # resampling adds noise to every cell's two distributions, which only moves them apart: the percentile
            # interval of this distance sits above the point estimate (here with 25 items per cell) but has width
            assert low < high and value < high, (metric, low, value, high)
        else:
            assert low < value < high, (metric, low, value, high)


def test_ci_is_seeded():
    items = random_items(200, 2)
    first = Evaluation(items, n_boot=200, seed=5).table()
    again = Evaluation(items, n_boot=200, seed=5).table()
    other = Evaluation(items, n_boot=200, seed=6).table()
    assert same_tables(first, again)
    for metric in METRICS:
        if metric not in RESPONDENT_METRICS:
            assert first[metric][0] == other[metric][0]  # the point estimate does not depend on the seed
    assert any(first[m][1:] != other[m][1:] for m in METRICS)
    assert first["accuracy"][1:] != other["accuracy"][1:]


def test_ci_narrows_with_more_items():
    small = Evaluation(random_items(50, 3), n_boot=300, seed=0).table()
    large = Evaluation(random_items(5000, 3), n_boot=300, seed=0).table()
    for metric in ("accuracy", "likert_consistency", "unparseable_rate", "wasserstein"):
        width_small = small[metric][2] - small[metric][1]
        width_large = large[metric][2] - large[metric][1]
        assert 0 < width_large < width_small / 3, (metric, width_small, width_large)


def test_level_widens_the_interval():
    items = random_items(300, 4)
    narrow = Evaluation(items, n_boot=400, seed=0, level=0.5).table()["accuracy"]
    wide = Evaluation(items, n_boot=400, seed=0, level=0.99).table()["accuracy"]
    assert wide[1] < narrow[1] < narrow[0] < narrow[2] < wide[2]


def test_subset_mask_gives_the_subset_metrics(mixed):
    evaluation = Evaluation(mixed, n_boot=100, seed=0)
    mask = (mixed["Country"] == "Y").to_numpy()
    subset = evaluation.table(mask)
    # Y: (q2, gold 4, pred 4), (q2, gold 0, unparseable), (q1, gold 1, unparseable)
    assert subset["accuracy"][0] == pytest.approx(1 / 3)
    assert subset["likert_consistency"][0] == pytest.approx(1 / 3)
    assert subset["unparseable_rate"][0] == pytest.approx(2 / 3)
    # W: (Y, q2) K=5 gold [1, 5] vs predicted [5] -> (1/2 * 4) / 4 = 1/2; (Y, q1) all unparseable -> 1
    assert subset["wasserstein"][0] == pytest.approx(0.75)
    alone = Evaluation(mixed[mask], n_boot=100, seed=0).table()
    for metric in METRICS:
        assert subset[metric][0] == pytest.approx(alone[metric][0], nan_ok=True)
        if metric not in RESPONDENT_METRICS:
            assert subset[metric][1] <= subset[metric][0] <= subset[metric][2]
    assert same_tables(evaluation.table(np.ones(len(mixed), dtype=bool)), evaluation.table())
    x = evaluation.table(~mask)
    assert x["accuracy"][0] == pytest.approx(1 / 3) and x["unparseable_rate"][0] == 0


def test_empty_subset_is_nan(mixed):
    table = Evaluation(mixed, n_boot=20).table(np.zeros(len(mixed), dtype=bool))
    for metric in METRICS:
        assert np.isnan(table[metric][0]), metric


# --------------------------------------------------------------------------------------------------------------
# evaluate(): per-seed rows, mean ± sd across seeds, breakdown
# --------------------------------------------------------------------------------------------------------------

def seeded_predictions(items: pd.DataFrame) -> list[pd.DataFrame]:
    gold = items["answer_index"].to_numpy()
    half = gold.copy()
    half[::2] = (gold[::2] + 1) % 3  # every other item wrong (q1 and q2 alternate, so each pair has one wrong)
    seed0 = prediction_table(items, gold, "toy", "0.0", 0)
    seed1 = prediction_table(items, half, "toy", "0.0", 1)
    return [seed0, seed1]


def test_evaluate_seeds_mean_and_sd(small_items):
    seed0, seed1 = seeded_predictions(small_items)
    summary, _ = evaluate([pd.concat([seed0, seed1], ignore_index=True)], n_boot=50, seed=0)
    rows = summary.set_index("seed")
    assert set(rows.index) == {"0", "1", "mean"}
    assert rows.loc["0", "accuracy"] == pytest.approx(1.0)
    assert rows.loc["1", "accuracy"] == pytest.approx(0.5)
    assert rows.loc["mean", "accuracy"] == pytest.approx(0.75)
    assert rows.loc["mean", "accuracy_sd"] == pytest.approx(np.std([1.0, 0.5], ddof=1))
    for metric in METRICS:  # the items have no counts: the respondent-based metrics are NaN, their mean too
        assert rows.loc["mean", metric] == pytest.approx((rows.loc["0", metric] + rows.loc["1", metric]) / 2,
                                                         nan_ok=True)
        assert rows.loc["mean", f"{metric}_sd"] == pytest.approx(
            np.std([rows.loc["0", metric], rows.loc["1", metric]], ddof=1), nan_ok=True)
    assert rows.loc["0", "predictor"] == "toy.tau~0.0.seed~0"
    assert (rows["n_items"] == len(small_items)).all()
    assert rows.loc["0", "accuracy_ci_low"] <= 1.0 <= rows.loc["0", "accuracy_ci_high"]
    # the dev split resamples profiles (bootstrap unit auto), and seed 1 is right on exactly one of each profile's
    # two items: every replicate has accuracy 1/2
    assert set(rows["bootstrap_unit"]) == {"profile"}
    assert rows.loc["1", "accuracy_ci_low"] == rows.loc["1", "accuracy_ci_high"] == 0.5
    # resampling items instead, the interval has width
    by_item, _ = evaluate([seed1], n_boot=50, seed=0, unit="item")
    assert by_item.loc[0, "bootstrap_unit"] == "item"
    assert by_item.loc[0, "accuracy_ci_low"] < 0.5 < by_item.loc[0, "accuracy_ci_high"]


def test_evaluate_separate_frames_same_as_one(small_items):
    seed0, seed1 = seeded_predictions(small_items)
    together, _ = evaluate([pd.concat([seed0, seed1], ignore_index=True)], n_boot=30)
    apart, _ = evaluate([seed0, seed1], n_boot=30)
    pd.testing.assert_frame_equal(together, apart)


def test_evaluate_single_seed_has_no_mean_row(small_items):
    seed0, _ = seeded_predictions(small_items)
    summary, _ = evaluate([seed0], n_boot=30)
    assert summary["seed"].tolist() == ["0"]
    unseeded = prediction_table(small_items, small_items["answer_index"], "oracle", "none", None)
    summary, _ = evaluate([unseeded], n_boot=30)
    assert summary["seed"].tolist() == [""] and summary["accuracy"].tolist() == [1.0]


def test_breakdown_group_types(small_items):
    seed0, seed1 = seeded_predictions(small_items)
    _, breakdown = evaluate([seed0, seed1], n_boot=30)
    types = set(breakdown["group_type"])
    expected = {"country", "question"} | {f"attribute:{a}" for a in ATTRIBUTES if a != "Country"}
    assert expected <= types
    countries = breakdown[breakdown["group_type"] == "country"]
    assert set(countries["group"]) == {"Xland", "Yland"}
    assert set(breakdown.loc[breakdown["group_type"] == "question", "group"]) == {"q1", "q2"}
    incomes = breakdown[breakdown["group_type"] == "attribute:Income Bracket"]
    assert set(incomes["group"]) == {"Low income", "High income"}
    assert set(breakdown["metric"]) == set(METRICS)
    # seed 1 is wrong exactly on q1 (every other row, q1 first): q1 accuracy 0, q2 accuracy 1
    seed1_q = breakdown[(breakdown["seed"] == "1") & (breakdown["group_type"] == "question")
                        & (breakdown["metric"] == "accuracy")].set_index("group")
    assert seed1_q.loc["q1", "value"] == 0.0 and seed1_q.loc["q2", "value"] == 1.0
    assert (seed1_q["n_items"] == 4).all()
    x = breakdown[(breakdown["seed"] == "1") & (breakdown["group"] == "Xland") & (breakdown["metric"] == "accuracy")]
    assert x["value"].tolist() == [0.5]


def test_breakdown_has_only_profile_attributes(small_items):
    """The prediction schema's own columns (predictor, prediction_index, raw_output, ...) are not attributes."""
    seed0, _ = seeded_predictions(small_items)
    _, breakdown = evaluate([seed0], n_boot=20)
    types = set(breakdown["group_type"])
    expected = {"country", "question"} | {f"attribute:{a}" for a in ATTRIBUTES if a != "Country"}
    spurious = sorted(t for t in types - expected)
    assert not spurious, f"breakdown groups by non-attribute prediction columns: {spurious}"
    assert not {f"attribute:{c}" for c in PREDICTION_COLUMNS} & types
