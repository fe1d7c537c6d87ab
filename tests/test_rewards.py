"""GRPO rewards (dvmap.training.rewards) on hand-built completions, as TRL calls them: plain strings and TRL's conversational
form, exact values computed by hand. dvmap's own rewards (distribution also on a corpus built from archetype
statistics, through the GRPO dataset), then the release's (wvs, wvs_d, wvs_g, wvs_p) branch by branch, with the
options as a list and as the release's comma-joined string (string_options), and on real rows of the release's dev
set. Also options as numpy arrays (what parquet and datasets give), reward parameters, the registry and the accuracy
metric."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dvmap.corpus.items import items_from_archetypes
from dvmap.corpus.prompts import prompt_corpus
from dvmap.errors import DvmapError
from dvmap.io import read_parquet, write_parquet
from dvmap.survey.archetypes import archetype_stats
from dvmap.survey.catalog import Question
from dvmap.training.rewards import (LOGGED, REGISTRY, REWARD_PARAMS, REWARDS, accuracy, format_bonus, logged_funcs, make_reward,
                           reward_columns, reward_params, reward_weights)

OPTIONS = ["Never", "Rarely", "Often", "Always"]  # K = 4; no option is a word of another
K = len(OPTIONS)
#: What TRL passes besides the completions and the dataset columns.
TRL_EXTRAS = {"completion_ids": None, "trainer_state": None, "log_extra": None, "log_metric": None}


def conversational(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


def call(reward, texts, gold, form="plain", **columns):
    """Call ``reward`` as TRL does: one entry per completion in every column, plus TRL's extra keywords."""
    completions = [conversational(t) if form == "conversational" else t for t in texts]
    prompts = [[{"role": "user", "content": "q"}] if form == "conversational" else "q" for _ in texts]
    golds = gold if isinstance(gold, list) else [gold] * len(texts)
    return reward(prompts=prompts, completions=completions, options=[list(OPTIONS) for _ in texts],
                  answer_index=golds, **TRL_EXTRAS, **columns)


FORMS = pytest.mark.parametrize("form", ["plain", "conversational"])


# --------------------------------------------------------------------------------------------------------------
# each reward
# --------------------------------------------------------------------------------------------------------------

@FORMS
def test_binary_reward(form):
    beta = REWARD_PARAMS["binary"]["format_weight"]
    assert beta == 0.1
    texts = ["<answer>Rarely</answer>",          # gold, tagged
             "<answer>Often</answer>",           # wrong, tagged
             "Rarely",                           # gold, no tag but parseable: format 0
             "Often",                            # wrong, no tag
             "I cannot say.",                    # unparseable
             "<answer>sometimes</answer>",       # tagged but unparseable: format 0 too
             "",                                 # empty
             "Some thoughts... <answer> rarely. </answer>"]  # normalised, gold, tagged
    values = call(make_reward("binary"), texts, gold=1, form=form)
    assert values == pytest.approx([1 + beta, beta, 1.0, 0.0, 0.0, 0.0, 0.0, 1 + beta])


@FORMS
def test_binary_format_weight_override(form):
    values = call(make_reward("binary", {"format_weight": 0.5}), ["<answer>Rarely</answer>", "<answer>Never</answer>",
                                                                  "Rarely"], gold=1, form=form)
    assert values == pytest.approx([1.5, 0.5, 1.0])
    assert call(make_reward("binary", {"format_weight": 0.0}), ["<answer>Never</answer>"], gold=1) == [0.0]


@FORMS
def test_likert_reward(form):
    beta = 0.1
    reward = make_reward("likert")
    # gold 0 ("Never"): Δ = 0, 1, 3; then unparseable and untagged Δ=2.
    texts = ["<answer>Never</answer>", "<answer>Rarely</answer>", "<answer>Always</answer>", "<answer>?</answer>",
             "Often"]
    values = call(reward, texts, gold=0, form=form)
    assert values == pytest.approx([1 + beta, 1 - 1 / 3 + beta, 0 + beta, 0.0, 1 - 2 / 3])
    # Δ is symmetric: gold 2 ("Often"), answers one step below and above.
    assert call(reward, ["<answer>Rarely</answer>", "<answer>Always</answer>"], gold=2, form=form) == \
        pytest.approx([2 / 3 + beta, 2 / 3 + beta])


@FORMS
def test_likert_alpha_and_format_weight(form):
    reward = make_reward("likert", {"alpha": 2.0, "format_weight": 0.25})
    values = call(reward, ["<answer>Never</answer>", "<answer>Rarely</answer>", "<answer>Always</answer>", "Rarely"],
                  gold=0, form=form)
    assert values == pytest.approx([2.0 + 0.25, 2.0 * (1 - 1 / 3) + 0.25, 0.25, 2.0 * (1 - 1 / 3)])


def gaussian(delta: int, sigma: float) -> float:
    return math.exp(-((delta / (K - 1)) ** 2) / (2 * sigma ** 2))


@FORMS
def test_gaussian_reward(form):
    texts = ["<answer>Never</answer>", "<answer>Rarely</answer>", "<answer>Often</answer>", "<answer>Always</answer>",
             "no idea"]
    values = call(make_reward("gaussian"), texts, gold=0, form=form)  # default sigma 0.5, format weight 0
    expected = [gaussian(d, 0.5) for d in range(4)] + [0.0]
    assert values == pytest.approx(expected)
    assert values[1] == pytest.approx(math.exp(-2 / 9))
    assert values[0] > values[1] > values[2] > values[3] > 0

    narrow = call(make_reward("gaussian", {"sigma": 0.2, "format_weight": 0.3}), texts + ["Rarely"], gold=0, form=form)
    assert narrow == pytest.approx([gaussian(d, 0.2) + 0.3 for d in range(4)] + [0.0, gaussian(1, 0.2)])


