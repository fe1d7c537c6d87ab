"""Distribution metrics (expected accuracy, Brier, ECE, JSD, profile Wasserstein, representativeness) against values
computed by hand on tiny tables, the respondents' counts in prediction tables, and `dvmap evaluate` writing them.

The bootstrap of these metrics is checked against a slow reference in tests/test_bootstrap.py."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from dvmap.cli import main
from dvmap.errors import DvmapError
from dvmap.evaluation.evaluate import evaluate
from dvmap.evaluation.metrics import METRICS, Evaluation
from dvmap.evaluation.predictions import check_predictions, prediction_table, read_predictions
from dvmap.io import write_parquet
from dvmap.schema import BREAKDOWN_COLUMNS, SUMMARY_COLUMNS

from .items_factory import make_items

K2 = ["yes", "no"]
K3 = ["a", "b", "c"]
DISTRIBUTION_METRICS = ("expected_accuracy", "brier", "ece", "jsd", "profile_wasserstein", "representativeness")


def table(rows) -> pd.DataFrame:
    """rows: (Country, question_id, options, answer_index, prediction_index, option_probs, counts)."""
    country, qid, options, gold, pred, probs, counts = zip(*rows)
    return pd.DataFrame({"Country": list(country), "question_id": list(qid), "options": [list(o) for o in options],
                         "answer_index": list(gold), "prediction_index": pd.array(list(pred), dtype="Int64"),
                         "option_probs": list(probs), "counts": list(counts)})


@pytest.fixture
def tiny() -> pd.DataFrame:
    return table([
        ("X", "q1", K3, 0, 0, [0.6, 0.3, 0.1], [3, 1, 1]),   # option_probs; 5 respondents
        ("X", "q1", K3, 1, 0, None, [1, 3, 2]),              # point mass on a; 6 respondents
        ("X", "q2", K2, 1, -1, None, [2, 2]),                # unparseable, no option_probs: no distribution
        ("X", "q2", K2, 0, 1, [0.5, 0.5], None),             # a tie at the top; no counts
    ])


def kl(p, q) -> float:
    return sum(a * math.log2(a / b) for a, b in zip(p, q) if a > 0)


def jsd(p, r) -> float:
    m = [(a + b) / 2 for a, b in zip(p, r)]
    return (kl(p, m) + kl(r, m)) / 2


JSD_1 = jsd([0.6, 0.3, 0.1], [0.6, 0.2, 0.2])
JSD_2 = jsd([1, 0, 0], [1 / 6, 1 / 2, 1 / 3])
# cumulative |P − R| over the first K − 1 options, / (K − 1): item 1 |0.9 − 0.8| / 2; item 2 (5/6 + 1/3) / 2
PW_1, PW_2 = 0.1 / 2, (5 / 6 + 1 / 3) / 2


def test_each_distribution_metric_by_hand(tiny):
    result = Evaluation(tiny, n_boot=50, seed=0).table()
    point = {m: v[0] for m, v in result.items()}
    # p(gold): 0.6, 0 (the point mass is on a, gold b), 0 (no distribution), 0.5
    assert point["expected_accuracy"] == pytest.approx((0.6 + 0 + 0 + 0.5) / 4)
    # Σ (p − onehot)²: 0.4² + 0.3² + 0.1² = 0.26; 1 + 1 = 2; no distribution: 1; 0.5² + 0.5² = 0.5
    assert point["brier"] == pytest.approx((0.26 + 2 + 1 + 0.5) / 4)
    # confidence / top-option accuracy: 0.6 / 1 (bin 6), 1 / 0 (bin 9), 0 / 0 (bin 0), 0.5 / half a tie (bin 5)
    assert point["ece"] == pytest.approx(abs(1 - 0.6) / 4 + abs(0 - 1) / 4 + 0 + abs(0.5 - 0.5) / 4)
    # the first two items have a distribution and at least 5 respondents; the third no distribution, the fourth no
    # counts
    assert point["jsd"] == pytest.approx((JSD_1 + JSD_2) / 2)
    assert point["profile_wasserstein"] == pytest.approx((PW_1 + PW_2) / 2)
    # (X, q1): mean predicted [0.8, 0.15, 0.05], respondents [4, 4, 3] / 11: (|0.8 − 4/11| + |0.95 − 8/11|) / 2;
    # (X, q2): no item with both a distribution and counts, so no cell
    assert point["representativeness"] == pytest.approx(1 - (0.8 - 4 / 11 + 0.95 - 8 / 11) / 2)
    # the label metrics are untouched by option_probs
    assert point["accuracy"] == pytest.approx(1 / 4) and point["unparseable_rate"] == pytest.approx(1 / 4)
    for metric in DISTRIBUTION_METRICS:
        value, low, high = result[metric]
        assert low <= high, metric


def test_min_respondents_selects_the_items_of_jsd_and_profile_wasserstein(tiny):
    six = Evaluation(tiny, n_boot=20, min_respondents=6).table()
    assert six["jsd"][0] == pytest.approx(JSD_2) and six["profile_wasserstein"][0] == pytest.approx(PW_2)
    none = Evaluation(tiny, n_boot=20, min_respondents=7).table()
    assert np.isnan(none["jsd"]).all() and np.isnan(none["profile_wasserstein"]).all()
    # representativeness pools a cell's respondents: no threshold
    assert none["representativeness"][0] == pytest.approx(Evaluation(tiny, n_boot=20).table()["representativeness"][0])


def test_jsd_is_in_bits_between_0_and_1():
    far = table([("X", "q", K2, 0, 0, [1.0, 0.0], [0, 9]), ("X", "q", K2, 0, 0, [0.5, 0.5], [3, 3])])
    result = Evaluation(far, n_boot=20).table()
    # disjoint supports: 1 bit; equal distributions: 0
    assert result["jsd"][0] == pytest.approx((1 + 0) / 2)
    assert result["profile_wasserstein"][0] == pytest.approx((1 + 0) / 2)


def test_point_masses_without_option_probs():
    """Without option_probs a prediction is a point mass: expected accuracy is the accuracy, Brier is 2 per wrong
    parsed item and 1 per unparseable one, and ECE is parsed share − accuracy."""
    frame = table([("X", "q", K3, 0, 0, None, None), ("X", "q", K3, 0, 2, None, None),
                   ("Y", "q", K3, 1, -1, None, None), ("Y", "q", K3, 2, 2, None, None)])
    result = Evaluation(frame, n_boot=20).table()
    assert result["expected_accuracy"][0] == pytest.approx(result["accuracy"][0]) == pytest.approx(0.5)
    assert result["brier"][0] == pytest.approx((0 + 2 + 1 + 0) / 4)
    assert result["ece"][0] == pytest.approx(3 / 4 - 2 / 4)
    for metric in ("jsd", "profile_wasserstein", "representativeness"):  # no counts: no respondent metric
        assert np.isnan(result[metric]).all(), metric


def test_representativeness_cells_are_per_country_and_question():
    # each country's mean prediction matches its own respondents exactly, not the pooled ones
    frame = table([("X", "q", K3, 0, 0, [0.5, 0.5, 0.0], [1, 1, 0]), ("X", "q", K3, 0, 0, [0.5, 0.5, 0.0], [3, 3, 0]),
                   ("Y", "q", K3, 2, 2, [0.0, 0.0, 1.0], [0, 0, 4])])
    assert Evaluation(frame, n_boot=20).table()["representativeness"][0] == pytest.approx(1.0)
    # the mean of the predictions, against the summed counts: [0.25, 0.75, 0] vs [0.75, 0.25, 0]: |0.25 − 0.75| / 2
    mixed = table([("X", "q", K3, 0, 0, [0.5, 0.5, 0.0], [3, 0, 0]), ("X", "q", K3, 0, 1, None, [0, 1, 0])])
    assert Evaluation(mixed, n_boot=20).table()["representativeness"][0] == pytest.approx(1 - 0.25)


def test_option_probs_are_normalised_and_bad_lists_ignored():
    scaled = table([("X", "q", K2, 0, 0, [2.0, 2.0], None)])
    assert Evaluation(scaled, n_boot=10).table()["expected_accuracy"][0] == pytest.approx(0.5)
    # a list of the wrong length (or negative, or all zero) is no distribution: the point mass on the prediction
    for bad in ([0.5, 0.25, 0.25], [-0.5, 1.5], [0.0, 0.0]):
        frame = table([("X", "q", K2, 0, 0, bad, None)])
        assert Evaluation(frame, n_boot=10).table()["expected_accuracy"][0] == 1.0, bad


def test_subsets_and_arrow_columns(tiny):
    """The breakdown's subsets and Arrow-backed list columns (as read from parquet) give the same values."""
    from dvmap.evaluation.predictions import counts_column, option_probs_column

    arrow = tiny.assign(option_probs=option_probs_column(tiny["option_probs"], len(tiny)),
                        counts=counts_column(tiny["counts"], len(tiny)))
    plain, typed = Evaluation(tiny, n_boot=30).table(), Evaluation(arrow, n_boot=30).table()
    for metric in METRICS:
        assert np.array_equal(plain[metric], typed[metric], equal_nan=True), metric
    q1 = (tiny["question_id"] == "q1").to_numpy()
    alone = Evaluation(tiny[q1], n_boot=30).table()
    within = Evaluation(tiny, n_boot=30).table(q1)
    for metric in METRICS:
        assert within[metric][0] == pytest.approx(alone[metric][0], nan_ok=True), metric


