"""Profile-level splits, the triple-generalization benchmark, corpora and prompts on a small synthetic pipeline."""

from __future__ import annotations

from collections import Counter
from itertools import combinations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from dvmap import ATTRIBUTES, NOT_ANSWERED
from dvmap.survey.archetypes import archetype_stats, select_archetypes
from dvmap.survey.attribute_map import load_attribute_map
from dvmap.survey.catalog import load_catalog
from dvmap.errors import DvmapError
from dvmap.io import read_parquet, write_parquet
from dvmap.corpus.items import tied_pairs
from dvmap.corpus.prompts import STYLES, load_templates, prompt_corpus, verl_layout
from dvmap.survey.respondents import build_respondents
from dvmap.corpus.splits import assign_profiles, benchmark_items, check_leakage, corpus_items
from dvmap.schema import BENCHMARK_SPLITS, CORPUS_SPLITS, PARTITIONS
from dvmap.survey.synth import write_synthetic_sav

# --------------------------------------------------------------------------------------------------------------
# Fixtures: synth -> respondents -> stats (through parquet, as the CLI does) -> assignment, benchmark, corpora
# --------------------------------------------------------------------------------------------------------------

FRACTIONS = {"train": 0.7, "dev": 0.1, "test": 0.1, "cross_demographic": 0.1}
HELDOUT_COUNTRIES = ["Japan"]
HELDOUT_QUESTIONS = ["Q121", "Q165"]
SEED = 13


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


@pytest.fixture(scope="module")
def respondents(tmp_path_factory, catalog):
    path = tmp_path_factory.mktemp("synth") / "survey.sav"
    write_synthetic_sav(path, catalog, respondents_per_country=120, n_countries=4, seed=3)
    return build_respondents([path], catalog, load_attribute_map())


@pytest.fixture(scope="module")
def stats(tmp_path_factory, respondents, catalog):
    """The stats table as the split/corpus CLI stages see it (written and read back as parquet)."""
    path = tmp_path_factory.mktemp("stats") / "stats.parquet"
    write_parquet(archetype_stats(respondents, catalog), path)
    return pq.read_table(path)


@pytest.fixture(scope="module")
def assignment(stats):
    return assign_profiles(stats, FRACTIONS, HELDOUT_COUNTRIES, SEED)


@pytest.fixture(scope="module")
def benchmark(stats, assignment, catalog):
    return benchmark_items(stats, assignment, catalog, HELDOUT_QUESTIONS, None, "wvs")


@pytest.fixture(scope="module", params=[0.0, 1.0, "majority"], ids=lambda t: f"tau={t}")
def corpus(request, stats, assignment, catalog):
    tau = request.param
    return corpus_items(select_archetypes(stats, tau), assignment, catalog, HELDOUT_QUESTIONS, "wvs", str(tau))


@pytest.fixture(scope="module")
def corpus_majority(stats, assignment, catalog):
    return corpus_items(select_archetypes(stats, "majority"), assignment, catalog, HELDOUT_QUESTIONS, "wvs",
                        "majority")


def stats_frame(stats) -> pd.DataFrame:
    return pd.DataFrame({c: stats[c].to_pylist() for c in stats.column_names})


# --------------------------------------------------------------------------------------------------------------
# Profile assignment
# --------------------------------------------------------------------------------------------------------------

def test_every_profile_assigned_once(stats, assignment):
    profiles = set(stats["profile_id"].to_pylist())
    assert list(assignment.columns) == ["profile_id", "Country", "split"]
    assert assignment["profile_id"].is_unique
    assert set(assignment["profile_id"]) == profiles
    assert set(assignment["split"]) == set(PARTITIONS) | {"cross_country"}


def test_heldout_country_profiles_are_cross_country(assignment):
    held = assignment["Country"].isin(HELDOUT_COUNTRIES)
    assert held.any() and (~held).any()
    assert (assignment.loc[held, "split"] == "cross_country").all()
    assert (assignment.loc[~held, "split"] != "cross_country").all()


def test_stratified_by_country(assignment):
    seen = assignment[~assignment["Country"].isin(HELDOUT_COUNTRIES)]
    assert seen["Country"].nunique() == 3
    for country, group in seen.groupby("Country"):
        counts = group["split"].value_counts()
        assert counts.get("train", 0) > 0, country
        for name in PARTITIONS:  # each country is cut by the fractions, to within rounding
            assert abs(counts.get(name, 0) - FRACTIONS[name] * len(group)) <= 1, (country, name)