@FORMS
def test_rarity_reward(form):
    beta = 0.1
    reward = make_reward("rarity")
    texts = ["<answer>Rarely</answer>", "<answer>Rarely</answer>", "<answer>Never</answer>", "Rarely",
             "<answer>x</answer>"]
    frequency = [0.75, 0.2, 0.75, 0.4, 0.1]
    values = call(reward, texts, gold=1, form=form, frequency=frequency)
    assert values == pytest.approx([0.25 + beta, 0.8 + beta, beta, 0.6, 0.0])
    # Without the frequency column the bonus is the full 1.
    assert call(reward, ["<answer>Rarely</answer>"], gold=1, form=form) == pytest.approx([1 + beta])


#: The binary test's completions: gold (tagged, untagged, normalised), wrong, unparseable, tagged but unparseable.
BINARY_TEXTS = ["<answer>Rarely</answer>", "<answer>Often</answer>", "Rarely", "Often", "I cannot say.",
                "<answer>sometimes</answer>", "", "Some thoughts... <answer> rarely. </answer>"]


@FORMS
def test_distribution_is_binary_on_a_unanimous_item(form):
    """All 5 respondents gave the gold answer (Rarely): the share is 1[gold], the reward binary's, to the bit."""
    assert REWARD_PARAMS["distribution"] == {"format_weight": 0.1}
    counts = [[0, 5, 0, 0]] * len(BINARY_TEXTS)
    values = call(make_reward("distribution"), BINARY_TEXTS, gold=1, form=form, counts=counts)
    assert values == pytest.approx([1.1, 0.1, 1.0, 0.0, 0.0, 0.0, 0.0, 1.1])
    assert values == call(make_reward("binary"), BINARY_TEXTS, gold=1, form=form)
    for weight in (0.0, 0.5):
        assert call(make_reward("distribution", {"format_weight": weight}), BINARY_TEXTS, gold=1, form=form,
                    counts=counts) == call(make_reward("binary", {"format_weight": weight}), BINARY_TEXTS, gold=1,
                                           form=form)


@FORMS
def test_distribution_gives_each_answer_its_share(form):
    """3 of 5 respondents answered Rarely (the label), 2 Often, none Never or Always."""
    beta = 0.1
    reward = make_reward("distribution")
    texts = ["<answer>Rarely</answer>",     # the majority: 3/5
             "<answer>Often</answer>",      # the minority: 2/5
             "Rarely", "Often",             # untagged: no format term
             "<answer>Never</answer>",      # an option nobody gave: the format term only
             "Always",
             "<answer>sometimes</answer>",  # unparseable: 0
             "Rarely or Often?"]            # two options named: unparseable
    counts = [[0, 3, 2, 0]] * len(texts)
    expected = [0.6 + beta, 0.4 + beta, 0.6, 0.4, beta, 0.0, 0.0, 0.0]
    assert call(reward, texts, gold=1, form=form, counts=counts) == pytest.approx(expected)
    # The gold index and the frequency play no part: a label drawn among tied options, or any frequency, scores
    # the same.
    assert call(reward, texts, gold=2, form=form, counts=counts, frequency=[0.9] * len(texts)) == \
        pytest.approx(expected)
    assert call(make_reward("distribution", {"format_weight": 0.0}), texts[:2], gold=1, form=form,
                counts=counts[:2]) == pytest.approx([0.6, 0.4])


def test_distribution_reads_each_rows_counts():
    reward = make_reward("distribution")
    values = reward(completions=["<answer>Yes</answer>", conversational("<answer>No</answer>"),
                                 "<answer>Often</answer>", "<answer>Often</answer>"],
                    options=[["Yes", "No"], ["Yes", "No"], OPTIONS, OPTIONS], answer_index=[0, 0, 3, 2],
                    counts=[[1, 3], [1, 3], [1, 1, 1, 5], [0, 0, 7, 0]], **TRL_EXTRAS)
    assert values == pytest.approx([0.25 + 0.1, 0.75 + 0.1, 1 / 8 + 0.1, 1.1])


def test_distribution_with_numpy_counts_from_parquet(tmp_path):
    """Parquet and datasets give options and counts back as numpy arrays."""
    frame = pd.DataFrame({"options": [list(OPTIONS), ["Yes", "No", "Maybe"]], "answer_index": [1, 0],
                          "counts": [[0, 3, 2, 0], [2, 0, 2]]})
    write_parquet(frame, tmp_path / "c.parquet")
    back = read_parquet(tmp_path / "c.parquet")
    assert all(isinstance(c, np.ndarray) for c in back["counts"]) and all(
        isinstance(o, np.ndarray) for o in back["options"])
    reward = make_reward("distribution")
    values = reward(completions=["<answer>Often</answer>", "<answer>Maybe</answer>"], options=back["options"].tolist(),
                    answer_index=back["answer_index"].to_numpy(), counts=back["counts"].tolist())
    assert values == pytest.approx([0.4 + 0.1, 0.5 + 0.1])
    # int32 and whole float arrays too (a column read by other means).
    assert reward(completions=["Often", "Never"], options=[np.array(OPTIONS, dtype=object)] * 2, answer_index=[1, 1],
                  counts=[np.array([0, 3, 2, 0], dtype=np.int32), np.array([1.0, 3.0, 0.0, 0.0])]) == \
        pytest.approx([0.4, 0.25])


