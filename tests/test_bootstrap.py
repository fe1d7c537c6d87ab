"""Cluster bootstrap, the paired difference against the national label and the answer protocol in evaluation.

The bootstrap is checked against a slow, independent implementation: a plain loop over replicates that draws
clusters with the same random numbers, concatenates the drawn clusters' items and scores them from scratch
(Wasserstein distances with scipy.stats.wasserstein_distance, Jensen–Shannon divergences with
scipy.spatial.distance.jensenshannon, the calibration error bin by bin).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import wasserstein_distance

from dvmap.answers import SAMPLE_SEPARATOR, vote
from dvmap.errors import DvmapError
from dvmap.evaluation import metrics
from dvmap.evaluation.evaluate import evaluate
from dvmap.evaluation.metrics import METRICS, PAIRED, Evaluation, profile_keys, resolve_unit
from dvmap.evaluation.predictions import prediction_table

from .items_factory import make_items

K3 = ["a", "b", "c"]
K5 = ["1", "2", "3", "4", "5"]
AGREE = ["Agree strongly", "Agree", "Disagree", "Disagree strongly"]


# --------------------------------------------------------------------------------------------------------------
# The slow reference
# --------------------------------------------------------------------------------------------------------------

def distribution_by_hand(options, probs, prediction) -> np.ndarray | None:
    """An item's predicted distribution: its option_probs, else the point mass on its parsed prediction."""
    k = len(options)
    if isinstance(probs, (list, tuple, np.ndarray)) and len(probs) == k and np.sum(probs) > 0:
        return np.asarray(probs, dtype=float) / np.sum(probs)
    if prediction >= 0:
        return np.eye(k)[prediction]
    return None


def counts_by_hand(options, counts) -> np.ndarray | None:
    if isinstance(counts, (list, tuple, np.ndarray)) and len(counts) == len(options) and np.sum(counts) > 0:
        return np.asarray(counts, dtype=float)
    return None


def distribution_metrics_by_hand(sample: pd.DataFrame, min_respondents: int = 5) -> dict[str, float]:
    """The distribution metrics of a (resampled) item table, item by item and cell by cell."""
    none = [None] * len(sample)
    probs = sample["option_probs"].tolist() if "option_probs" in sample.columns else none
    counts = sample["counts"].tolist() if "counts" in sample.columns else none
    rows = list(zip(sample["Country"], sample["question_id"], sample["options"], sample["answer_index"],
                    sample["prediction_index"], probs, counts))
    expected, brier, confidence, top, jsd, spread = [], [], [], [], [], []
    cells: dict[tuple, list] = {}
    for country, qid, options, gold, prediction, p, c in rows:
        k = len(options)
        p = distribution_by_hand(options, p, prediction)
        c = counts_by_hand(options, c)
        q = np.zeros(k) if p is None else p
        expected.append(q[gold])
        brier.append(float(((q - np.eye(k)[gold]) ** 2).sum()))
        confidence.append(q.max())
        ties = np.flatnonzero(q == q.max())
        top.append(1.0 / len(ties) if q.max() > 0 and gold in ties else 0.0)
        if p is not None and c is not None:
            cells.setdefault((country, qid), []).append((p, c))
            if c.sum() >= min_respondents:
                jsd.append(jensenshannon(p, c / c.sum(), base=2) ** 2)
                spread.append(wasserstein_distance(np.arange(k), np.arange(k), p, c) / (k - 1))
    confidence, top = np.array(confidence), np.array(top)
    bins = np.minimum((confidence * 10).astype(int), 9)
    ece = sum((bins == b).mean() * abs(top[bins == b].mean() - confidence[bins == b].mean())
              for b in range(10) if (bins == b).any())
    representativeness = []
    for pairs in cells.values():
        k = len(pairs[0][0])
        mean = np.mean([p for p, _ in pairs], axis=0)
        total = np.sum([c for _, c in pairs], axis=0)
        representativeness.append(1 - wasserstein_distance(np.arange(k), np.arange(k), mean, total) / (k - 1))
    return {"expected_accuracy": np.mean(expected), "brier": np.mean(brier), "ece": ece,
            "jsd": np.mean(jsd) if jsd else np.nan, "profile_wasserstein": np.mean(spread) if spread else np.nan,
            "representativeness": np.mean(representativeness) if representativeness else np.nan}


