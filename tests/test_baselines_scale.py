"""The baselines at scale give exactly what their definitions give.

``knn`` searches a bitset index and ``gbt`` predicts each distinct profile once, every baseline predicts in blocks;
here their predictions and fallback labels are compared with slow, obviously correct references written from the
definitions (a loop over the training rows of the item's question), on small random cases built to have ties in
distance and in votes, repeated training profiles, pools smaller than k and wider than one 64-bit word, unseen
attribute values, unseen questions and single-answer questions, with tiny blocks and chunks as well as the
defaults. (On the synthetic survey of the pipeline, 400 and 2,500 respondents per country, the prediction files of
every baseline were also byte-identical before and after the change; scripts/bench_baselines.py measures the
previous kNN beside the new one.)
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from dvmap import ATTRIBUTES
from dvmap.cli import main
from dvmap.io import read_parquet, write_parquet
from dvmap.evaluation import baselines
from dvmap.evaluation.baselines import make_baseline
from dvmap.schema import attribute_columns

from .items_factory import make_items

OPTIONS = {"q1": ["a", "b", "c"], "q2": ["w", "x", "y", "z"], "q3": ["a", "b", "c"], "q4": ["a", "b", "c"],
           "q_new": ["a", "b", "c"], "q_wide": [str(i) for i in range(7)]}


def random_table(rng: np.random.Generator, n: int, questions: list[str], values: int = 2,
                 unseen: float = 0.0) -> pd.DataFrame:
    """n rows: every attribute (and a custom one, Region, sometimes missing) drawn among ``values`` values, so many
    rows tie in distance; ``unseen``: the share of values never seen in training."""
    frame = pd.DataFrame({a: [f"{a[:3]}{v}" for v in rng.integers(0, values, n)] for a in [*ATTRIBUTES, "Region"]})
    if unseen:
        mask = rng.random(frame.shape) < unseen
        frame = frame.mask(mask, "unseen")
    frame["Region"] = frame["Region"].mask(rng.random(n) < 0.1)  # missing values: equal to each other
    frame["question_id"] = rng.choice(questions, n)
    frame["options"] = [list(OPTIONS[q]) for q in frame["question_id"]]
    frame["answer_index"] = [int(rng.integers(0, len(OPTIONS[q]))) for q in frame["question_id"]]
    return frame


def knn_case(seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    train = random_table(rng, 260, ["q1", "q1", "q1", "q2"], values=2)  # q1: about 200 rows, wider than 64 bits
    single = random_table(rng, 12, ["q3"]).assign(answer_index=1)  # one answer only
    small = random_table(rng, 3, ["q4"], values=3)  # fewer rows than k
    repeated = train[train["question_id"] == "q1"].iloc[:20].assign(answer_index=lambda f: (f["answer_index"] + 1) % 3)
    train = pd.concat([train, single, small, repeated]).sample(frac=1.0, random_state=seed).reset_index(drop=True)
    items = random_table(rng, 150, ["q1", "q2", "q3", "q4", "q_new", "q_wide"], values=3, unseen=0.05)
    items.index = np.arange(1000, 1000 + len(items))[::-1]  # any index
    return train, items


def most_frequent(values) -> int:
    counts = Counter(values)
    return min(v for v, c in counts.items() if c == max(counts.values()))


def reference_fallbacks(train: pd.DataFrame, items: pd.DataFrame) -> tuple[dict, dict]:
    """Per question its training rows (in training order) and per option count the option prior."""
    pools: dict[str, list] = {}
    for _, row in train.iterrows():
        pools.setdefault(row["question_id"], []).append(row)
    by_k: dict[int, list] = {}
    for _, row in train.iterrows():
        by_k.setdefault(len(row["options"]), []).append(row["answer_index"])
    return pools, {k: most_frequent(v) for k, v in by_k.items()}


def reference_knn(train: pd.DataFrame, items: pd.DataFrame, k: int) -> list[tuple[int, str | None]]:
    """The definition, item by item: the training rows of the item's question sorted by (Hamming distance on the
    attributes, position in training); the first k vote; the most votes win, a tie goes to the earlier option, among
    as many options as the question's first item has. An unseen question gets the option prior; a question with one
    answer in training gets that answer."""
    attributes = attribute_columns(train)
    n_options: dict[str, int] = {}
    for qid, options in zip(items["question_id"], items["options"]):
        n_options.setdefault(qid, len(options))

    def rule(item, pool, answers):
        distance = [sum(str(row[a]) != str(item[a]) for a in attributes) for row in pool]
        nearest = sorted(range(len(pool)), key=lambda r: (distance[r], r))[:k]
        votes = [sum(answers[r] == option for r in nearest) for option in range(n_options[item["question_id"]])]
        return votes.index(max(votes))

    return reference_predictions(train, items, rule)


def reference_predictions(train: pd.DataFrame, items: pd.DataFrame, rule) -> list[tuple[int, str | None]]:
    """Item by item: the option prior for an unseen question, the one answer of a question with one answer in
    training, else ``rule(item, pool, answers)`` over the question's training rows."""
    pools, prior = reference_fallbacks(train, items)
    out = []
    for _, item in items.iterrows():
        pool = pools.get(item["question_id"], [])
        if not pool:
            out.append((prior.get(len(item["options"]), 0), "option_prior"))
            continue
        answers = [row["answer_index"] for row in pool]
        out.append((answers[0] if len(set(answers)) == 1 else rule(item, pool, answers), None))
    return out