def test_distribution_without_counts_names_the_reward_and_the_column():
    reward = make_reward("distribution")
    for missing in ({}, {"counts": None}):  # no column; a column TRL passes as None
        with pytest.raises(DvmapError) as info:
            reward(completions=["<answer>Rarely</answer>"], options=[OPTIONS], answer_index=[1], frequency=[0.5],
                   **TRL_EXTRAS, **missing)
        message = str(info.value)
        assert "reward distribution" in message and "column(s) counts" in message
        assert "DVMap's release" in message
    assert reward_columns("distribution") == ("counts",)
    assert all(reward_columns(name) == () for name in REWARDS if name != "distribution")


@pytest.mark.parametrize("counts,match", [
    ([[0, 3, 2, 0], None], "counts of row 1 are None"),               # an item without counts in a mixed corpus
    ([[0, 3, 2, 0], [1, 2, 3]], "row 1 has 3 answer count"),          # not one count per option
    ([[0, 3, 2, 0], [0, 0, 0, 0]], "counts of row 1 .* positive sum"),
    ([[0, 3, 2, 0], [0, -1, 2, 0]], "counts of row 1 .* whole numbers"),
    ([[0, 3, 2, 0], [0, 1.5, 2, 0]], "counts of row 1 .* whole numbers"),
    ([[0, 3, 2, 0], [0, float("nan"), 2, 0]], "counts of row 1 .* whole numbers"),
    ([[0, 3, 2, 0], "0,3,2,0"], "counts of row 1 .* must be a list"),
])
def test_distribution_refuses_bad_counts(counts, match):
    with pytest.raises(DvmapError, match=match):
        make_reward("distribution")(completions=["<answer>Rarely</answer>"] * 2, options=[OPTIONS, OPTIONS],
                                    answer_index=[1, 1], counts=counts)


# --------------------------------------------------------------------------------------------------------------
# distribution on a corpus built from archetypes, through the GRPO dataset
# --------------------------------------------------------------------------------------------------------------

CATALOG = {"QX": Question("QX", "SECTION X", "How often?", tuple(OPTIONS), {i + 1: o for i, o in enumerate(OPTIONS)})}
#: (Country, Gender, answer) per respondent: a 3/5–2/5 split and a unanimous group.
RESPONDENTS = ([("Aland", "Female", a) for a in ["Rarely"] * 3 + ["Often"] * 2]
               + [("Aland", "Male", "Never")] * 4)


@pytest.fixture
def archetype_corpus(tmp_path) -> Path:
    """The prompt corpus of items built from archetype statistics (every pair kept, as with threshold majority)."""
    frame = pd.DataFrame(RESPONDENTS, columns=["Country", "Gender", "QX"])
    frame.insert(0, "respondent_id", [f"r{i}" for i in range(len(frame))])
    frame["QX"] = pd.Categorical(frame["QX"], categories=OPTIONS)
    items = items_from_archetypes(archetype_stats(frame, CATALOG), CATALOG, split="train", data_source="wvs")
    path = tmp_path / "train.parquet"
    write_parquet(prompt_corpus(items, "direct"), path)
    return path


def test_distribution_on_a_corpus_from_archetypes(archetype_corpus):
    """items carry counts; the prompt corpus keeps them; the GRPO dataset passes them to the reward as TRL does."""
    pytest.importorskip("datasets")
    from dvmap.training.datasets import reward_dataset

    data = reward_dataset(archetype_corpus, None, 0, reward="distribution")
    assert "counts" in data.column_names
    rows = {tuple(r["counts"]): r for r in data}
    assert set(rows) == {(0, 3, 2, 0), (4, 0, 0, 0)}
    split, unanimous = rows[(0, 3, 2, 0)], rows[(4, 0, 0, 0)]
    assert split["options"] == OPTIONS and split["answer_index"] == 1 and unanimous["answer_index"] == 0
    # TRL's reward keywords: every column but the prompt, one entry per completion (a group repeats its row).
    texts = ["<answer>Rarely</answer>", "<answer>Often</answer>", "<answer>Always</answer>", "Often",
             "<answer>Never</answer>", "<answer>Rarely</answer>"]
    group = [split] * 4 + [unanimous] * 2
    columns = {key: [row[key] for row in group] for key in data.column_names if key != "prompt"}
    values = make_reward("distribution")(prompts=[row["prompt"] for row in group],
                                         completions=[conversational(t) for t in texts], **columns, **TRL_EXTRAS)
    assert values == pytest.approx([0.6 + 0.1, 0.4 + 0.1, 0.1, 0.4, 1.1, 0.1])
    # The unanimous rows score as binary does.
    binary = make_reward("binary")(completions=[conversational(t) for t in texts[4:]], **{
        key: value[4:] for key, value in columns.items()})
    assert values[4:] == binary


def test_reward_dataset_refuses_a_corpus_without_counts_for_distribution(archetype_corpus, tmp_path):
    """Items imported from DVMap's release have no counts: distribution is refused when the dataset is built;
    the other rewards train on such a corpus, whose dataset has no counts column."""
    pytest.importorskip("datasets")
    from dvmap.training.datasets import reward_dataset

    release_like = tmp_path / "release.parquet"
    write_parquet(read_parquet(archetype_corpus).drop(columns=["counts"]), release_like)
    with pytest.raises(DvmapError) as info:
        reward_dataset(release_like, None, 0, reward="distribution")
    message = str(info.value)
    assert str(release_like) in message and "reward distribution" in message and "column(s) counts" in message
    for reward in (None, "binary", "wvs"):
        assert "counts" not in reward_dataset(release_like, None, 0, reward=reward).column_names
    assert "counts" not in reward_dataset(release_like, None, 0, "sft").column_names
    # An item without counts in a mixed corpus is refused too, naming it.
    mixed = read_parquet(archetype_corpus)
    mixed["counts"] = [None, *mixed["counts"].iloc[1:]]
    write_parquet(mixed, tmp_path / "mixed.parquet")
    with pytest.raises(DvmapError, match=rf"1 of the 2 items drawn \(e.g. {mixed['item_id'].iloc[0]}\).*"
                                         r"reward distribution"):
        reward_dataset(tmp_path / "mixed.parquet", None, 0, reward="distribution")
    assert reward_dataset(tmp_path / "mixed.parquet", None, 0, reward="binary")["counts"][0] is None