# --------------------------------------------------------------------------------------------------------------
# Prediction tables carry the respondents' counts
# --------------------------------------------------------------------------------------------------------------

def items_with_counts() -> pd.DataFrame:
    rows = [{"question_id": q, "options": K3, "answer_index": a, "Gender": g, "Country": c}
            for g, c in [("Female", "Xland"), ("Male", "Xland"), ("Female", "Yland"), ("Male", "Yland")]
            for q, a in (("Q1", 0), ("Q2", 1))]
    items = make_items(rows, "cross_demographic")
    items["counts"] = [[6, 1, 0], [0, 4, 4], [2, 1, 0], [1, 5, 0], [3, 3, 1], [0, 2, 1], [9, 0, 0], [1, 7, 1]]
    items["n"] = [float(sum(c)) for c in items["counts"]]
    return items


def test_prediction_table_copies_counts_and_n(tmp_path):
    items = items_with_counts()
    frame = prediction_table(items, items["answer_index"], "toy", "0.0", 0)
    assert frame["counts"].tolist() == items["counts"].tolist()
    assert frame["n"].tolist() == items["n"].tolist()
    assert frame["option_probs"].isna().all()
    write_parquet(frame, tmp_path / "p.parquet")
    back = read_predictions(tmp_path / "p.parquet", "evaluate")
    assert back["counts"].tolist() == items["counts"].tolist()
    # items without counts (an imported release): null counts, NaN n
    bare = prediction_table(items.drop(columns=["counts"]).assign(n=np.nan), items["answer_index"], "toy", "0.0", 0)
    assert bare["counts"].isna().all() and bare["n"].isna().all()


