"""Baselines on hand-built corpora with known answers, counterfactual flips, and the national-label claim on DVMap's
released dev split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dvmap import ATTRIBUTES
from dvmap.survey.archetypes import profile_ids
from dvmap.evaluation.baselines import KINDS, make_baseline
from dvmap.survey.catalog import load_catalog
from dvmap.errors import DvmapError
from dvmap.evaluation.evaluate import evaluate
from dvmap.evaluation.flips import flip_items, flip_rates
from dvmap.evaluation.predictions import prediction_table
from dvmap.schema import FLIP_SPLIT, ITEM_COLUMNS, attribute_columns
from dvmap.corpus.release import import_part

from .conftest import RELEASE, require_shared
from .items_factory import make_items

# --------------------------------------------------------------------------------------------------------------
# Fixtures: item tables in the full schema, built from rows of (attribute overrides, question, answer)
# --------------------------------------------------------------------------------------------------------------

K3 = ["Yes", "Maybe", "No"]
K4 = ["Very", "Rather", "Not very", "Not at all"]
K7 = [str(i) for i in range(1, 8)]
QUESTIONS = {"q1": ("SOCIAL", K3), "q2": ("SOCIAL", K4), "q3": ("POLITICS", K3), "q_new": ("POLITICS", K3),
             "q_wide": ("POLITICS", K7)}

def item_table(rows, split: str = "train") -> pd.DataFrame:
    """rows: dicts with question_id, answer_index and any attribute overrides -> an item table (ITEM_COLUMNS)."""
    full = [{**r, "category": QUESTIONS[r["question_id"]][0], "options": QUESTIONS[r["question_id"]][1]} for r in rows]
    return make_items(full, split, country="Aland", n=5.0)


def answers(country: str, qid: str, values: list[int], start: int = 0) -> list[dict]:
    """One row per answer, each from a distinct profile of ``country`` (Occupation occ<i>)."""
    return [{"Country": country, "Occupation": f"occ{start + i}", "question_id": qid, "answer_index": v}
            for i, v in enumerate(values)]


@pytest.fixture(scope="module")
def corpus() -> pd.DataFrame:
    """Majorities known by construction.

    q1 (K=3): Aland 0,0,0; Bland 1,1,1,1 -> global 1 (4 vs 3), national Aland 0, Bland 1.
    q2 (K=4): Aland 3,3; Bland 2,2 -> global tie 2 vs 3 -> 2 (earlier option); national Aland 3, Bland 2.
    q3 (K=3): Aland 2,0 (tie -> 0); Bland 2,2,2,2 -> global 2.
    Option prior for K=3 (q1 and q3 pooled): 0 x4, 1 x4, 2 x5 -> 2 (not the default 0).
    """
    rows = (answers("Aland", "q1", [0, 0, 0]) + answers("Bland", "q1", [1, 1, 1, 1])
            + answers("Aland", "q2", [3, 3]) + answers("Bland", "q2", [2, 2])
            + answers("Aland", "q3", [2, 0]) + answers("Bland", "q3", [2, 2, 2, 2]))
    return item_table(rows, "train")


@pytest.fixture(scope="module")
def targets() -> pd.DataFrame:
    """Evaluation items: seen and unseen countries, seen and unseen questions (fresh profiles: occ100+)."""
    rows = []
    for country in ["Aland", "Bland", "Cland"]:
        for qid in ["q1", "q2", "q3", "q_new", "q_wide"]:
            rows.append({"Country": country, "Occupation": "occ100", "question_id": qid, "answer_index": 0})
    return item_table(rows, "test")


def predict(kind: str, train: pd.DataFrame, items: pd.DataFrame, seed: int = 0, k: int = 5) -> pd.DataFrame:
    out = make_baseline(kind, seed, k).fit(train).predict(items)
    assert list(out.columns) == ["prediction_index", "fallback"]
    assert len(out) == len(items)
    return out.assign(Country=items["Country"].to_numpy(), question_id=items["question_id"].to_numpy())


def by_key(out: pd.DataFrame) -> dict:
    """(country, question) -> (prediction_index, fallback), a missing fallback (None/NaN/NA) as None."""
    return {(c, q): (int(p), None if pd.isna(f) else f) for c, q, p, f in
            zip(out["Country"], out["question_id"], out["prediction_index"], out["fallback"])}


# --------------------------------------------------------------------------------------------------------------
# Majority baselines
# --------------------------------------------------------------------------------------------------------------

def test_global_majority(corpus, targets):
    got = by_key(predict("global_majority", corpus, targets))
    for country in ["Aland", "Bland", "Cland"]:
        assert got[(country, "q1")] == (1, None)
        assert got[(country, "q2")] == (2, None), "a tie goes to the earlier option"
        assert got[(country, "q3")] == (2, None)
        assert got[(country, "q_new")] == (2, "option_prior"), "unseen K=3 question: most frequent K=3 position"
        assert got[(country, "q_wide")] == (0, "option_prior"), "no training question with K=7: option 0"


def test_national_label(corpus, targets):
    got = by_key(predict("national_label", corpus, targets))
    assert got[("Aland", "q1")] == (0, None)
    assert got[("Bland", "q1")] == (1, None)
    assert got[("Aland", "q2")] == (3, None)
    assert got[("Bland", "q2")] == (2, None)
    assert got[("Aland", "q3")] == (0, None), "a national tie goes to the earlier option"
    assert got[("Bland", "q3")] == (2, None)
    # unseen country -> global majority
    assert got[("Cland", "q1")] == (1, "global_majority")
    assert got[("Cland", "q2")] == (2, "global_majority")
    assert got[("Cland", "q3")] == (2, "global_majority")
    # unseen question -> option prior, whatever the country
    for country in ["Aland", "Bland", "Cland"]:
        assert got[(country, "q_new")] == (2, "option_prior")
        assert got[(country, "q_wide")] == (0, "option_prior")


def test_majority_does_not_depend_on_item_order_or_index(corpus, targets):
    shuffled = targets.sample(frac=1.0, random_state=1)
    shuffled.index = np.arange(100, 100 + len(shuffled))[::-1]  # a non-default index
    for kind in ["global_majority", "national_label"]:
        assert by_key(predict(kind, corpus, shuffled)) == by_key(predict(kind, corpus, targets)), kind


def test_prediction_index_is_within_options(corpus, targets):
    for kind in KINDS:
        out = predict(kind, corpus, targets, k=3)
        k = targets["options"].map(len).to_numpy()
        index = out["prediction_index"].to_numpy()
        assert ((index >= 0) & (index < k)).all(), kind


def test_unknown_kind_and_empty_train(corpus):
    with pytest.raises(DvmapError, match="unknown baseline 'oracle'"):
        make_baseline("oracle")
    with pytest.raises(DvmapError, match="empty"):
        make_baseline("national_label").fit(corpus.iloc[:0])


# --------------------------------------------------------------------------------------------------------------
# Uniform
# --------------------------------------------------------------------------------------------------------------

def test_uniform_is_seeded_and_covers_all_options():
    rows = [{"Occupation": f"occ{i}", "question_id": "q2" if i % 2 else "q_wide"} for i in range(400)]
    items = item_table(rows, "test")
    train = item_table(answers("Aland", "q1", [0, 1]))
    first = make_baseline("uniform", seed=3).fit(train).predict(items)
    again = make_baseline("uniform", seed=3).fit(train).predict(items)
    other = make_baseline("uniform", seed=4).fit(train).predict(items)
    np.testing.assert_array_equal(first["prediction_index"], again["prediction_index"])
    assert (first["prediction_index"].to_numpy() != other["prediction_index"].to_numpy()).any()
    assert first["fallback"].isna().all()
    index = first["prediction_index"].to_numpy()
    for qid, k in [("q2", 4), ("q_wide", 7)]:
        chosen = index[(items["question_id"] == qid).to_numpy()]
        assert set(chosen) == set(range(k)), qid
        # roughly uniform: 200 draws over k options, each option well away from 0 and from all of them
        assert np.bincount(chosen, minlength=k).max() < 200 * 2.5 / k


# --------------------------------------------------------------------------------------------------------------
# Nearest profiles and boosted trees
# --------------------------------------------------------------------------------------------------------------

KNN_PROFILES = [
    {"Gender": "Female", "Occupation": "occ0", "Religion": "rel0", "Income Bracket": "Low income"},
    {"Gender": "Male", "Occupation": "occ1", "Religion": "rel1", "Income Bracket": "High income"},
    {"Gender": "Female", "Occupation": "occ2", "Religion": "rel2", "Income Bracket": "Middle income"},
    {"Gender": "Male", "Occupation": "occ3", "Religion": "rel3", "Income Bracket": "Low income"},
    {"Gender": "Female", "Occupation": "occ4", "Religion": "rel4", "Income Bracket": "High income"},
    {"Gender": "Male", "Occupation": "occ5", "Religion": "rel5", "Income Bracket": "Middle income"},
]
# per profile: q1 answers; the majority of q1 is 2 (x3), so a knn that fell back to it would show
KNN_ANSWERS = [0, 1, 2, 1, 2, 2]


@pytest.fixture(scope="module")
def knn_train() -> pd.DataFrame:
    rows = [{**p, "question_id": "q1", "answer_index": a} for p, a in zip(KNN_PROFILES, KNN_ANSWERS)]
    rows += [{**p, "question_id": "q3", "answer_index": 1} for p in KNN_PROFILES]  # one answer only
    return item_table(rows, "train")


def test_knn_k1_returns_the_identical_profile_answer(knn_train):
    items = item_table([{**p, "question_id": "q1"} for p in reversed(KNN_PROFILES)], "test")
    out = predict("knn", knn_train, items, k=1)
    assert out["prediction_index"].tolist() == list(reversed(KNN_ANSWERS))
    assert out["fallback"].isna().all()


def test_knn_k1_nearest_profile_in_hamming_distance(knn_train):
    # profile 1 with another gender: distance 1 to profile 1, at least 3 to every other profile
    near_1 = {**KNN_PROFILES[1], "Gender": "Female"}
    near_3 = {**KNN_PROFILES[3], "Income Bracket": "High income"}
    items = item_table([{**near_1, "question_id": "q1"}, {**near_3, "question_id": "q1"}], "test")
    out = predict("knn", knn_train, items, k=1)
    assert out["prediction_index"].tolist() == [KNN_ANSWERS[1], KNN_ANSWERS[3]]


def test_knn_single_answer_question_and_unseen_question(knn_train):
    items = item_table([{**KNN_PROFILES[0], "question_id": "q3"}, {**KNN_PROFILES[0], "question_id": "q_new"}],
                       "test")
    out = predict("knn", knn_train, items, k=1)
    assert out["prediction_index"].tolist()[0] == 1
    assert pd.isna(out["fallback"].iloc[0]), "one answer in training: the majority is the model, no fallback"
    assert out["fallback"].iloc[1] == "option_prior"


def income_rule_rows(n: int, seed: int, start: int = 0) -> list[dict]:
    """q1: High income -> option 0, Low income -> option 2; every other attribute random noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        income = "High income" if i % 2 else "Low income"
        rows.append({"Income Bracket": income, "Occupation": f"occ{start + i}",
                     "Gender": str(rng.choice(["Female", "Male"])),
                     "Religion": str(rng.choice(["rel0", "rel1", "rel2"])),
                     "Life Stage": str(rng.choice(["Young", "Adulthood", "Older"])),
                     "Country": str(rng.choice(["Aland", "Bland"])),
                     "question_id": "q1", "answer_index": 0 if income == "High income" else 2})
    return rows