@pytest.mark.parametrize("name", REWARDS)
def test_reward_name_and_trl_keywords(name):
    reward = make_reward(name)
    assert reward.__name__ == name
    assert REWARDS == ("binary", "likert", "gaussian", "rarity", "distribution", "wvs", "wvs_d", "wvs_g", "wvs_p")
    # TRL's full keyword set, per-row golds, the frequency column every corpus has and the counts of items built
    # from archetypes (unanimous here), which the rewards that do not read them ignore.
    values = reward(prompts=["p", "p"], completions=["<answer>Never</answer>", "<answer>Always</answer>"],
                    completion_ids=[[1, 2], [3]], trainer_state=object(), log_extra=lambda *a: None,
                    log_metric=lambda *a: None, options=[OPTIONS, OPTIONS], answer_index=[0, 3],
                    frequency=[0.0, 0.0], counts=[[4, 0, 0, 0], [0, 0, 0, 4]])
    assert len(values) == 2 and all(isinstance(v, float) for v in values)
    assert values[0] == pytest.approx(values[1]) and values[0] > 0.5  # both are gold


def test_rewards_per_row_gold_and_options():
    """Each completion is scored against its own row's options and gold."""
    reward = make_reward("likert")
    values = reward(completions=["<answer>Yes</answer>", "<answer>Yes</answer>", "<answer>Often</answer>"],
                    options=[["Yes", "No"], ["Yes", "No"], OPTIONS], answer_index=[0, 1, 3])
    assert values == pytest.approx([1.1, 0.1, 2 / 3 + 0.1])


# --------------------------------------------------------------------------------------------------------------
# options arriving in the wrong shape
# --------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", REWARDS)
def test_comma_joined_options_are_refused(name):
    reward = make_reward(name)
    good = list(OPTIONS)
    with pytest.raises(DvmapError) as info:
        reward(completions=["<answer>Never</answer>", "<answer>Rarely</answer>"], options=[good, ", ".join(OPTIONS)],
               answer_index=[0, 0], frequency=[0.5, 0.5], counts=[[1, 1, 1, 1], [1, 1, 1, 1]])
    message = str(info.value)
    assert "row 1" in message
    assert "must be a list" in message
    with pytest.raises(DvmapError, match="row 0.*must be a list"):
        accuracy(completions=["<answer>Never</answer>"], options=[", ".join(OPTIONS)], answer_index=[0])


def test_too_few_options_are_refused():
    with pytest.raises(DvmapError, match="row 0 has 1 option"):
        make_reward("binary")(completions=["<answer>Yes</answer>"], options=[["Yes"]], answer_index=[0])


def test_numpy_options_from_parquet(tmp_path):
    """Parquet (and datasets) hand options back as numpy arrays; they are options lists all the same."""
    frame = pd.DataFrame({"options": [list(OPTIONS), ["Yes", "No", "Maybe"]], "answer_index": [0, 2],
                          "frequency": [0.5, 0.25]})
    write_parquet(frame, tmp_path / "c.parquet")
    back = read_parquet(tmp_path / "c.parquet")
    options = back["options"].tolist()
    assert all(isinstance(o, np.ndarray) for o in options)
    completions = ["<answer>Rarely</answer>", "<answer>Maybe</answer>"]
    assert make_reward("likert")(completions=completions, options=options,
                                 answer_index=back["answer_index"].to_numpy()) == pytest.approx([2 / 3 + 0.1, 1.1])
    assert make_reward("rarity")(completions=completions, options=options, answer_index=back["answer_index"].tolist(),
                                 frequency=back["frequency"].to_numpy()) == pytest.approx([0.1, 0.75 + 0.1])
    assert accuracy(completions=completions, options=options, answer_index=back["answer_index"].tolist()) == [0.0, 1.0]
    # A plain object array too.
    arr = np.array(OPTIONS, dtype=object)
    assert make_reward("binary")(completions=["<answer>Often</answer>"], options=[arr], answer_index=[2]) == \
        pytest.approx([1.1])


# --------------------------------------------------------------------------------------------------------------
# parameters
# --------------------------------------------------------------------------------------------------------------

def test_reward_params_defaults_and_overrides():
    assert reward_params("likert") == {"alpha": 1.0, "format_weight": 0.1}
    assert reward_params("likert", {"alpha": 3}) == {"alpha": 3, "format_weight": 0.1}
    assert reward_params("gaussian", None) == {"sigma": 0.5, "format_weight": 0.0}
    # The defaults are not mutated by an override.
    reward_params("binary", {"format_weight": 9})
    assert REWARD_PARAMS["binary"] == {"format_weight": 0.1}


@pytest.mark.parametrize("name,key", [("binary", "alpha"), ("likert", "sigma"), ("gaussian", "alpha"),
                                      ("rarity", "weight"), ("distribution", "alpha")])
def test_unknown_reward_param_is_an_error_naming_it(name, key):
    with pytest.raises(DvmapError) as info:
        make_reward(name, {key: 1.0})
    assert f"training.reward_params.{name}" in str(info.value)
    assert repr(key) in str(info.value)
    with pytest.raises(DvmapError, match=rf"training\.reward_params\.{name}"):
        reward_params(name, {key: 1.0})


@pytest.mark.parametrize("name,key", [("wvs", "sigma"), ("wvs_d", "strings_options"), ("wvs_g", "format_weight"),
                                      ("wvs_p", "alpha")])