def test_same_seed_same_assignment_other_seed_differs(stats, assignment):
    again = assign_profiles(stats, FRACTIONS, HELDOUT_COUNTRIES, SEED)
    pd.testing.assert_frame_equal(again, assignment)
    other = assign_profiles(stats, FRACTIONS, HELDOUT_COUNTRIES, SEED + 1)
    assert list(other["profile_id"]) == list(assignment["profile_id"])
    assert (other["split"] != assignment["split"]).any()
    # ... but a different seed only reshuffles: the sizes per country and split stay the same
    assert (other.groupby(["Country", "split"]).size().to_dict()
            == assignment.groupby(["Country", "split"]).size().to_dict())


def test_unknown_heldout_country_is_an_error(stats):
    with pytest.raises(DvmapError, match=r"splits\.heldout_countries.*Atlantis"):
        assign_profiles(stats, FRACTIONS, ["Atlantis"], SEED)


@pytest.mark.parametrize("fractions", [
    {"train": 0.7, "dev": 0.1, "test": 0.1},
    {"train": 0.7, "dev": 0.2, "test": 0.2, "cross_demographic": 0.1},
    {"train": 1.1, "dev": -0.1, "test": 0.0, "cross_demographic": 0.0},
])
def test_bad_fractions_are_an_error(stats, fractions):
    with pytest.raises(DvmapError, match=r"splits\.fractions"):
        assign_profiles(stats, fractions, HELDOUT_COUNTRIES, SEED)


# --------------------------------------------------------------------------------------------------------------
# Benchmark and corpus splits
# --------------------------------------------------------------------------------------------------------------

def test_benchmark_split_names_and_contents(benchmark, assignment):
    assert set(benchmark) == set(BENCHMARK_SPLITS)
    split_of = assignment.set_index("profile_id")["split"]
    for name, items in benchmark.items():
        assert not items.empty
        assert (items["split"] == name).all()
        assert (items["data_source"] == "wvs").all()
        assert items["item_id"].is_unique
    assert (benchmark["cross_demographic"]["profile_id"].map(split_of) == "cross_demographic").all()
    assert (benchmark["cross_country"]["profile_id"].map(split_of) == "cross_country").all()


def test_no_profile_in_two_profile_level_splits(benchmark, corpus, assignment):
    profile_sets = {name: set(corpus[name]["profile_id"]) for name in CORPUS_SPLITS}
    profile_sets["cross_demographic"] = set(benchmark["cross_demographic"]["profile_id"])
    for a, b in combinations(PARTITIONS, 2):
        assert not profile_sets[a] & profile_sets[b], (a, b)
    split_of = assignment.set_index("profile_id")["split"]
    for name in CORPUS_SPLITS:
        assert (corpus[name]["profile_id"].map(split_of) == name).all()


def test_heldout_countries_only_in_cross_country(benchmark, corpus):
    assert set(benchmark["cross_country"]["Country"]) == set(HELDOUT_COUNTRIES)
    for name in ("cross_demographic", "cross_value"):
        assert not set(benchmark[name]["Country"]) & set(HELDOUT_COUNTRIES), name
    for name in CORPUS_SPLITS:
        assert not set(corpus[name]["Country"]) & set(HELDOUT_COUNTRIES), name


def test_heldout_questions_only_in_cross_value(benchmark, corpus, stats):
    assert set(benchmark["cross_value"]["question_id"]) == set(HELDOUT_QUESTIONS)
    for name in ("cross_demographic", "cross_country"):
        assert not set(benchmark[name]["question_id"]) & set(HELDOUT_QUESTIONS), name
    for name in CORPUS_SPLITS:
        assert not set(corpus[name]["question_id"]) & set(HELDOUT_QUESTIONS), name
    # the corpus still covers every other question that has answers
    seen_questions = set(stats["question_id"].to_pylist()) - set(HELDOUT_QUESTIONS)
    assert set(corpus["train"]["question_id"]) <= seen_questions


def test_cross_value_covers_all_seen_country_profiles(benchmark, stats, assignment):
    frame = stats_frame(stats)
    split_of = assignment.set_index("profile_id")["split"]
    expected = frame[frame["question_id"].isin(HELDOUT_QUESTIONS)
                     & (frame["profile_id"].map(split_of) != "cross_country") & ~tied_pairs(stats)]
    got = benchmark["cross_value"]
    assert sorted(got["item_id"]) == sorted(expected["profile_id"] + ":" + expected["question_id"])