def test_gbt_learns_a_rule_on_one_attribute():
    train = item_table(income_rule_rows(160, seed=0), "train")
    test = item_table(income_rule_rows(40, seed=1, start=1000), "test")  # unseen occupations
    out = predict("gbt", train, test, seed=0)
    expected = np.where(test["Income Bracket"] == "High income", 0, 2)
    np.testing.assert_array_equal(out["prediction_index"].to_numpy(), expected)
    assert out["fallback"].isna().all()
    # the rule is learnt, not the majority: both answers are predicted
    assert set(out["prediction_index"]) == {0, 2}


def test_knn_and_gbt_fall_back_for_unseen_question():
    train = item_table(income_rule_rows(60, seed=4), "train")
    items = item_table([{"Income Bracket": "High income", "question_id": "q_new"},
                        {"Income Bracket": "High income", "question_id": "q_wide"}], "test")
    for kind in ["knn", "gbt"]:
        out = predict(kind, train, items, k=1)
        assert out["fallback"].tolist() == ["option_prior", "option_prior"], kind
        # K=3 prior: q1 answers are 0 and 2, 30 each -> tie -> 0; K=7 never seen -> 0
        assert out["prediction_index"].tolist() == [0, 0], kind


# --------------------------------------------------------------------------------------------------------------
# Distributions (option_probs): the class frequencies of what each baseline fits on
# --------------------------------------------------------------------------------------------------------------