def test_unknown_release_reward_param_names_its_key(name, key):
    with pytest.raises(DvmapError, match=rf"training\.reward_params\.{name}\.{key}\b"):
        make_reward(name, {key: 1.0})


def test_unknown_reward_name_is_an_error():
    with pytest.raises(DvmapError, match="unknown reward 'accuracy'"):
        make_reward("accuracy")  # logged, not a training reward
    with pytest.raises(DvmapError, match="unknown reward 'bianry'.*binary"):
        reward_params("bianry")
    for name in ("WVS", "wvs-d", "WVS_p"):  # the release's names are lower case with underscores
        with pytest.raises(DvmapError, match=f"unknown reward '{name}'.*wvs_d"):
            reward_params(name)
    with pytest.raises(DvmapError, match="unknown reward 'x'"):
        reward_weights("x")


@pytest.mark.parametrize("sigma", [0, 0.0, -0.5])
def test_gaussian_sigma_must_be_positive(sigma):
    with pytest.raises(DvmapError, match=r"training\.reward_params\.gaussian\.sigma must be > 0"):
        make_reward("gaussian", {"sigma": sigma})
    with pytest.raises(DvmapError, match=r"training\.reward_params\.wvs_g\.sigma must be > 0"):
        make_reward("wvs_g", {"sigma": sigma})


def test_release_reward_params_defaults():
    release = {"score": 2.0, "format_score": 1.0, "string_options": False}
    assert REWARD_PARAMS["wvs"] == REWARD_PARAMS["wvs_d"] == REWARD_PARAMS["wvs_p"] == release
    assert REWARD_PARAMS["wvs_g"] == {**release, "sigma": 0.25}
    assert reward_params("wvs_d", {"string_options": True}) == {**release, "string_options": True}
    assert REWARD_PARAMS["wvs_d"]["string_options"] is False


def test_registry():
    """One entry per name: parameters, score function, description, weight; accuracy is logged with weight 0."""
    assert LOGGED == ("accuracy",)
    assert set(REGISTRY) == {*REWARDS, *LOGGED}
    assert all(REGISTRY[name].description and REGISTRY[name].weight == 1.0 for name in REWARDS)
    assert REGISTRY["accuracy"].weight == 0.0 and REGISTRY["accuracy"].params == {}
    assert {name: REGISTRY[name].columns for name in REGISTRY if REGISTRY[name].columns} == {"distribution": ("counts",)}
    for name in REWARDS:
        assert reward_weights(name) == [1.0, 0.0]
    assert [f.__name__ for f in logged_funcs()] == ["accuracy"]
    assert logged_funcs()[0](completions=["<answer>Often</answer>"], options=[OPTIONS], answer_index=[2]) == [1.0]


# --------------------------------------------------------------------------------------------------------------
# accuracy
# --------------------------------------------------------------------------------------------------------------

@FORMS
def test_accuracy(form):
    texts = ["<answer>Rarely</answer>", "<answer>Often</answer>", "Rarely", "unsure", "<answer>Never</answer>"]
    completions = [conversational(t) if form == "conversational" else t for t in texts]
    values = accuracy(prompts=["q"] * 5, completions=completions, options=[OPTIONS] * 5, answer_index=[1, 1, 1, 1, 0],
                      frequency=[0.5] * 5, **TRL_EXTRAS)
    assert values == [1.0, 0.0, 1.0, 0.0, 1.0]
    assert accuracy.__name__ == "accuracy"


# --------------------------------------------------------------------------------------------------------------
# the release's rewards: wvs, wvs_d, wvs_g, wvs_p
# --------------------------------------------------------------------------------------------------------------

#: K = 5; "Agree" lies inside "Agree strongly", not inside "Disagree" (case-sensitive). Joined with ", " it is
#: 78 characters: "Agree strongly" and the first "Agree" at 0, "Neither…" at 23, "Disagree" at 51, the only "N" at 23.
AGREE = ["Agree strongly", "Agree", "Neither agree nor disagree", "Disagree", "Disagree strongly"]
REASONED = "<reasoning>Some thoughts.</reasoning>\n"  # with an answer pair: all four tags, bonus 0.8


def release(name, texts, gold, options=OPTIONS, form="plain", frequency=None, **params):
    """Reward ``name`` with ``params`` on ``texts``, all rows with the same options and gold."""
    completions = [conversational(t) if form == "conversational" else t for t in texts]
    columns = {} if frequency is None else {"frequency": [frequency] * len(texts)}
    return make_reward(name, params)(prompts=["q"] * len(texts), completions=completions,
                                     options=[list(options)] * len(texts), answer_index=[gold] * len(texts),
                                     **TRL_EXTRAS, **columns)


def test_format_bonus_counts_each_tag_once_anywhere():
    assert format_bonus("no tags") == 0.0
    assert format_bonus("<answer>") == format_bonus("</reasoning>") == 0.2
    assert format_bonus("<answer>x</answer>") == 0.4
    assert format_bonus("<answer><answer><answer>") == 0.2
    assert format_bonus("<reasoning></reasoning><answer>") == 0.6000000000000001  # the release's float sum, not 0.6
    assert format_bonus("<reasoning>" + "z" * 1000 + "</reasoning><answer>a</answer>") == 0.8
    assert format_bonus("<REASONING></Reasoning><ANSWER></ANSWER>") == 0.0  # case-sensitive