def predicted(kind: str, train: pd.DataFrame, items: pd.DataFrame, k: int = 5, seed: int = 0) -> list:
    out = make_baseline(kind, seed=seed, k=k).fit(train).predict(items)
    assert len(out) == len(items) and list(out.columns) == ["prediction_index", "fallback"]
    return [(int(p), None if f is None or pd.isna(f) else f) for p, f in zip(out["prediction_index"], out["fallback"])]


@pytest.fixture(params=["default", "tiny"])
def blocks(request, monkeypatch):
    """Default block sizes, or blocks of 7 items and kNN chunks of one query profile."""
    if request.param == "tiny":
        monkeypatch.setattr(baselines, "BLOCK_ITEMS", 7)
        monkeypatch.setattr(baselines, "KNN_CHUNK_WORDS", 1)
    return request.param


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("k", [1, 2, 5, 8])
def test_knn_equals_the_brute_force_definition(seed, k, blocks):
    train, items = knn_case(seed)
    got, expected = predicted("knn", train, items, k=k), reference_knn(train, items, k)
    assert got == expected
    assert {f for _, f in got} == {None, "option_prior"}


def test_knn_cases_have_ties_at_the_cut():
    """The cases test tie-breaking: for most items, more training rows lie at the distance of the k-th one than
    are taken."""
    train, items = knn_case(0)
    attributes = attribute_columns(train)
    pool = train[train["question_id"] == "q1"]
    ties = 0
    for _, item in items[items["question_id"] == "q1"].iterrows():
        distance = np.sort((pool[attributes].to_numpy() != item[attributes].to_numpy()).sum(axis=1))
        ties += (distance == distance[4]).sum() > 5 - (distance < distance[4]).sum()
    assert ties > 0.5 * (items["question_id"] == "q1").sum()


def test_knn_n_options_from_the_first_item():
    """Votes count only the options of the question's first item (a training answer beyond them does not vote)."""
    rng = np.random.default_rng(5)
    train = random_table(rng, 80, ["q2"])
    items = random_table(rng, 30, ["q2"], values=3)
    items["options"] = [["w", "x"]] + [list(OPTIONS["q2"])] * (len(items) - 1)
    assert predicted("knn", train, items, k=5) == reference_knn(train, items, 5)