def scores_by_hand(sample: pd.DataFrame, reference: np.ndarray | None = None) -> dict[str, float]:
    """Every metric of a (resampled) item table, item by item and cell by cell."""
    pred = sample["prediction_index"].to_numpy()
    gold = sample["answer_index"].to_numpy()
    k = np.array([len(o) for o in sample["options"]])
    parsed = pred >= 0
    correct = (pred == gold) & parsed
    out = {
        "accuracy": correct.mean(),
        "likert_consistency": np.where(parsed, 1 - np.abs(pred - gold) / (k - 1), 0.0).mean(),
        "unparseable_rate": 1 - parsed.mean(),
    }
    distances = []
    for _, cell in sample.groupby(["Country", "question_id"]):
        scale = len(cell["options"].iloc[0]) - 1
        p = cell["prediction_index"].to_numpy()
        p = p[p >= 0]
        g = cell["answer_index"].to_numpy()
        distances.append(1.0 if not len(p) else wasserstein_distance(g / scale, p / scale))
    out["wasserstein"] = float(np.mean(distances))
    out.update(distribution_metrics_by_hand(sample))
    if reference is not None:
        out[PAIRED] = (correct.astype(float) - ((reference == gold) & (reference >= 0))).mean()
    return out


def slow_bootstrap(items: pd.DataFrame, clusters, n_boot: int, seed: int, level: float = 0.95,
                   reference: np.ndarray | None = None) -> dict[str, tuple[float, float]]:
    """metric -> (ci_low, ci_high): clusters numbered in sorted order of their labels; each replicate draws as many
    cluster numbers as there are clusters, with replacement, from numpy's default_rng(seed), one replicate at a time."""
    clusters = np.asarray(clusters)
    labels = sorted(set(clusters.tolist()))
    members = [np.flatnonzero(clusters == label) for label in labels]
    items = items.reset_index(drop=True).assign(
        prediction_index=items["prediction_index"].astype("float").fillna(-1).astype(int).to_numpy())
    rng = np.random.default_rng(seed)
    replicates = []
    for _ in range(n_boot):
        drawn = rng.integers(0, len(labels), size=len(labels))
        rows = np.concatenate([members[d] for d in drawn])
        replicates.append(scores_by_hand(items.iloc[rows], None if reference is None else reference[rows]))
    alpha = (1 - level) / 2
    out = {}
    for m in replicates[0]:
        values = np.array([r[m] for r in replicates])
        values = values[np.isfinite(values)]
        out[m] = tuple(np.quantile(values, [alpha, 1 - alpha])) if len(values) else (np.nan, np.nan)
    return out


# --------------------------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------------------------

def correlated(n_profiles: int = 6, n_questions: int = 20) -> pd.DataFrame:
    """Profiles whose items are perfectly correlated: the first half answers everything right, the second half
    everything wrong (alternating one and two options off), in two countries."""
    rows = []
    for p in range(n_profiles):
        right = p < n_profiles // 2
        for q in range(n_questions):
            options = K3 if q % 2 else K5
            gold = q % len(options)
            pred = gold if right else (gold + 1 + p % 2) % len(options)
            rows.append({"profile_id": f"p{p}", "Country": "X" if p % 3 else "Y", "question_id": f"q{q:02d}",
                         "options": options, "answer_index": gold, "prediction_index": pred})
    return pd.DataFrame(rows)