@FORMS
@pytest.mark.parametrize("name", ["wvs", "wvs_d", "wvs_g", "wvs_p"])
def test_release_rewards_without_an_answer_score_the_bonus(name, form):
    texts = ["Rarely",                                       # no tags
             "<answer></answer>",                            # empty
             "<answer>  \n </answer>",                       # blank
             "<answer>...</answer>",                         # the release's placeholder
             REASONED + "<answer> ... </answer>",           # stripped to "...": all four tags
             "<answer>Rarely",                               # no closing tag
             "<ANSWER>Rarely</ANSWER>",                      # case-sensitive tags
             "<answer>Rarely</answer> <answer></answer>"]    # the last pair is empty
    assert release(name, texts, 1, form=form, frequency=0.5) == [0.0, 0.4, 0.4, 0.4, 0.8, 0.2, 0.0, 0.4]


@FORMS
def test_wvs(form):
    texts = ["<answer>Rarely</answer>",                   # exactly gold: score
             REASONED + "<answer>Rarely</answer>",       # with all four tags
             "<answer>I would say Rarely.</answer>",      # gold the only option inside: format_score
             "<answer>Rarely or Often</answer>",          # another option inside too
             "<answer>Often</answer>",                    # another option: no partial credit in wvs
             "<answer>rarely</answer>",                   # case-sensitive
             "<answer>Sometimes</answer>"]
    assert release("wvs", texts, 1, form=form) == [2 + 0.4, 2 + 0.8, 1 + 0.4, 0.4, 0.4, 0.4, 0.4]
    assert release("wvs", texts[:3], 1, form=form, score=3.0, format_score=0.5) == [3.4, 3.8, 0.9]


@FORMS
def test_wvs_d(form):
    texts = ["<answer>Agree</answer>",                    # exactly gold: score
             "<answer>Disagree</answer>",                 # another exact option, Δ = 2: 1 − 2/5
             REASONED + "<answer>Agree strongly</answer>",  # Δ = 1: 1 − 1/5
             "<answer>I Agree.</answer>",                 # gold the only option inside: format_score
             "<answer>I Disagree.</answer>",              # one other option inside, Δ = 2: half of 1 − 2/5
             "<answer>Agree strongly, I think</answer>",  # gold AND one other inside: half of 1 − 1/5 (release code)
             "<answer>I Disagree strongly.</answer>",     # two other options inside: nothing
             "<answer>agree</answer>"]                    # case-sensitive: nothing
    expected = [2 + 0.4, (1 - 2 / 5) + 0.4, (1 - 1 / 5) + 0.8, 1 + 0.4, 0.5 * (1 - 2 / 5) + 0.4,
                0.5 * (1 - 1 / 5) + 0.4, 0.4, 0.4]
    assert release("wvs_d", texts, 1, options=AGREE, form=form) == expected
    # wvs has no partial credit for the same answers.
    assert release("wvs", texts, 1, options=AGREE, form=form) == [2.4, 0.4, 0.8, 1.4, 0.4, 0.4, 0.4, 0.4]
    assert release("wvs_d", texts[:4], 1, options=AGREE, score=5.0, format_score=0.25) == \
        [5.4, (1 - 2 / 5) + 0.4, (1 - 1 / 5) + 0.8, 0.65]


@FORMS
def test_wvs_g(form):
    sigma2 = 2 * 0.25 ** 2  # 0.125
    texts = ["<answer>Rarely</answer>",                   # exactly gold: score + 1
             REASONED + "<answer>Rarely</answer>",
             "<answer>Often</answer>",                    # Δ = 1 of K − 1 = 3
             "<answer>Never</answer>",                    # Δ = −1
             "<answer>Always</answer>",                   # Δ = 2
             "<answer>It is Rarely</answer>",             # gold the only option inside: format_score
             "<answer>It is Often</answer>",              # one other inside: no half credit in wvs_g
             "<answer>Rarely, Often</answer>"]
    expected = [2 + 0.4 + 1, 2 + 0.8 + 1, math.exp(-(1 / 3) ** 2 / sigma2) + 0.4,
                math.exp(-(1 / 3) ** 2 / sigma2) + 0.4, math.exp(-(2 / 3) ** 2 / sigma2) + 0.4, 1.4, 0.4, 0.4]
    values = release("wvs_g", texts, 1, form=form)
    assert values == pytest.approx(expected)
    assert values[2] == pytest.approx(math.exp(-8 / 9) + 0.4)
    assert values[1] == 3.8  # (2 + 0.8) + 1, the release's order
    wide = release("wvs_g", texts[:3], 1, form=form, sigma=0.5, score=1.0)
    assert wide == pytest.approx([1 + 0.4 + 1, 1 + 0.8 + 1, math.exp(-2 / 9) + 0.4])


@FORMS
def test_wvs_p(form):
    texts = ["<answer>Agree</answer>", "<answer>Disagree</answer>", "<answer>I Agree.</answer>",
             "<answer>I Disagree.</answer>", "<answer>Agree strongly, I think</answer>", "<answer>maybe</answer>",
             "no answer"]
    p = 1 - 0.25
    expected = [2 * p + 0.4, (1 - 2 / 5) * p + 0.4, 1 * p + 0.4, 0.5 * (1 - 2 / 5) * p + 0.4,
                0.5 * (1 - 1 / 5) * p + 0.4, 0.4, 0.0]
    assert release("wvs_p", texts, 1, options=AGREE, form=form, frequency=0.25) == pytest.approx(expected)
    assert release("wvs_p", texts[:1], 1, options=AGREE, frequency=0.25) == [1.9]
    # Everyone gives the gold answer: only the bonus is left.
    assert release("wvs_p", texts[:4], 1, options=AGREE, frequency=1.0) == [0.4] * 4
    # Without the frequency column p = 1: wvs_d.
    assert release("wvs_p", texts, 1, options=AGREE) == release("wvs_d", texts, 1, options=AGREE)


