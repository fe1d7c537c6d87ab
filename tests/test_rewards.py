"""GRPO rewards (dvmap.rewards) on hand-built completions, as TRL calls them: plain strings and TRL's conversational
form, K=4 options, exact values. Also DVMap's string-options bug (partial credit silently disabled), options as
numpy arrays (what parquet and datasets give), reward parameters and the accuracy metric."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from dvmap.errors import DvmapError
from dvmap.io import read_parquet, write_parquet
from dvmap.rewards import REWARD_PARAMS, REWARDS, accuracy, make_reward, reward_params

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


@pytest.mark.parametrize("name", REWARDS)
def test_reward_name_and_trl_keywords(name):
    reward = make_reward(name)
    assert reward.__name__ == name
    assert REWARDS == ("binary", "likert", "gaussian", "rarity")
    # TRL's full keyword set, per-row golds, and the frequency column every corpus has.
    values = reward(prompts=["p", "p"], completions=["<answer>Never</answer>", "<answer>Always</answer>"],
                    completion_ids=[[1, 2], [3]], trainer_state=object(), log_extra=lambda *a: None,
                    log_metric=lambda *a: None, options=[OPTIONS, OPTIONS], answer_index=[0, 3],
                    frequency=[0.0, 0.0])
    assert len(values) == 2 and all(isinstance(v, float) for v in values)
    assert values[0] == pytest.approx(values[1]) and values[0] > 0.5  # both are gold


def test_rewards_per_row_gold_and_options():
    """Each completion is scored against its own row's options and gold."""
    reward = make_reward("likert")
    values = reward(completions=["<answer>Yes</answer>", "<answer>Yes</answer>", "<answer>Often</answer>"],
                    options=[["Yes", "No"], ["Yes", "No"], OPTIONS], answer_index=[0, 1, 3])
    assert values == pytest.approx([1.1, 0.1, 2 / 3 + 0.1])


# --------------------------------------------------------------------------------------------------------------
# DVMap's string-options bug
# --------------------------------------------------------------------------------------------------------------

def dvmap_release_likert(predicted: str, options: str, gold: str) -> float:
    """DVMap's released partial-credit lookup: ``options`` arrived comma-joined and the loop walked its characters,
    so a whole option was never found and partial credit was always 0."""
    k = len(options.split(", "))
    pred_idx = gold_idx = None
    for i, option in enumerate(options):  # iterates over characters
        if option == predicted:
            pred_idx = i
        if option == gold:
            gold_idx = i
    if predicted == gold:
        return 1.0
    if pred_idx is None or gold_idx is None:
        return 0.0
    return 1 - abs(pred_idx - gold_idx) / (k - 1)


def test_string_options_bug_disabled_partial_credit():
    joined = ", ".join(OPTIONS)
    # The release's lookup: an adjacent answer earns nothing; only the exact answer scores.
    assert dvmap_release_likert("Rarely", joined, "Never") == 0.0
    assert dvmap_release_likert("Always", joined, "Never") == 0.0
    assert dvmap_release_likert("Never", joined, "Never") == 1.0
    # dvmap with the options as a list gives the partial credit.
    values = make_reward("likert")(completions=["<answer>Rarely</answer>"], options=[list(OPTIONS)], answer_index=[0])
    assert values == pytest.approx([1 - 1 / 3 + 0.1])
    assert values[0] - 0.1 > 0.5


@pytest.mark.parametrize("name", REWARDS)
def test_comma_joined_options_are_refused(name):
    reward = make_reward(name)
    good = list(OPTIONS)
    with pytest.raises(DvmapError) as info:
        reward(completions=["<answer>Never</answer>", "<answer>Rarely</answer>"], options=[good, ", ".join(OPTIONS)],
               answer_index=[0, 0], frequency=[0.5, 0.5])
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
                                      ("rarity", "weight")])
def test_unknown_reward_param_is_an_error_naming_it(name, key):
    with pytest.raises(DvmapError) as info:
        make_reward(name, {key: 1.0})
    assert f"training.reward_params.{name}" in str(info.value)
    assert repr(key) in str(info.value)
    with pytest.raises(DvmapError, match=rf"training\.reward_params\.{name}"):
        reward_params(name, {key: 1.0})


def test_unknown_reward_name_is_an_error():
    with pytest.raises(DvmapError, match="unknown reward 'accuracy'"):
        make_reward("accuracy")
    with pytest.raises(DvmapError, match="unknown reward 'bianry'.*binary"):
        reward_params("bianry")


@pytest.mark.parametrize("sigma", [0, 0.0, -0.5])
def test_gaussian_sigma_must_be_positive(sigma):
    with pytest.raises(DvmapError, match=r"training\.reward_params\.gaussian\.sigma must be > 0"):
        make_reward("gaussian", {"sigma": sigma})


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