def test_corpus_holds_the_threshold_archetypes(corpus, stats, assignment, request):
    tau = request.node.callspec.params["corpus"]
    kept = select_archetypes(stats, tau)
    kept = stats_frame(kept)[~tied_pairs(kept)]  # splits.ties: drop (the default)
    split_of = assignment.set_index("profile_id")["split"]
    for name in CORPUS_SPLITS:
        expected = kept[(kept["profile_id"].map(split_of) == name) & ~kept["question_id"].isin(HELDOUT_QUESTIONS)]
        assert sorted(corpus[name]["item_id"]) == sorted(expected["profile_id"] + ":" + expected["question_id"])
        assert (corpus[name]["split"] == name).all()
        if tau != "majority":
            assert (corpus[name]["entropy"] <= tau + 1e-9).all()
    if tau == 0.0:
        assert (corpus["train"]["frequency"] > 0).all()


def test_item_labels_match_stats(benchmark, corpus_majority, stats, catalog):
    frame = stats_frame(stats).set_index(["profile_id", "question_id"])
    for items in [*benchmark.values(), *corpus_majority.values()]:
        for row in items.itertuples(index=False):
            src = frame.loc[(row.profile_id, row.question_id)]
            question = catalog[row.question_id]
            assert row.item_id == f"{row.profile_id}:{row.question_id}"
            assert row.answer == src["answer"]
            assert list(row.options) == list(question.options)
            assert row.options[row.answer_index] == row.answer
            assert row.question == question.text
            assert row.category == question.section
            assert row.n == src["n"]
            assert row.entropy == pytest.approx(src["entropy"])
            assert row.Country == src["Country"]


def test_benchmark_consensus_filter(stats, assignment, catalog, benchmark):
    strict = benchmark_items(stats, assignment, catalog, HELDOUT_QUESTIONS, 0.0, "wvs")
    for name in BENCHMARK_SPLITS:
        assert (strict[name]["entropy"] == 0).all()
        assert set(strict[name]["item_id"]) <= set(benchmark[name]["item_id"])
    assert any((benchmark[name]["entropy"] > 0).any() for name in BENCHMARK_SPLITS)


def frequency_by_hand(items: pd.DataFrame) -> list[float]:
    same_answer = Counter(zip(items["split"], items["Country"], items["question_id"], items["answer"]))
    same_question = Counter(zip(items["split"], items["Country"], items["question_id"]))
    return [same_answer[(s, c, q, a)] / same_question[(s, c, q)]
            for s, c, q, a in zip(items["split"], items["Country"], items["question_id"], items["answer"])]


def test_frequency_is_share_within_split_country_question(benchmark, corpus):
    for name, items in [*benchmark.items(), *corpus.items()]:
        expected = frequency_by_hand(items)
        np.testing.assert_allclose(items["frequency"].to_numpy(), expected, rtol=0, atol=1e-12, err_msg=name)
        assert ((items["frequency"] > 0) & (items["frequency"] <= 1)).all()


def test_frequency_not_pooled_across_splits(corpus_majority):
    """The same (country, question) in train and dev gets frequencies from its own split only."""
    pooled = pd.concat([corpus_majority[n] for n in CORPUS_SPLITS], ignore_index=True)
    pooled_freq = frequency_by_hand(pooled.assign(split="all"))
    own = pooled["frequency"].to_numpy()
    np.testing.assert_allclose(own, frequency_by_hand(pooled), atol=1e-12)
    assert not np.allclose(own, pooled_freq)


def test_splits_from_in_memory_stats(respondents, catalog, stats):
    """benchmark_items / corpus_items on archetype_stats' own in-memory table (no parquet round trip) give
    the same items as through parquet."""
    live = archetype_stats(respondents, catalog)
    assignment = assign_profiles(live, FRACTIONS, HELDOUT_COUNTRIES, SEED)
    pd.testing.assert_frame_equal(assignment, assign_profiles(stats, FRACTIONS, HELDOUT_COUNTRIES, SEED))
    bench = benchmark_items(live, assignment, catalog, HELDOUT_QUESTIONS, None, "wvs")
    corpus = corpus_items(select_archetypes(live, 0.0), assignment, catalog, HELDOUT_QUESTIONS, "wvs", "0.0")
    assert not bench["cross_demographic"].empty and not corpus["train"].empty


# --------------------------------------------------------------------------------------------------------------
# Leakage and configuration errors
# --------------------------------------------------------------------------------------------------------------

def test_real_splits_pass_the_leakage_check(benchmark, corpus):
    check_leakage({**corpus, **benchmark}, heldout_countries=HELDOUT_COUNTRIES, heldout_questions=HELDOUT_QUESTIONS)


def test_leakage_profile_in_train_and_cross_demographic(benchmark, corpus_majority):
    train = corpus_majority["train"]
    leaked = train[train["profile_id"] == train["profile_id"].iloc[0]].assign(split="cross_demographic")
    xdemo = pd.concat([benchmark["cross_demographic"], leaked], ignore_index=True)
    with pytest.raises(DvmapError, match=r"leakage: profile .*'train'.*'cross_demographic'"):
        check_leakage({**corpus_majority, **benchmark, "cross_demographic": xdemo})