def test_release_answer_in_the_last_300_characters():
    tag = "<answer>Rarely</answer>"  # 23 characters
    assert release("wvs", [tag + "x" * 277], 1) == [2.4]              # 300 characters: seen
    assert release("wvs", [tag + "x" * 278], 1) == [0.4]              # 301: its "<" is clipped, the bonus remains
    assert release("wvs", [tag + "x" * 1000], 1) == [0.4]
    long = "<reasoning>" + "y" * 5000 + "</reasoning>\n" + tag
    assert release("wvs", [long], 1) == [2.8]                        # tags outside the window still earn the bonus
    assert release("wvs_d", [tag + "x" * 300 + "<answer>Often</answer>"], 1) == [(1 - 1 / 4) + 0.4]


def test_release_last_complete_pair_wins():
    assert release("wvs", ["<answer>Often</answer> no: <answer>Rarely</answer>"], 1) == [2.4]
    assert release("wvs", ["<answer>Rarely</answer> no: <answer>Often</answer>"], 1) == [0.4]
    # An unclosed last tag: the last complete pair is read (the strict evaluation would read nothing).
    assert release("wvs", ["<answer>Rarely</answer> <answer>Often"], 1) == [2.4]
    # Non-greedy across lines: "<answer>Often\n</answer>" is the last pair.
    assert release("wvs_d", ["<answer>\nRarely</answer>\n<answer>Often\n</answer>"], 1) == [(1 - 1 / 4) + 0.4]


def test_string_options_reproduce_the_release_character_walk():
    """string_options: the options are the ", "-joined string, as the release received them."""
    s = {"string_options": True}
    # Exactly gold is unaffected.
    assert release("wvs", ["<answer>Agree</answer>"], 1, options=AGREE, **s) == [2.4]
    assert release("wvs_g", ["<answer>Agree</answer>"], 1, options=AGREE, **s) == [3.4]
    # Gold inside a sentence: other characters of the joined string (" ", "I", …) are inside too.
    assert release("wvs", ["<answer>I Agree.</answer>"], 1, options=AGREE, **s) == [0.4]
    assert release("wvs_d", ["<answer>I Agree.</answer>"], 1, options=AGREE, **s) == [0.4]
    # An exact wrong option: closeness from character offsets in 78 characters; "Agree" is first found at 0,
    # inside "Agree strongly", so answering "Agree strongly" costs nothing.
    assert release("wvs_d", ["<answer>Disagree</answer>"], 1, options=AGREE, **s) == [(1 - 51 / 78) + 0.4]
    assert release("wvs_d", ["<answer>Agree strongly</answer>"], 1, options=AGREE, **s) == [(1 - 0 / 78) + 0.4]
    # Any substring of the joined string counts as an option.
    assert release("wvs_d", ["<answer>gree, Neith</answer>"], 1, options=AGREE, **s) == [(1 - 17 / 78) + 0.4]
    assert release("wvs_d", ["<answer>gree, Neith</answer>"], 1, options=AGREE) == [0.4]
    # Exactly one character of the joined string inside the answer: the "N" at 23 earns half credit.
    assert release("wvs_d", ["<answer>N!</answer>"], 1, options=AGREE, **s) == [0.5 * (1 - 23 / 78) + 0.4]
    assert release("wvs_p", ["<answer>N!</answer>"], 1, options=AGREE, frequency=0.5, **s) == \
        [0.5 * (1 - 23 / 78) * 0.5 + 0.4]
    # wvs_g: offsets 7 (Rarely) and 15 (Often) in "Never, Rarely, Often, Always" (28 characters, K − 1 = 27).
    assert release("wvs_g", ["<answer>Often</answer>"], 1, **s) == \
        pytest.approx([math.exp(-(8 / 27) ** 2 / 0.125) + 0.4])


def test_string_options_with_one_character_options():
    """With one-character options the release's character walk finds whole options again."""
    digits = ["1", "2", "3"]  # joined: "1, 2, 3"
    s = {"string_options": True}
    assert release("wvs", ["<answer>(2)</answer>"], 1, options=digits, **s) == [1.4]
    assert release("wvs", ["<answer>2 points</answer>"], 1, options=digits) == [1.4]
    assert release("wvs", ["<answer>2 points</answer>"], 1, options=digits, **s) == [0.4]  # " " is in "1, 2, 3"
    assert release("wvs_d", ["<answer>3</answer>"], 1, options=digits) == [(1 - 1 / 3) + 0.4]
    assert release("wvs_d", ["<answer>3</answer>"], 1, options=digits, **s) == [(1 - 3 / 7) + 0.4]


def test_release_rewards_with_numpy_options_and_per_row_data():
    options = [np.array(AGREE, dtype=object), np.array(OPTIONS), np.array(AGREE, dtype=object)]
    completions = ["<answer>Disagree</answer>", conversational("<answer>Rarely</answer>"), "<answer>I Agree</answer>"]
    frequency = np.array([0.5, 0.1, 0.2])
    assert make_reward("wvs_p")(completions=completions, options=options, answer_index=np.array([1, 1, 1]),
                                frequency=frequency) == pytest.approx([(1 - 2 / 5) * 0.5 + 0.4, 2 * 0.9 + 0.4,
                                                                       1 * 0.8 + 0.4])
    assert make_reward("wvs_d", {"string_options": True})(completions=completions, options=options,
                                                          answer_index=[1, 1, 1]) == [(1 - 51 / 78) + 0.4, 2.4, 0.4]


# --------------------------------------------------------------------------------------------------------------
# the release's rewards on the release's dev set
# --------------------------------------------------------------------------------------------------------------

RELEASE_DEV = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "dvmap_release" / "dev.parquet"