def test_check_predictions_accepts_files_without_counts_and_refuses_bad_lists(tmp_path):
    items = items_with_counts()
    frame = prediction_table(items, items["answer_index"], "toy", "0.0", 0,
                             option_probs=[[0.5, 0.25, 0.25]] * len(items))
    old = frame.drop(columns=["counts", "n"])
    write_parquet(old, tmp_path / "old.parquet")
    assert "counts" not in read_predictions(tmp_path / "old.parquet", "evaluate").columns
    bad_sum = frame.assign(option_probs=[[0.5, 0.25, 0.5]] + [[1.0, 0.0, 0.0]] * (len(items) - 1))
    with pytest.raises(DvmapError, match=r"row 0 .*option_probs .*summing to 1"):
        check_predictions(bad_sum, "x.parquet")
    bad_length = frame.assign(option_probs=[[1.0, 0.0, 0.0]] * (len(items) - 1) + [[0.5, 0.5]])
    with pytest.raises(DvmapError, match=r"row 7 .*option_probs"):
        check_predictions(bad_length, "x.parquet")
    bad_counts = frame.assign(counts=[[1, 2]] + [[1, 2, 3]] * (len(items) - 1))
    with pytest.raises(DvmapError, match=r"row 0 .*counts"):
        check_predictions(bad_counts, "x.parquet")