def distributions(kind: str, train: pd.DataFrame, items: pd.DataFrame, k: int = 5) -> dict:
    """(country, question) -> option_probs; checks that each is one probability per option, summing to 1, and that
    the most probable option (the earlier on a tie) is the prediction (but for uniform's random draws)."""
    out = make_baseline(kind, 0, k).fit(train).predict(items, probs=True)
    assert list(out.columns) == ["prediction_index", "fallback", "option_probs"]
    plain = make_baseline(kind, 0, k).fit(train).predict(items)
    pd.testing.assert_frame_equal(out[["prediction_index", "fallback"]], plain)  # predictions unchanged
    got = {}
    for country, qid, options, index, probs in zip(items["Country"], items["question_id"], items["options"],
                                                   out["prediction_index"], out["option_probs"]):
        probs = np.asarray(probs, dtype=float)
        assert len(probs) == len(options) and (probs >= 0).all() and probs.sum() == pytest.approx(1.0)
        if kind != "uniform":
            assert int(np.argmax(probs)) == index, (kind, country, qid)
        got[(country, qid)] = probs.tolist()
    return got


def test_majority_distributions_by_hand(corpus, targets):
    national = distributions("national_label", corpus, targets)
    glob = distributions("global_majority", corpus, targets)
    assert national[("Aland", "q1")] == [1, 0, 0] and national[("Bland", "q1")] == [0, 1, 0]
    assert national[("Aland", "q2")] == [0, 0, 0, 1] and national[("Bland", "q2")] == [0, 0, 1, 0]
    assert national[("Aland", "q3")] == [0.5, 0, 0.5] and national[("Bland", "q3")] == [0, 0, 1]
    by_question = {"q1": [3 / 7, 4 / 7, 0], "q2": [0, 0, 0.5, 0.5], "q3": [1 / 6, 0, 5 / 6]}
    prior = {"q_new": [4 / 13, 4 / 13, 5 / 13], "q_wide": [1 / 7] * 7}  # K=3 positions pooled; no K=7 question
    for country in ["Aland", "Bland", "Cland"]:
        for qid, expected in {**by_question, **prior}.items():
            assert glob[(country, qid)] == pytest.approx(expected), (country, qid)
        for qid, expected in prior.items():
            assert national[(country, qid)] == pytest.approx(expected), (country, qid)
    for qid, expected in by_question.items():  # unseen country: the level that answered, the question's
        assert national[("Cland", qid)] == pytest.approx(expected), qid