def test_leakage_heldout_question_in_train(benchmark, corpus_majority):
    leaked_row = benchmark["cross_value"].iloc[[0]].assign(split="train")
    train = pd.concat([corpus_majority["train"], leaked_row], ignore_index=True)
    # known from the cross_value split ...
    with pytest.raises(DvmapError, match=r"leakage: held-out questions .*'train'"):
        check_leakage({**corpus_majority, **benchmark, "train": train})
    # ... or from the configured list alone
    with pytest.raises(DvmapError, match=r"held-out questions \['Q121'\]"):
        check_leakage({"train": corpus_majority["train"].assign(question_id="Q121")}, heldout_questions=["Q121"])


def test_leakage_heldout_country_in_dev(benchmark, corpus_majority):
    dev = corpus_majority["dev"].copy()
    dev.loc[dev.index[0], "Country"] = HELDOUT_COUNTRIES[0]
    with pytest.raises(DvmapError, match=r"held-out countries \['Japan'\].*'dev'"):
        check_leakage({**corpus_majority, **benchmark, "dev": dev})


def test_empty_corpus_is_an_error(stats, assignment, catalog):
    nothing = select_archetypes(stats, 0.0, min_group_size=10**6)
    assert nothing.num_rows == 0
    with pytest.raises(DvmapError, match=r"tau=0\.0 leaves an empty corpus"):
        corpus_items(nothing, assignment, catalog, HELDOUT_QUESTIONS, "wvs", "0.0")


def test_bad_heldout_questions_are_errors(stats, assignment, catalog):
    with pytest.raises(DvmapError, match=r"splits\.heldout_questions.*Q999"):
        benchmark_items(stats, assignment, catalog, ["Q999"], None, "wvs")
    every = sorted(set(stats["question_id"].to_pylist()))
    with pytest.raises(DvmapError, match=r"splits\.heldout_questions holds out every question"):
        benchmark_items(stats, assignment, catalog, every, None, "wvs")


# --------------------------------------------------------------------------------------------------------------
# Prompts
# --------------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def items_from_disk(tmp_path_factory, corpus_majority):
    """A corpus split as the prompts stage reads it (options come back from parquet as arrays)."""
    path = tmp_path_factory.mktemp("items") / "dev.parquet"
    write_parquet(corpus_majority["dev"], path)
    return read_parquet(path)


#: The packaged prompt wording, and the styles that describe the persona themselves (not the imported release's).
WORDING = load_templates()
PERSONA_STYLES = [s for s in STYLES if s != "release"]


def persona_line(prompt) -> str:
    return prompt[1]["content"].split("\n\nQuestion:")[0]


def phrase(attribute: str, value: str) -> str:
    return WORDING.persona["phrases"][attribute].format(value=value)


def persona_of(*phrases: str) -> str:
    """The persona text of the packaged wording for these attribute phrases (none: nothing is known)."""
    if not phrases:
        return WORDING.persona["unknown"]
    return WORDING.persona["sentence"].format(details=WORDING.persona["separator"].join(phrases))


@pytest.mark.parametrize("style", PERSONA_STYLES)
def test_prompt_messages(items_from_disk, style):
    out = prompt_corpus(items_from_disk, style)
    assert len(out) == len(items_from_disk)
    assert out.columns[0] == "prompt"
    assert (out["style"] == style).all()
    pd.testing.assert_frame_equal(out.drop(columns=["prompt", "style"]), items_from_disk)
    system = out["prompt"].iloc[0][0]["content"]
    assert system.startswith("You are") and "<answer></answer>" in system
    assert ("<reasoning></reasoning>" in system) == (style == "structured_cot")
    for prompt, row in zip(out["prompt"], items_from_disk.itertuples(index=False)):
        assert isinstance(prompt, list) and [m["role"] for m in prompt] == ["system", "user"]
        assert prompt[0]["content"] == system  # the same for every item
        user = prompt[1]["content"]
        assert user.startswith("You are")  # second person, like the release's prompts
        assert "The person" not in user and "the person" not in user
        assert f"Question: {row.question}" in user
        for option in row.options:
            assert f"\n- {option}\n" in user + "\n"
        assert ("<reasoning></reasoning>" in user) == (style == "structured_cot")
        assert "<answer></answer>" in user