def noisy(n_profiles: int = 12, n_questions: int = 6, seed: int = 0) -> pd.DataFrame:
    """Random predictions with unparseable ones, profile effects and two scales; option_probs on about half of the
    items (some unparseable ones among them), the respondents' counts (1 to 9 respondents) on most, some of them
    below 5 respondents."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_profiles):
        skill = rng.random()
        respondents = int(rng.integers(1, 10))
        for q in range(n_questions):
            options = K3 if q % 2 else K5
            k = len(options)
            gold = int(rng.integers(k))
            pred = gold if rng.random() < skill else int(rng.integers(k))
            probs = None
            if rng.random() < 0.5:
                probs = rng.dirichlet(np.ones(k) * 0.7)
                probs = (0.5 * probs + 0.5 * np.eye(k)[pred]).tolist()
            counts = None
            if rng.random() < 0.8:
                counts = (rng.multinomial(respondents - 1, np.ones(k) / k) + np.eye(k, dtype=int)[gold]).tolist()
            rows.append({"profile_id": f"p{p:02d}", "Country": ["X", "Y", "Z"][p % 3], "question_id": f"q{q}",
                         "options": options, "answer_index": gold,
                         "prediction_index": -1 if rng.random() < 0.1 else pred,
                         "option_probs": probs, "counts": counts})
    return pd.DataFrame(rows)


def benchmark_items(split: str, n_profiles: int = 4, questions=("q1", "q2", "q3")) -> pd.DataFrame:
    """A small item table in the full schema: profiles differ by income and gender, two countries."""
    incomes = ["Low income", "High income"]
    genders = ["Female", "Male", "Other"]
    rows = []
    for p in range(n_profiles):
        for i, qid in enumerate(questions):
            rows.append({"Country": "Xland" if p % 2 else "Yland", "Income Bracket": incomes[p % 2],
                         "Gender": genders[p % 3], "question_id": qid, "options": K3, "answer_index": i % 3})
    return make_items(rows, split)


def predictions(items: pd.DataFrame, index, model: str, seed: int | None = 0, threshold: str = "0.0",
                raw_output=None) -> pd.DataFrame:
    return prediction_table(items, np.asarray(index), model, threshold, seed, raw_output=raw_output)


# --------------------------------------------------------------------------------------------------------------
# Cluster bootstrap
# --------------------------------------------------------------------------------------------------------------

def test_cluster_bootstrap_is_wider_than_the_item_bootstrap_on_correlated_items():
    items = correlated()
    by_item = Evaluation(items, n_boot=400, seed=1, unit="item").table()
    by_profile = Evaluation(items, n_boot=400, seed=1, unit="profile").table()
    for metric in METRICS:  # the point estimate ignores the unit (the distribution metrics without counts: NaN)
        points = by_item[metric][0], by_profile[metric][0]
        assert points[0] == points[1] or np.isnan(points).all(), metric
    assert by_profile["accuracy"][0] == pytest.approx(0.5)
    item_width = by_item["accuracy"][2] - by_item["accuracy"][1]
    profile_width = by_profile["accuracy"][2] - by_profile["accuracy"][1]
    # 120 items: about ±2·sqrt(.25/120) ≈ ±0.09; 6 profiles: about ±2·sqrt(.25/6) ≈ ±0.4
    assert item_width < 0.25 < 0.5 < profile_width


@pytest.mark.parametrize("unit, column", [("profile", "profile_id"), ("question", "question_id"), ("item", None)])
def test_cluster_bootstrap_equals_the_slow_reference(unit, column):
    items = noisy()
    fast = Evaluation(items, n_boot=150, seed=7, unit=unit).table()
    clusters = np.arange(len(items)) if column is None else items[column]
    slow = slow_bootstrap(items, clusters, n_boot=150, seed=7)
    for metric in METRICS:
        assert fast[metric][1:] == pytest.approx(slow[metric], abs=1e-12), metric


def test_correlated_items_match_the_slow_reference():
    items = correlated()
    fast = Evaluation(items, n_boot=200, seed=3, unit="profile").table()
    slow = slow_bootstrap(items, items["profile_id"], n_boot=200, seed=3)
    for metric in METRICS:
        assert fast[metric][1:] == pytest.approx(slow[metric], abs=1e-12, nan_ok=True), metric


def test_small_blocks_give_the_same_intervals(monkeypatch):
    """Replicates are drawn in blocks; the block size changes neither the draws nor the intervals."""
    import dvmap.evaluation.metrics

    items = noisy(seed=2)
    whole = Evaluation(items, n_boot=100, seed=4, unit="profile").tables([None, items["Country"].eq("X").to_numpy()])
    monkeypatch.setattr(dvmap.evaluation.metrics, "BLOCK_ELEMENTS", 30)  # 2 replicates per block, 1 per Wasserstein block
    blocks = Evaluation(items, n_boot=100, seed=4, unit="profile").tables([None, items["Country"].eq("X").to_numpy()])
    monkeypatch.setattr(dvmap.evaluation.metrics, "SPAN_BYTES", 1)  # the sums' matrices made again every block
    spans = Evaluation(items, n_boot=100, seed=4, unit="profile").tables([None, items["Country"].eq("X").to_numpy()])
    for table, same, again in zip(whole, blocks, spans):
        for metric in METRICS:
            assert again[metric] == pytest.approx(same[metric], abs=1e-12), metric
    for table, same in zip(whole, blocks):
        for metric in METRICS:  # equal up to the rounding of sums over differently shaped blocks
            assert np.isfinite(table[metric]).all(), metric
            assert table[metric] == pytest.approx(same[metric], abs=1e-12), metric


def test_subsets_use_the_same_replicate_weights():
    """A subset's interval is the slow bootstrap of the whole table restricted to the subset's items."""
    items = noisy(seed=5)
    mask = items["question_id"].isin(["q0", "q1"]).to_numpy()
    fast = Evaluation(items, n_boot=120, seed=2, unit="profile").table(mask)
    clusters = np.sort(items["profile_id"].unique())
    rng = np.random.default_rng(2)
    accuracy = []
    for _ in range(120):
        drawn = rng.integers(0, len(clusters), size=len(clusters))
        sample = pd.concat([items[(items["profile_id"] == clusters[d]).to_numpy() & mask] for d in drawn])
        accuracy.append(scores_by_hand(sample)["accuracy"])
    assert fast["accuracy"][1:] == pytest.approx(tuple(np.quantile(accuracy, [0.025, 0.975])), abs=1e-12)


def breakdown_like_subsets(items: pd.DataFrame) -> dict[str, np.ndarray]:
    """Subsets of every kind the bootstrap treats apart: whole cells and whole profiles (a country), whole cells
    only (a question), whole profiles only (profiles by a profile-level 'attribute', two disjoint values), neither
    (a mask over single items), an empty one, and whole profiles of a country that share the country's product
    (the country read off the whole table's cells, the rest of the profiles in no subset of that product)."""
    number = items["profile_id"].str.slice(1).astype(int)
    return {"country": (items["Country"] == "Y").to_numpy(), "question": (items["question_id"] == "q1").to_numpy(),
            "attribute a": (number % 4 == 0).to_numpy(), "attribute b": (number % 4 != 0).to_numpy(),
            "single items": (np.arange(len(items)) % 5 == 1), "empty": np.zeros(len(items), dtype=bool),
            "half a country": ((items["Country"] == "X") & (number % 2 == 0)).to_numpy()}


@pytest.mark.parametrize("precision", ["double", "single"])
@pytest.mark.parametrize("unit, column", [("profile", "profile_id"), ("question", "question_id"), ("item", None)])
def test_every_kind_of_subset_equals_the_slow_reference(unit, column, precision, monkeypatch):
    """Each subset's metrics, distribution metrics included, are the slow bootstrap of the whole table's cluster
    draws restricted to the subset's items, whichever way the fast path gets its sums: exactly with double-precision
    breakdown sums, within single precision's rounding with the default (the cell metrics of subsets that do not
    hold whole cells)."""
    if precision == "double":
        monkeypatch.setattr(metrics, "BREAKDOWN_FLOAT", np.float64)
    cell_tolerance = 1e-12 if precision == "double" else 1e-6
    items = noisy(n_profiles=16, seed=11)
    subsets = breakdown_like_subsets(items)
    n_boot = 80
    fast = Evaluation(items, n_boot=n_boot, seed=9, unit=unit).tables(list(subsets.values()))
    clusters = np.arange(len(items)) if column is None else items[column].to_numpy()
    labels = sorted(set(clusters.tolist()))
    members = [np.flatnonzero(clusters == label) for label in labels]
    rng = np.random.default_rng(9)
    draws = [rng.integers(0, len(labels), size=len(labels)) for _ in range(n_boot)]
    for (name, mask), table in zip(subsets.items(), fast):
        chosen = items[mask]
        if not len(chosen):
            assert all(np.isnan(table[m][0]) for m in METRICS), name
            continue
        point = scores_by_hand(chosen)
        replicates = []
        for drawn in draws:
            rows = np.concatenate([members[d][mask[members[d]]] for d in drawn])
            replicates.append(scores_by_hand(items.iloc[rows]) if len(rows) else None)
        for metric in METRICS:
            values = np.array([np.nan if r is None else r[metric] for r in replicates])
            values = values[np.isfinite(values)]
            assert table[metric][0] == pytest.approx(point[metric], abs=1e-12, nan_ok=True), (name, metric)
            if len(values) and np.isfinite(point[metric]):
                tolerance = cell_tolerance if metric in ("wasserstein", "representativeness") else 1e-12
                assert table[metric][1:] == pytest.approx(tuple(np.quantile(values, [0.025, 0.975])),
                                                          abs=tolerance), (name, metric)
            else:
                assert np.isnan(table[metric][1:]).all(), (name, metric)


@pytest.mark.parametrize("share, cached", [(0.0, 1 << 20), (2.0, 1 << 20), (2.0, 0)])
def test_layouts_of_the_cell_sums_give_the_same_intervals(share, cached, monkeypatch):
    """Whole-profile subsets share one product whose rows are every member's cells (share 0) or only the cells
    they have (share 2 forces it), its rows made once or per block (cached 0): the same metrics either way."""
    import dvmap.evaluation.metrics

    items = noisy(n_profiles=16, seed=12)
    subsets = list(breakdown_like_subsets(items).values())
    expected = Evaluation(items, n_boot=60, seed=1, unit="profile").tables(subsets)
    monkeypatch.setattr(dvmap.evaluation.metrics, "COMPACT_SHARE", share)
    monkeypatch.setattr(dvmap.evaluation.metrics, "CACHED_ENTRIES", cached)
    evaluation = Evaluation(items, n_boot=60, seed=1, unit="profile")
    plan = dvmap.evaluation.metrics._Plan(evaluation, [np.flatnonzero(m) for m in subsets])
    layouts = [("layout" in f, "indices" in f) for f in plan.families if f["cells"]]
    assert layouts == [(share > 1, share > 1 and cached > 0)] * 2
    got = evaluation.tables(subsets)
    for table, same in zip(expected, got):
        for metric in METRICS:
            assert table[metric] == pytest.approx(same[metric], abs=1e-12, nan_ok=True), metric


def test_cluster_order_does_not_depend_on_row_order():
    items = noisy(seed=6)
    shuffled = items.sample(frac=1.0, random_state=1)
    first = Evaluation(items, n_boot=80, seed=0, unit="profile").table()
    again = Evaluation(shuffled, n_boot=80, seed=0, unit="profile").table()
    for metric in METRICS:
        assert first[metric] == pytest.approx(again[metric], abs=1e-12), metric


def test_auto_unit_is_question_on_cross_value_and_profile_elsewhere():
    assert resolve_unit("auto", "cross_value") == "question"
    for split in ("cross_demographic", "cross_country", "flip", "train", "dev", "test"):
        assert resolve_unit("auto", split) == "profile"
    for unit in ("item", "profile", "question"):
        assert resolve_unit(unit, "cross_value") == unit
    with pytest.raises(DvmapError, match="bootstrap_unit"):
        resolve_unit("country", "dev")


def test_evaluate_records_the_unit_of_each_split():
    frames = []
    for split in ("cross_demographic", "cross_country", "cross_value"):
        items = benchmark_items(split)
        frames.append(predictions(items, (items["answer_index"] + np.arange(len(items)) % 2) % 3, "toy"))
    summary, breakdown = evaluate(frames, n_boot=60, seed=0)
    units = dict(zip(summary["split"], summary["bootstrap_unit"]))
    assert units == {"cross_demographic": "profile", "cross_country": "profile", "cross_value": "question"}
    assert set(zip(breakdown["split"], breakdown["bootstrap_unit"])) == set(units.items())
    forced, _ = evaluate(frames, n_boot=60, seed=0, unit="item")
    assert set(forced["bootstrap_unit"]) == {"item"}
    # the cross_value interval is the question bootstrap
    cross_value = frames[2]
    direct = Evaluation(cross_value, n_boot=60, seed=0, unit="question").table()["accuracy"]
    row = summary.set_index("split").loc["cross_value"]
    assert (row["accuracy"], row["accuracy_ci_low"], row["accuracy_ci_high"]) == direct


def test_profile_clusters_come_from_item_ids_flipped_items_included():
    """Prediction tables carry item_id (PROFILE:QUESTION, '|flip' for flipped items) but no profile_id."""
    table = pd.DataFrame({"item_id": ["p1:Q1", "p1:Q2", "p2:Q1", "p1:Q1|flip", "p2:Q2|flip"],
                          "question_id": ["Q1", "Q2", "Q1", "Q1", "Q2"]})
    assert profile_keys(table).tolist() == ["p1", "p1", "p2", "p1", "p2"]
    odd = table.assign(item_id=["x", "y", "z", "w", "v"], Country=["A", "A", "B", "A", "B"])
    assert profile_keys(odd).tolist() == ["A", "A", "B", "A", "B"]  # falls back on the profile attributes


def test_breakdown_group_of_all_items_has_the_summary_interval():
    items = benchmark_items("cross_demographic", n_profiles=6)
    frame = predictions(items, (items["answer_index"] + (np.arange(len(items)) % 3 == 0)) % 3, "toy")
    summary, breakdown = evaluate([frame], n_boot=80, seed=0)
    everyone = breakdown[(breakdown["group_type"] == "attribute:Religion") & (breakdown["metric"] == "accuracy")]
    assert len(everyone) == 1 and everyone["n_items"].iloc[0] == len(items)
    row = summary.iloc[0]
    assert tuple(everyone[["value", "ci_low", "ci_high"]].iloc[0]) == (
        row["accuracy"], row["accuracy_ci_low"], row["accuracy_ci_high"])


def test_evaluate_is_reproducible():
    items = benchmark_items("cross_demographic", n_profiles=6)
    frame = predictions(items, (items["answer_index"] + np.arange(len(items)) % 2) % 3, "toy")
    first = evaluate([frame], n_boot=50, seed=3)
    again = evaluate([frame], n_boot=50, seed=3)
    pd.testing.assert_frame_equal(first[0], again[0])
    pd.testing.assert_frame_equal(first[1], again[1])


# --------------------------------------------------------------------------------------------------------------
# Paired difference against the national label
# --------------------------------------------------------------------------------------------------------------

def test_paired_difference_of_identical_predictions_is_exactly_zero():
    items = benchmark_items("cross_demographic", n_profiles=6)
    index = (items["answer_index"] + np.arange(len(items)) % 2) % 3
    summary, _ = evaluate([predictions(items, index, "toy")], n_boot=100, seed=0,
                          references=[predictions(items, index, "national_label")])
    row = summary.iloc[0]
    assert (row[PAIRED], row[f"{PAIRED}_ci_low"], row[f"{PAIRED}_ci_high"]) == (0.0, 0.0, 0.0)
    assert row["reference"] == "national_label.tau~0.0.seed~0"


def test_paired_difference_of_a_better_predictor_is_above_zero():
    items = benchmark_items("cross_demographic", n_profiles=6)
    gold = items["answer_index"].to_numpy()
    wrong = (gold + 1) % 3
    reference = np.where(np.arange(len(items)) % 2 == 0, gold, wrong)  # right on half of the items
    summary, _ = evaluate([predictions(items, gold, "toy")], n_boot=100, seed=0,
                          references=[predictions(items, reference, "national_label")])
    row = summary.iloc[0]
    assert row[PAIRED] == pytest.approx(0.5)  # 18 items, the model gains on the 9 the reference gets wrong
    assert 0 < row[f"{PAIRED}_ci_low"] <= 0.5 <= row[f"{PAIRED}_ci_high"] <= 1
    assert row["accuracy"] - 0.5 == pytest.approx(row[PAIRED])


def test_paired_difference_by_hand_and_from_the_same_resamples():
    items = noisy(seed=8)
    rng = np.random.default_rng(0)
    reference = np.where(rng.random(len(items)) < 0.5, items["answer_index"], -1)
    gold, pred = items["answer_index"].to_numpy(), items["prediction_index"].to_numpy()
    by_hand = np.mean((pred == gold).astype(float) - (reference == gold))
    table = Evaluation(items, n_boot=150, seed=5, unit="profile", reference_index=reference).table()
    assert table[PAIRED][0] == pytest.approx(by_hand)
    assert table[PAIRED][0] == pytest.approx(table["accuracy"][0] - np.mean(reference == gold))
    slow = slow_bootstrap(items, items["profile_id"], n_boot=150, seed=5, reference=reference)
    assert table[PAIRED][1:] == pytest.approx(slow[PAIRED], abs=1e-12)
    assert table["accuracy"][1:] == pytest.approx(slow["accuracy"], abs=1e-12)  # unchanged by the reference


def test_national_label_among_the_predictions_is_the_reference():
    items = benchmark_items("cross_country", n_profiles=4)
    gold = items["answer_index"].to_numpy()
    model = predictions(items, gold, "toy")
    national = predictions(items, (gold + 1) % 3, "national_label")
    summary, _ = evaluate([model, national], n_boot=40, seed=0)
    rows = summary.set_index("model")
    assert rows.loc["toy", PAIRED] == 1.0
    assert rows.loc["national_label", PAIRED] == 0.0  # the national label is its own reference
    without, _ = evaluate([model], n_boot=40, seed=0)
    assert without[[PAIRED, f"{PAIRED}_ci_low", f"{PAIRED}_ci_high"]].isna().all().all()
    assert without["reference"].iloc[0] == ""


def test_reference_of_the_same_threshold_is_preferred_and_a_zero_shot_takes_the_first():
    items = benchmark_items("cross_demographic", n_profiles=4)
    gold = items["answer_index"].to_numpy()
    refs = [predictions(items, gold, "national_label", threshold="0.0"),
            predictions(items, (gold + 1) % 3, "national_label", threshold="majority")]
    frames = [predictions(items, gold, "gbt", threshold="majority"), predictions(items, gold, "llm", None, "none")]
    summary, _ = evaluate(frames, n_boot=30, seed=0, references=refs)
    rows = summary.set_index("model")
    assert rows.loc["gbt", "reference"] == "national_label.tau~majority.seed~0" and rows.loc["gbt", PAIRED] == 1
    assert rows.loc["llm", "reference"] == "national_label.tau~0.0.seed~0" and rows.loc["llm", PAIRED] == 0


def test_a_reference_missing_items_is_an_error_naming_it():
    items = benchmark_items("cross_demographic", n_profiles=4)
    gold = items["answer_index"].to_numpy()
    partial = predictions(items.iloc[:-2], gold[:-2], "national_label")
    with pytest.raises(DvmapError, match=r"nl\.parquet.*2 of the 12"):
        evaluate([predictions(items, gold, "toy")], n_boot=10, references={"nl.parquet": partial})


def test_mean_across_seeds_has_the_mean_paired_difference():
    items = benchmark_items("cross_demographic", n_profiles=4)
    gold = items["answer_index"].to_numpy()
    half = np.where(np.arange(len(items)) % 2 == 0, gold, (gold + 1) % 3)
    frames = [predictions(items, gold, "toy", 0), predictions(items, half, "toy", 1)]
    summary, _ = evaluate(frames, n_boot=30, seed=0, references=[predictions(items, half, "national_label")])
    rows = summary.set_index("seed")
    assert rows.loc["0", PAIRED] == pytest.approx(0.5) and rows.loc["1", PAIRED] == 0
    assert rows.loc["mean", PAIRED] == pytest.approx(0.25)
    assert rows.loc["mean", f"{PAIRED}_sd"] == pytest.approx(np.std([0.5, 0.0], ddof=1))
    assert rows.loc["mean", "protocol"] == "lenient" and rows.loc["mean", "bootstrap_unit"] == "profile"


# --------------------------------------------------------------------------------------------------------------
# Answer protocol
# --------------------------------------------------------------------------------------------------------------

def test_vote_under_both_protocols():
    samples = ["<answer>Agree</answer>", "agree", "<answer>disagree</answer>"]
    assert vote(samples, AGREE, "lenient") == 1        # Agree twice, Disagree once
    assert vote(samples, AGREE, "strict") == 1         # only the first parses (case-sensitive, tags required)
    assert vote(["agree", "Disagree"], AGREE, "strict") == -1
    assert vote(["Disagree", "Agree"], AGREE, "lenient") == 1  # a tie goes to the earlier option
    assert vote(SAMPLE_SEPARATOR.join(["Disagree", "<answer>Disagree</answer>"]), AGREE) == 2
    assert vote([], AGREE) == -1 and vote(None, AGREE) == -1


def test_strict_and_lenient_reparse_the_raw_outputs():
    items = make_items([{"question_id": "Q1", "options": AGREE, "answer_index": 1,
                         "Gender": g} for g in ("Female", "Male", "Other", "Unknown")], "cross_demographic")
    raw = ["<answer>Agree</answer>",                                  # both: Agree (right)
           "I would say Agree",                                       # lenient only: no tags
           "<answer>agree</answer>",                                  # lenient only: case
           SAMPLE_SEPARATOR.join(["<answer>Disagree</answer>", "agree", "Agree"])]  # lenient Agree 2:1; strict Disagree
    stored = [2, 2, 2, 2]  # what predict stored is ignored where raw_output exists
    llm = predictions(items, stored, "llm", raw_output=raw)
    baseline = predictions(items, [1, 1, -1, 1], "baseline")  # no raw_output: kept as it is
    lenient, _ = evaluate([llm, baseline], n_boot=20, protocol="lenient")
    strict, _ = evaluate([llm, baseline], n_boot=20, protocol="strict")
    lenient, strict = lenient.set_index("model"), strict.set_index("model")
    assert lenient.loc["llm", "accuracy"] == 1.0 and lenient.loc["llm", "unparseable_rate"] == 0
    assert strict.loc["llm", "accuracy"] == 0.25 and strict.loc["llm", "unparseable_rate"] == 0.5
    for table in (lenient, strict):
        assert table.loc["baseline", "accuracy"] == 0.75 and table.loc["baseline", "unparseable_rate"] == 0.25
    assert set(lenient["protocol"]) == {"lenient"} and set(strict["protocol"]) == {"strict"}
    # prediction_index as a float column with NaN (as read from some files): the same
    as_float = llm.assign(prediction_index=llm["prediction_index"].astype(float))
    again, _ = evaluate([as_float], n_boot=20, protocol="strict")
    assert again.loc[0, "accuracy"] == 0.25
    with pytest.raises(DvmapError, match="protocol"):
        evaluate([llm], n_boot=20, protocol="loose")