def reference_gbt(train: pd.DataFrame, items: pd.DataFrame, seed: int) -> list[tuple[int, str | None]]:
    """One model per question fitted on all its training rows (identical rows included), item by item."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.preprocessing import OneHotEncoder

    attributes = attribute_columns(train)
    models = {}

    def rule(item, pool, answers):
        if item["question_id"] not in models:
            x = pd.DataFrame([row[attributes] for row in pool]).astype(str)
            encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False).fit(x)
            model = HistGradientBoostingClassifier(max_iter=30, max_leaf_nodes=15, early_stopping=False,
                                                   random_state=seed).fit(encoder.transform(x), answers)
            models[item["question_id"]] = (encoder, model)
        encoder, model = models[item["question_id"]]
        return int(model.predict(encoder.transform(pd.DataFrame([item[attributes]]).astype(str)))[0])

    return reference_predictions(train, items, rule)


def test_gbt_equals_its_definition_with_repeated_rows(blocks):
    """Identical training rows are fitted as they are (a weighted row would grow other trees: min_samples_leaf
    counts rows), and each distinct evaluation profile gets the prediction its items would get one by one."""
    rng = np.random.default_rng(3)
    train = random_table(rng, 300, ["q1", "q2"], values=2)
    train = pd.concat([train, train.iloc[:120]], ignore_index=True)  # repeated rows
    items = random_table(rng, 60, ["q1", "q2", "q_new"], values=2, unseen=0.05)
    items = pd.concat([items, items.iloc[:25]])  # repeated evaluation profiles
    assert predicted("gbt", train, items, seed=1) == reference_gbt(train, items, seed=1)


@pytest.mark.parametrize("kind", ["uniform", "global_majority", "national_label", "knn", "gbt"])
def test_blocks_do_not_change_predictions(kind, monkeypatch):
    train, items = knn_case(4)
    whole = predicted(kind, train, items, k=3)
    monkeypatch.setattr(baselines, "BLOCK_ITEMS", 11)
    monkeypatch.setattr(baselines, "KNN_CHUNK_WORDS", 2)
    assert predicted(kind, train, items, k=3) == whole


@pytest.mark.parametrize("kind", ["uniform", "national_label", "knn", "gbt"])
def test_a_split_streamed_in_parts_gets_the_same_predictions(kind, monkeypatch):
    """predict_stream on consecutive parts (parquet record batches, say) equals predict on the whole split: one
    random stream, and each question's option count from the split's first item."""
    monkeypatch.setattr(baselines, "BLOCK_ITEMS", 16)
    train, items = knn_case(6)
    model = make_baseline(kind, seed=2, k=3).fit(train)
    whole = model.predict(items)
    parts = [items.iloc[:13], items.iloc[13:50], items.iloc[50:51], items.iloc[51:]]
    blocks = list(model.predict_stream(parts))
    assert all(len(items) == len(predicted) <= 16 for items, predicted in blocks)
    pd.testing.assert_frame_equal(pd.concat([part for part, _ in blocks], ignore_index=True),
                                  items.reset_index(drop=True))
    streamed = pd.concat([predicted for _, predicted in blocks], ignore_index=True)
    def values(frame):
        return [(int(p), None if pd.isna(f) else f) for p, f in zip(frame["prediction_index"], frame["fallback"])]

    assert values(streamed) == values(whole)


@pytest.mark.parametrize("kind", ["uniform", "global_majority", "national_label", "knn", "gbt"])
def test_distributions_do_not_depend_on_blocks_or_parts(kind, monkeypatch):
    """option_probs: one probability per option summing to 1, the prediction most probable (but for uniform), and
    the same whether the split is predicted whole, in small blocks or streamed in parts."""
    train, items = knn_case(5)
    model = make_baseline(kind, seed=2, k=3).fit(train)
    whole = model.predict(items, probs=True)
    k = items["options"].map(len).to_numpy()
    for probs, size, index in zip(whole["option_probs"], k, whole["prediction_index"]):
        probs = np.asarray(probs)
        assert len(probs) == size and (probs >= 0).all() and probs.sum() == pytest.approx(1.0)
        if kind != "uniform":
            assert int(np.argmax(probs)) == index
    monkeypatch.setattr(baselines, "BLOCK_ITEMS", 13)
    monkeypatch.setattr(baselines, "KNN_CHUNK_WORDS", 2)
    model = make_baseline(kind, seed=2, k=3).fit(train)
    parts = [items.iloc[:20], items.iloc[20:21], items.iloc[21:]]
    streamed = pd.concat([predicted for _, predicted in model.predict_stream(parts, probs=True)],
                         ignore_index=True)
    assert streamed["prediction_index"].tolist() == whole["prediction_index"].tolist()
    assert streamed["option_probs"].tolist() == whole["option_probs"].tolist()


def test_dvmap_baseline_writes_distributions_and_counts(tmp_path, monkeypatch):
    """`dvmap baseline` writes option_probs (those of predict) and copies the items' counts and n."""
    train, items = knn_case(3)
    train = item_table(train.drop_duplicates([*ATTRIBUTES, "question_id"]), "train")
    items = item_table(items.drop_duplicates([*ATTRIBUTES, "question_id"]), "cross_demographic")
    items["counts"] = [[i % 3 + 1] + [0] * (len(o) - 1) for i, o in enumerate(items["options"])]
    items["n"] = [float(c[0]) for c in items["counts"]]
    write_parquet(train, tmp_path / "train.parquet")
    write_parquet(items, tmp_path / "cross_demographic.parquet")
    monkeypatch.setattr(baselines, "BLOCK_ITEMS", 16)
    assert main(["-q", "baseline", "--kind", "national_label", "--train", str(tmp_path / "train.parquet"),
                 "--eval", str(tmp_path / "cross_demographic.parquet"), "-o", str(tmp_path / "out")]) == 0
    table = read_parquet(tmp_path / "out" / "cross_demographic.parquet")
    expected = make_baseline("national_label").fit(read_parquet(tmp_path / "train.parquet")).predict(
        read_parquet(tmp_path / "cross_demographic.parquet"), probs=True)
    assert [list(p) for p in table["option_probs"]] == expected["option_probs"].tolist()
    assert [list(c) for c in table["counts"]] == items["counts"].tolist()
    assert table["n"].tolist() == items["n"].tolist()