def test_uniform_distribution(corpus, targets):
    got = distributions("uniform", corpus, targets)
    for (country, qid), probs in got.items():
        assert probs == pytest.approx([1 / len(probs)] * len(probs))


def test_knn_distribution_is_the_neighbours_vote_shares(knn_train):
    items = item_table([{**KNN_PROFILES[0], "question_id": "q1"}, {**KNN_PROFILES[0], "question_id": "q3"},
                        {**KNN_PROFILES[0], "question_id": "q_new"}], "test")
    out = make_baseline("knn", k=3).fit(knn_train).predict(items, probs=True)
    # k=3: profile 0 itself (answer 0), then of the ring at distance 3 (profiles 2, 3, 4) the earlier two (2, 1)
    assert out["option_probs"][0] == pytest.approx([1 / 3, 1 / 3, 1 / 3])
    assert out["prediction_index"][0] == 0  # a tied vote goes to the earlier option
    assert out["option_probs"][1] == pytest.approx([0, 1, 0])  # one answer in training: its frequencies
    # unseen question: the option prior, K=3 answer positions in training (q1: 0, 1, 2, 1, 2, 2; q3: 1 six times)
    assert out["option_probs"][2] == pytest.approx([1 / 12, 8 / 12, 3 / 12])
    everyone = make_baseline("knn", k=6).fit(knn_train).predict(items.iloc[:1], probs=True)
    assert everyone["option_probs"][0] == pytest.approx([1 / 6, 2 / 6, 3 / 6])  # every training row votes


def test_gbt_distribution_is_predict_proba_on_the_options():
    train = item_table(income_rule_rows(160, seed=0), "train")
    test = item_table(income_rule_rows(40, seed=1, start=1000), "test")
    got = distributions("gbt", train, test)
    probs = np.array(list(got.values()))
    assert (probs[:, 1] == 0).all()  # option 1 never answered in training: probability 0
    assert (probs.max(axis=1) > 0.5).all()


# --------------------------------------------------------------------------------------------------------------
# Counterfactual flips
# --------------------------------------------------------------------------------------------------------------

LOW, HIGH = "Low income", "High income"