@pytest.fixture(scope="module")
def dev_rows():
    if not RELEASE_DEV.is_file():
        pytest.skip(f"{RELEASE_DEV} is absent")
    frame = pd.read_parquet(RELEASE_DEV, columns=["Q_id", "frequency", "Options", "answer"])
    frame["options"] = frame["Options"].str.split(", ")
    assert (frame["options"].str.join(", ") == frame["Options"]).all(), "the split must give back Options"
    frame["gold"] = [opts.index(a) for opts, a in zip(frame["options"], frame["answer"])]
    return frame


def score_rows(frame, name, texts, **params):
    return np.array(make_reward(name, params)(completions=list(texts), options=frame["options"].tolist(),
                                              answer_index=frame["gold"].tolist(),
                                              frequency=frame["frequency"].tolist()))


def test_string_options_on_the_release_dev_set(dev_rows):
    """What splitting Options into a list changes, on every row of the release's dev set."""
    rows = dev_rows
    assert len(rows) == 7183
    listed, joined = {}, {"string_options": True}
    sentence = [f"{REASONED}<answer>I choose {a}.</answer>" for a in rows["answer"]]
    exact = [f"{REASONED}<answer>{a}</answer>" for a in rows["answer"]]
    # The next option after gold (the one before for the last option).
    wrong = [opts[g + 1] if g + 1 < len(opts) else opts[g - 1] for opts, g in zip(rows["options"], rows["gold"])]
    rows = rows.assign(wrong=wrong)
    exact_wrong = [f"{REASONED}<answer>{w}</answer>" for w in wrong]
    contained = rows["answer"].isin(["Agree strongly", "Disagree strongly"])  # "Agree"/"Disagree" lie inside them
    assert contained.sum() == 71 + 53

    # Exactly gold scores the same either way.
    for name, value in [("wvs", 2.8), ("wvs_d", 2.8), ("wvs_g", 3.8)]:
        assert (score_rows(rows, name, exact, **listed) == value).all()
        assert (score_rows(rows, name, exact, **joined) == value).all()

    # Gold inside a sentence: format_score with lists wherever no other option lies inside gold; never with the
    # string, whose every character but the gold is an "other option".
    wvs_list, wvs_string = score_rows(rows, "wvs", sentence, **listed), score_rows(rows, "wvs", sentence, **joined)
    assert (wvs_list == 1.8).sum() == 7183 - 124 and (wvs_list[contained] == 0.8).all()
    assert (wvs_string == 0.8).all()
    d_list, d_string = score_rows(rows, "wvs_d", sentence, **listed), score_rows(rows, "wvs_d", sentence, **joined)
    # Q36 "Agree strongly": gold and "Agree" (Δ = 1 of K = 5) inside: half credit, the release's branch.
    assert d_list[contained] == pytest.approx(0.5 * (1 - 1 / 5) + 0.8)
    assert (d_list[~contained] == 1.8).all() and (d_string == 0.8).all()

    # An exact wrong option Δ = 1 away: 1 − 1/K with lists; character offsets with the string.
    k = rows["options"].str.len().to_numpy()
    d_list = score_rows(rows, "wvs_d", exact_wrong, **listed)
    d_string = score_rows(rows, "wvs_d", exact_wrong, **joined)
    assert d_list == pytest.approx(1 - 1 / k + 0.8)
    assert (d_list != d_string).all()
    assert set(d_list.round(12)) == {round(1 - 1 / 3 + 0.8, 12), round(1 - 1 / 4 + 0.8, 12), round(1 - 1 / 5 + 0.8, 12)}
    assert len(set(d_string.round(12))) > 20
    # Full closeness for a wrong answer only where it is found at gold's offset: Q36 "Agree strongly" → "Agree".
    assert (d_string == 1.8).sum() == 71
    cases = [  # Q_id, gold, wrong answer, wvs_d with lists, wvs_d with the joined string
        ("Q36", "Agree strongly", "Agree", 1 - 1 / 5, 1 - 0 / 78),             # "Agree" found inside gold at 0
        ("Q112", "Low", "Medium", 1 - 1 / 3, 1 - 5 / 17),                       # "Low, Medium, High"
        ("Q112", "High", "Medium", 1 - 1 / 3, 1 - 8 / 17),
        ("Q27", "Agree", "Disagree", 1 - 1 / 4, 1 - 7 / 50),                    # offsets 16 and 23 of 50
        ("Q1", "Very important", "Rather important", 1 - 1 / 4, 1 - 16 / 74),  # 0 and 16 of 74
    ]
    for q_id, gold, answer, by_list, by_string in cases:
        at = ((rows["Q_id"] == q_id) & (rows["answer"] == gold)).to_numpy()
        assert at.any() and (rows["wrong"][at] == answer).all()
        assert d_list[at] == pytest.approx(by_list + 0.8)
        assert d_string[at] == pytest.approx(by_string + 0.8)
        p = 1 - rows["frequency"][at].to_numpy()
        assert score_rows(rows[at], "wvs_p", np.array(exact_wrong)[at], **joined) == pytest.approx(by_string * p + 0.8)
    # wvs_g, Q112 "Low" answered "Medium": Δ = 1 of K − 1 = 2, or 5 characters of 16.
    at = ((rows["Q_id"] == "Q112") & (rows["answer"] == "Low")).to_numpy()
    g_list = score_rows(rows[at], "wvs_g", np.array(exact_wrong)[at], **listed)
    g_string = score_rows(rows[at], "wvs_g", np.array(exact_wrong)[at], **joined)
    assert g_list == pytest.approx(math.exp(-(1 / 2) ** 2 / 0.125) + 0.8)
    assert g_string == pytest.approx(math.exp(-(5 / 16) ** 2 / 0.125) + 0.8)