def test_evaluate_writes_the_distribution_metrics(tmp_path):
    items = items_with_counts()
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(3), size=len(items))
    model = prediction_table(items, probs.argmax(axis=1), "llm-score", "none", None, option_probs=list(probs))
    national = prediction_table(items, items["answer_index"], "national_label", "0.0", 0)
    paths = []
    for frame in (model, national):
        paths.append(str(tmp_path / f"{frame['model'].iloc[0]}.parquet"))
        write_parquet(frame, paths[-1])
    assert pq.read_schema(paths[0]).field("option_probs").type.value_type.bit_width == 64
    summary_path, breakdown_path = tmp_path / "summary.tsv", tmp_path / "breakdown.tsv"
    assert main(["-q", "evaluate", *paths, "--bootstrap", "50", "--min-respondents", "8", "-o", str(summary_path),
                 "--breakdown", str(breakdown_path)]) == 0
    summary = pd.read_csv(summary_path, sep="\t")
    assert list(summary.columns[:len(SUMMARY_COLUMNS)]) == list(SUMMARY_COLUMNS)
    summary = summary.set_index("model")
    expected = Evaluation(model, n_boot=50, unit="profile", min_respondents=8).table()
    row = summary.loc["llm-score"]
    for metric in DISTRIBUTION_METRICS:
        for column, value in zip((metric, f"{metric}_ci_low", f"{metric}_ci_high"), expected[metric]):
            assert row[column] == pytest.approx(value, rel=1e-5, abs=1e-6), column  # TSV: 6 digits
    counted = np.array([sum(c) for c in items["counts"]]) >= 8
    by_hand = np.mean([jsd(p, np.array(c) / sum(c)) for p, c, keep in zip(probs, items["counts"], counted) if keep])
    assert row["jsd"] == pytest.approx(by_hand, rel=1e-5)
    assert summary.loc["national_label", "expected_accuracy"] == 1.0
    breakdown = pd.read_csv(breakdown_path, sep="\t")
    assert list(breakdown.columns) == list(BREAKDOWN_COLUMNS)
    assert set(breakdown["metric"]) == set(METRICS)
    countries = breakdown[(breakdown["model"] == "llm-score") & (breakdown["group_type"] == "country")
                          & (breakdown["metric"] == "representativeness")]
    assert set(countries["group"]) == {"Xland", "Yland"} and countries["value"].between(0, 1).all()
    # the whole summary through dvmap summary: the new columns survive the merge
    assert main(["-q", "summary", str(summary_path), "-o", str(tmp_path / "merged.tsv")]) == 0
    merged = pd.read_csv(tmp_path / "merged.tsv", sep="\t").set_index("model")
    assert merged.loc["llm-score", "brier"] == pytest.approx(row["brier"])


def test_evaluate_function_passes_min_respondents():
    items = items_with_counts()
    frame = prediction_table(items, items["answer_index"], "toy", "0.0", 0)
    loose, _ = evaluate([frame], n_boot=20, min_respondents=1)
    strict, _ = evaluate([frame], n_boot=20, min_respondents=100)
    assert np.isfinite(loose.loc[0, "jsd"]) and np.isnan(strict.loc[0, "jsd"])