@pytest.fixture(scope="module")
def flip_source() -> pd.DataFrame:
    rows = []
    for i, income in enumerate([LOW, HIGH, "Middle income", LOW, HIGH]):
        for qid in ["q1", "q3"]:
            rows.append({"Income Bracket": income, "Occupation": f"occ{i % 3}", "Gender": ["Female", "Male"][i % 2],
                         "question_id": qid, "answer_index": i % 3})
    return item_table(rows, "test")


def test_flip_items_swaps_only_the_attribute(flip_source):
    flipped = flip_items(flip_source, "Income Bracket", (LOW, HIGH))
    chosen = flip_source[flip_source["Income Bracket"].isin([LOW, HIGH])].reset_index(drop=True)
    assert len(flipped) == len(chosen) == 8
    assert (flipped["source_item_id"] == chosen["item_id"]).all()
    assert (flipped["item_id"] == chosen["item_id"] + "|flip").all()
    assert flipped["item_id"].is_unique
    assert (flipped["split"] == FLIP_SPLIT).all()
    swap = {LOW: HIGH, HIGH: LOW}
    assert flipped["Income Bracket"].tolist() == [swap[v] for v in chosen["Income Bracket"]]
    unchanged = [c for c in chosen.columns if c not in {"Income Bracket", "item_id", "profile_id", "split"}]
    pd.testing.assert_frame_equal(flipped[unchanged], chosen[unchanged])
    assert set(ITEM_COLUMNS) <= set(flipped.columns)
    assert attribute_columns(flipped) == list(ATTRIBUTES)
    # the new profile id is the id of the flipped profile (and differs from the original)
    expected = profile_ids(flipped[list(ATTRIBUTES)]).to_pylist()
    assert flipped["profile_id"].tolist() == expected
    assert (flipped["profile_id"] != chosen["profile_id"]).all()
    # the source table is untouched
    assert set(flip_source["split"]) == {"test"}


def test_flip_items_rewrite_the_release_prompt(flip_source):
    """Imported release items keep DVMap's own prompt (style release): the flipped value is written into it."""
    items = flip_source.assign(release_prompt=[f"Your income level is '{v}'. Question {q}?" for v, q in
                                               zip(flip_source["Income Bracket"], flip_source["question_id"])])
    flipped = flip_items(items, "Income Bracket", (LOW, HIGH))
    assert flipped["release_prompt"].tolist() == [f"Your income level is '{v}'. Question {q}?" for v, q in
                                                  zip(flipped["Income Bracket"], flipped["question_id"])]
    twice = items.assign(release_prompt=[f"{v} and {v}" for v in items["Income Bracket"]])
    assert flip_items(twice, "Income Bracket", (LOW, HIGH))["release_prompt"].isna().all()


def test_flip_items_profile_matches_an_existing_twin():
    # two profiles identical but for income: flipping one gives the other's profile id
    items = item_table([{"Income Bracket": LOW, "question_id": "q1"}, {"Income Bracket": HIGH, "question_id": "q1"}],
                       "test")
    flipped = flip_items(items, "Income Bracket", (LOW, HIGH))
    assert flipped["profile_id"].tolist() == items["profile_id"].tolist()[::-1]


def test_flip_unknown_attribute_names_the_key(flip_source):
    with pytest.raises(DvmapError, match=r"evaluation\.flip\.attribute.*'Shoe Size'"):
        flip_items(flip_source, "Shoe Size", ("Small", "Large"))


def test_flip_values_absent_names_the_key(flip_source):
    with pytest.raises(DvmapError, match=r"evaluation\.flip\.values"):
        flip_items(flip_source, "Income Bracket", ("Very low income", "Very high income"))


@pytest.mark.parametrize("column", ["answer", "question_id"])
def test_flip_rejects_columns_that_are_not_attributes(flip_source, column):
    """Only profile attributes are flipped; a schema column such as the gold answer is not an attribute."""
    values = tuple(flip_source[column].drop_duplicates().tolist()[:2])
    assert len(values) == 2
    with pytest.raises(DvmapError, match=r"evaluation\.flip\.attribute"):
        flip_items(flip_source, column, values)


def rule_predictions(items: pd.DataFrame, model: str, rule) -> pd.DataFrame:
    return prediction_table(items, [rule(row) for _, row in items.iterrows()], model, "0.0", 0)