def test_empty_evaluation_split():
    train, items = knn_case(0)
    for kind in ["uniform", "national_label", "knn", "gbt"]:
        out = make_baseline(kind, k=3).fit(train).predict(items.iloc[:0])
        assert list(out.columns) == ["prediction_index", "fallback"] and out.empty


def item_table(frame: pd.DataFrame, split: str) -> pd.DataFrame:
    """A random table of :func:`random_table` as items in dvmap's schema, one item per (profile, question)."""
    rows = [{**{a: row[a] for a in ATTRIBUTES}, "question_id": row["question_id"], "options": row["options"],
             "answer_index": row["answer_index"]} for row in frame.to_dict("records")]
    return make_items(rows, split)


@pytest.mark.parametrize("kind", ["uniform", "knn"])
def test_dvmap_baseline_streams_each_split_in_blocks(kind, tmp_path, monkeypatch):
    """`dvmap baseline` reads each evaluation split in record batches and writes its predictions block by block:
    the file holds several row groups, the same predictions as the whole split predicted at once, and a rerun
    writes the same bytes."""
    train, items = knn_case(3)
    train = item_table(train.drop_duplicates([*ATTRIBUTES, "question_id"]), "train")
    items = item_table(items.drop_duplicates([*ATTRIBUTES, "question_id"]), "cross_demographic")
    write_parquet(train, tmp_path / "train.parquet")
    write_parquet(items, tmp_path / "cross_demographic.parquet")
    monkeypatch.setattr(baselines, "BLOCK_ITEMS", 16)

    def run(folder: str) -> Path:
        assert main(["-q", "baseline", "--kind", kind, "--train", str(tmp_path / "train.parquet"), "--k", "3",
                     "--seed", "4", "--eval", str(tmp_path / "cross_demographic.parquet"),
                     "-o", str(tmp_path / folder)]) == 0
        return tmp_path / folder / "cross_demographic.parquet"

    written = run("a")
    assert pq.ParquetFile(written).num_row_groups == -(-len(items) // 16)
    expected = make_baseline(kind, seed=4, k=3).fit(read_parquet(tmp_path / "train.parquet")).predict(
        read_parquet(tmp_path / "cross_demographic.parquet"))
    table = read_parquet(written)
    assert table["item_id"].tolist() == items["item_id"].tolist()
    assert table["prediction_index"].tolist() == expected["prediction_index"].tolist()
    assert table["fallback"].fillna("").tolist() == expected["fallback"].fillna("").tolist()
    assert written.read_bytes() == run("b").read_bytes()