@pytest.mark.parametrize("style", ["structured_cot", "direct"])
def test_full_persona_names_every_answered_attribute(items_from_disk, style):
    out = prompt_corpus(items_from_disk, style)
    attributes = [a for a in ATTRIBUTES if a in items_from_disk.columns]
    for prompt, (_, row) in zip(out["prompt"], items_from_disk.iterrows()):
        line = persona_line(prompt)
        for a in attributes:
            if row[a] != NOT_ANSWERED:
                assert row[a] in line, (a, row[a])
        assert NOT_ANSWERED not in line


def test_country_only_persona(items_from_disk):
    out = prompt_corpus(items_from_disk, "country_only")
    others = [a for a in ATTRIBUTES if a != "Country" and a in items_from_disk.columns]
    for prompt, (_, row) in zip(out["prompt"], items_from_disk.iterrows()):
        line = persona_line(prompt)
        assert line == persona_of(phrase("Country", row["Country"]))
        rest = line.replace(row["Country"], "")  # 'German' (language) is inside 'Germany' (country)
        for a in others:
            assert str(row[a]) not in rest, (a, row[a])
    # two rows of the same country and question but different profiles get the same country_only prompt
    same = items_from_disk.groupby(["Country", "question_id"])["profile_id"].transform("nunique") > 1
    assert same.any()
    grouped = out[same].groupby(["Country", "question_id"])["prompt"]
    assert all(len({str(p) for p in prompts}) == 1 for _, prompts in grouped)


def test_not_answered_attributes_omitted(items_from_disk):
    attributes = [a for a in ATTRIBUTES if a in items_from_disk.columns]
    complete = items_from_disk[(items_from_disk[attributes] != NOT_ANSWERED).all(axis=1)]
    row = complete.iloc[[0]].copy()
    full = persona_line(prompt_corpus(row, "direct")["prompt"].iloc[0])
    assert full == persona_of(*(phrase(a, row[a].iloc[0]) for a in attributes))  # DVMap's attribute order
    assert phrase("Gender", row["Gender"].iloc[0]) in full
    row["Gender"] = NOT_ANSWERED
    row["Religion"] = NOT_ANSWERED
    line = persona_line(prompt_corpus(row, "direct")["prompt"].iloc[0])
    assert NOT_ANSWERED not in line
    gender_label = WORDING.persona["phrases"]["Gender"].split("{")[0]
    religion_label = WORDING.persona["phrases"]["Religion"].split("{")[0]
    assert gender_label not in line and religion_label not in line
    assert phrase("Country", row["Country"].iloc[0]) in line
    assert phrase("Education Level", row["Education Level"].iloc[0]) in line
    # a person with nothing known
    blank = row.copy()
    for a in ATTRIBUTES:
        blank[a] = NOT_ANSWERED
    for style in PERSONA_STYLES:
        assert persona_line(prompt_corpus(blank, style)["prompt"].iloc[0]) == persona_of()
    # country_only with an unanswered country says nothing about the person either
    no_country = row.copy()
    no_country["Country"] = NOT_ANSWERED
    assert persona_line(prompt_corpus(no_country, "country_only")["prompt"].iloc[0]) == persona_of()


def test_unknown_style_is_an_error(items_from_disk):
    with pytest.raises(DvmapError, match=r"prompts\.styles.*'chatty'"):
        prompt_corpus(items_from_disk, "chatty")


def test_verl_layout(tmp_path, items_from_disk, catalog):
    corpus = prompt_corpus(items_from_disk, "direct")
    verl = verl_layout(corpus)
    assert list(verl.columns) == ["data_source", "prompt", "ability", "reward_model", "extra_info"]
    assert len(verl) == len(corpus)
    assert (verl["data_source"] == "wvs").all()
    assert (verl["ability"] == "value_alignment").all()
    assert [r["ground_truth"] for r in verl["reward_model"]] == list(corpus["answer"])
    assert all(r["style"] == "rule" for r in verl["reward_model"])
    rows = zip(verl["extra_info"], verl["prompt"], corpus["prompt"].tolist(), corpus.iterrows())
    for i, (info, prompt, conversation, (_, row)) in enumerate(rows):
        assert prompt == conversation
        assert info["index"] == i
        assert info["item_id"] == row["item_id"] and info["question_id"] == row["question_id"]
        assert info["split"] == row["split"] and info["frequency"] == row["frequency"]
        assert info["Country"] == row["Country"]
        assert type(info["options"]) is list
        assert info["options"] == list(catalog[row["question_id"]].options)
    # and it survives a parquet round trip
    write_parquet(verl, tmp_path / "verl.parquet")
    back = read_parquet(tmp_path / "verl.parquet")
    assert [r["ground_truth"] for r in back["reward_model"]] == list(corpus["answer"])