def test_flip_rates_zero_and_one(flip_source):
    flipped_items = flip_items(flip_source, "Income Bracket", (LOW, HIGH))
    blind = lambda row: int(row["question_id"] == "q3")  # noqa: E731 - ignores income
    sensitive = lambda row: {LOW: 2, HIGH: 0}.get(row["Income Bracket"], 1)  # noqa: E731
    original = pd.concat([rule_predictions(flip_source, "blind", blind),
                          rule_predictions(flip_source, "sensitive", sensitive)], ignore_index=True)
    flipped = pd.concat([rule_predictions(flipped_items, "blind", blind),
                         rule_predictions(flipped_items, "sensitive", sensitive)], ignore_index=True)
    rates = flip_rates(original, flipped, flipped_items)
    assert list(rates.columns) == ["predictor", "category", "items", "change_rate", "unparseable_rate"]
    table = rates.set_index(["predictor", "category"])
    for category, n in [("SOCIAL", 4), ("POLITICS", 4), ("ALL", 8)]:
        assert table.loc[("blind.tau~0.0.seed~0", category), "change_rate"] == 0.0
        assert table.loc[("sensitive.tau~0.0.seed~0", category), "change_rate"] == 1.0
        for predictor in ["blind.tau~0.0.seed~0", "sensitive.tau~0.0.seed~0"]:
            assert table.loc[(predictor, category), "items"] == n
            assert table.loc[(predictor, category), "unparseable_rate"] == 0.0
    assert len(rates) == 6


def test_flip_rates_unparseable(flip_source):
    flipped_items = flip_items(flip_source, "Income Bracket", (LOW, HIGH))
    original = prediction_table(flip_source, np.zeros(len(flip_source)), "m", "0.0", 0)
    after = np.zeros(len(flipped_items))
    after[0] = -1  # one unparseable after the flip: changed and unparseable
    flipped = prediction_table(flipped_items, after, "m", "0.0", 0)
    rates = flip_rates(original, flipped, flipped_items).set_index("category")
    assert rates.loc["ALL", "change_rate"] == pytest.approx(1 / 8)
    assert rates.loc["ALL", "unparseable_rate"] == pytest.approx(1 / 8)
    # both runs unparseable: not a change
    original_nan = prediction_table(flip_source, -np.ones(len(flip_source)), "m", "0.0", 0)
    flipped_nan = prediction_table(flipped_items, -np.ones(len(flipped_items)), "m", "0.0", 0)
    both = flip_rates(original_nan, flipped_nan, flipped_items).set_index("category")
    assert both.loc["ALL", "change_rate"] == 0.0 and both.loc["ALL", "unparseable_rate"] == 1.0


# --------------------------------------------------------------------------------------------------------------
# DVMap's released dev split: the national label is a strong baseline
# --------------------------------------------------------------------------------------------------------------

def test_national_label_beats_global_majority_on_dvmap_dev():
    path = require_shared(RELEASE / "dev.parquet")
    items = import_part(pd.read_parquet(path), "dev", load_catalog(), "dev")
    profiles = items["profile_id"].unique()
    shuffled = profiles[np.random.default_rng(0).permutation(len(profiles))]
    train_ids = set(shuffled[: int(0.7 * len(profiles))])
    in_train = items["profile_id"].isin(train_ids)
    train, held = items[in_train].reset_index(drop=True), items[~in_train].reset_index(drop=True)
    assert len(train) and len(held) and not set(train["profile_id"]) & set(held["profile_id"])

    frames = []
    for kind in ["global_majority", "national_label"]:
        out = make_baseline(kind, seed=0).fit(train).predict(held)
        frames.append(prediction_table(held, out["prediction_index"], kind, "release", None,
                                       fallback=out["fallback"]))
    summary, breakdown = evaluate(frames, n_boot=300, seed=0)
    rows = summary.set_index("model")
    national, majority = rows.loc["national_label"], rows.loc["global_majority"]
    assert national["n_items"] == majority["n_items"] == len(held)
    for row in (national, majority):
        assert row["accuracy_ci_low"] < row["accuracy"] < row["accuracy_ci_high"]
        assert row["unparseable_rate"] == 0.0
    assert national["accuracy"] > majority["accuracy"]
    assert national["likert_consistency"] > majority["likert_consistency"]
    assert national["wasserstein"] < majority["wasserstein"]
    assert majority["fallback_rate"] == 0.0  # every dev question is seen in training
    assert national["fallback_rate"] < 0.05
    assert set(breakdown["group_type"]) >= {"country", "question", "attribute:Income Bracket"}
