"""GRPO rewards as TRL reward functions, in one registry: name -> parameters, score function, description, weight.

TRL calls a reward as ``f(prompts=..., completions=..., **columns)``, each dataset column a list with one entry per
completion (a string, or a conversational list of messages). These read ``options`` (the row's option strings),
``answer_index`` (the gold option) and ``frequency``; a reward that needs more declares it (``Reward.columns``, e.g.
``counts`` for ``distribution``), and a dataset without it is refused with the reward and the column named
(:func:`missing_columns_error`; :func:`dvmap.training.datasets.reward_dataset` checks it up front). Δ is the
distance in options between answer and gold, K the number of options.

dvmap's own rewards (``binary``, ``likert``, ``gaussian``, ``rarity``, ``distribution``) read the answer with the
evaluation's lenient parser (:func:`dvmap.answers.parse_answer`); ``format`` is 1 when a parseable option sits inside
``<answer></answer>``, and an unparseable completion scores its format term only. ``distribution`` credits the
share of the profile's respondents who gave the parsed answer (the row's ``counts``, answers per option in option
order, over their sum): on a unanimous archetype it is ``binary``; where the group disagrees (threshold τ > 0, or
``majority``) a minority answer earns its share.

DVMap's released rewards (``verl/utils/reward_score/WVS*.py``), under the release's names ``wvs``, ``wvs_d``,
``wvs_g``, ``wvs_p``, read the answer with :func:`dvmap.answers.reward_answer_text` and compare it with the options
case-sensitively. Each adds a bonus of 0.2 per tag of ``FORMAT_TAGS`` found anywhere in the completion; with no
answer, or one that earns nothing, the score is the bonus alone. The release received the options as one
", "-joined string, so its option tests were substring tests and its indices and K counted characters:
``string_options: true`` scores that way, false with the option list.

``accuracy`` (1[answer is gold], lenient parser) is logged beside every training reward with weight 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

from ..answers import ANSWER_TAG, parse_answer, reward_answer_text
from ..errors import DvmapError

FORMAT_TAGS = ("<reasoning>", "</reasoning>", "<answer>", "</answer>")


@dataclass(frozen=True)
class Reward:
    """A registry entry: ``score(text, options, gold, frequency, **columns, **params)`` scores one completion's text
    against its row's option list, gold index and frequency (and the row's value of each of ``columns``, the further
    dataset columns it needs); ``weight`` is its weight in GRPO's reward (0: logged only)."""

    params: dict
    score: Callable[..., float]
    description: str
    weight: float = 1.0
    columns: tuple[str, ...] = ()


def completion_text(completion) -> str:
    """The text of a completion: a string, or a conversational list of messages (their contents joined)."""
    if isinstance(completion, str):
        return completion
    return "".join(message.get("content") or "" for message in completion)


def option_list(options, row: int) -> list[str]:
    """Options as a list of strings; a comma-joined string is refused (iterating over it walks its characters)."""
    if isinstance(options, str):
        raise DvmapError(f"reward: the options of row {row} are a string ({options[:40]!r}); "
                         "they must be a list of option strings")
    options = [str(o) for o in options]
    if len(options) < 2:
        raise DvmapError(f"reward: row {row} has {len(options)} option(s); at least 2 are needed")
    return options


def answer_counts(counts, n_options: int, row: int) -> list[int]:
    """A row's answer counts (one per option, in option order) as a list of ints: a list or numpy array of as many
    non-negative whole numbers as options, with a positive sum."""
    if counts is None or isinstance(counts, (str, bytes)) or not hasattr(counts, "__len__"):
        raise DvmapError(f"reward: the counts of row {row} are {counts!r}; they must be a list of answer counts per "
                         "option (items built from archetypes have them)")
    values = [float(c) for c in counts]
    if len(values) != n_options:
        raise DvmapError(f"reward: row {row} has {len(values)} answer count(s) for {n_options} options")
    if any(not (math.isfinite(v) and v >= 0 and v == int(v)) for v in values) or not sum(values) > 0:
        raise DvmapError(f"reward: the counts of row {row} ({values}) must be whole numbers >= 0 with a positive sum")
    return [int(v) for v in values]


#: How a reward's further column is read from one row (value, number of options, row index).
COLUMN_READERS: dict[str, Callable] = {"counts": answer_counts}
#: What each further column is and where it comes from, for the missing-column error.
COLUMN_SOURCES = {"counts": "counts: answer counts per option; corpora built from archetypes carry them, items "
                            "imported from DVMap's release (data.source: release) do not"}


def scored(completion, options: Sequence[str]) -> tuple[int | None, float]:
    """(index of the leniently parsed option or None, format score) for one completion."""
    text = completion_text(completion)
    choice = parse_answer(text, options)
    index = None if choice is None else list(options).index(choice)
    return index, float(bool(ANSWER_TAG.search(text)) and index is not None)


def gaussian(delta: int, k: int, sigma: float) -> float:
    """exp(−(Δ/(K−1))² / (2σ²))."""
    return math.exp(-(delta / (k - 1)) ** 2 / (2 * sigma ** 2))


def format_bonus(text: str) -> float:
    """The release's format bonus: 0.2 per tag present, added one by one as the release does."""
    bonus = 0.0
    for tag in FORMAT_TAGS:
        if tag in text:
            bonus += 0.2
    return bonus


def _dvmap(credit: Callable[..., float]) -> Callable[..., float]:
    """dvmap's reward: ``credit(index, gold, k, frequency, **params)`` of the parsed answer (0 when unparseable)
    + format_weight·format."""
    def score(text, options, gold, frequency, format_weight, **params):
        index, form = scored(text, options)
        base = 0.0 if index is None else credit(index, gold, len(options), frequency, **params)
        return base + float(format_weight) * form
    return score


def _share(index: int, gold: int, k: int, frequency: float, counts: Sequence[int]) -> float:
    """The share of the respondents who gave option ``index``."""
    return counts[index] / sum(counts)


def _release(credit: Callable[..., float]) -> Callable[..., float]:
    """A release reward: the bonus alone without an answer, else ``credit(answer, options, gold, bonus, frequency,
    **params)`` with the options as a list, or as the ", "-joined string when ``string_options``."""
    def score(text, options, gold, frequency, string_options, **params):
        bonus = format_bonus(text)
        answer = reward_answer_text(text)
        if answer is None:
            return bonus
        sequence = ", ".join(options) if string_options else options
        return credit(answer, sequence, options[gold], bonus, frequency, **params)
    return score


# The release's scores, written over a sequence of options: a list of strings, or the joined string (then its items
# are characters, ``in`` a substring test, ``index`` a character offset and ``len`` a length in characters).

def _alone(answer: str, options: Sequence[str], gold: str) -> bool:
    """Whether the gold option is inside the answer and no other option is."""
    return gold in answer and all(option not in answer for option in options if option != gold)


def _wvs(answer, options, gold, bonus, frequency, score, format_score):
    if answer == gold:
        return score + bonus
    return format_score + bonus if _alone(answer, options, gold) else bonus


def _wvs_d(answer, options, gold, bonus, frequency, score, format_score, p=1.0):
    """wvs_d; with ``p`` = 1 − frequency, wvs_p (p = 1 changes no bit: x·1.0 == x)."""
    def closeness(option):
        return 1 - abs(options.index(option) - options.index(gold)) / len(options)

    if answer in options:
        return (score if answer == gold else closeness(answer)) * p + bonus
    if _alone(answer, options, gold):
        return format_score * p + bonus
    inside = [option for option in options if option != gold and option in answer]  # gold may be inside too
    return 0.5 * closeness(inside[0]) * p + bonus if len(inside) == 1 else bonus


def _wvs_p(answer, options, gold, bonus, frequency, score, format_score):
    return _wvs_d(answer, options, gold, bonus, frequency, score, format_score, p=1 - frequency)


def _wvs_g(answer, options, gold, bonus, frequency, score, format_score, sigma):
    if answer in options:
        if answer == gold:
            return score + bonus + 1
        return gaussian(options.index(answer) - options.index(gold), len(options), float(sigma)) + bonus
    return format_score + bonus if _alone(answer, options, gold) else bonus


def _release_params(**extra) -> dict:
    return {"score": 2.0, "format_score": 1.0, **extra, "string_options": False}


REGISTRY: dict[str, Reward] = {
    "binary": Reward({"format_weight": 0.1}, _dvmap(lambda i, g, k, f: float(i == g)),
                     "1[answer is gold] + format_weight·format"),
    "likert": Reward({"alpha": 1.0, "format_weight": 0.1},
                     _dvmap(lambda i, g, k, f, alpha: float(alpha) * (1 - abs(i - g) / (k - 1))),
                     "alpha·(1 − |Δ|/(K−1)) + format_weight·format"),
    "gaussian": Reward({"sigma": 0.5, "format_weight": 0.0},
                       _dvmap(lambda i, g, k, f, sigma: gaussian(i - g, k, float(sigma))),
                       "exp(−(Δ/(K−1))² / (2·sigma²)) + format_weight·format"),
    "rarity": Reward({"format_weight": 0.1}, _dvmap(lambda i, g, k, f: float(i == g) * (1.0 - f)),
                     "1[answer is gold]·(1 − frequency) + format_weight·format"),
    "distribution": Reward({"format_weight": 0.1}, _dvmap(_share),
                           "share of the profile's respondents who gave the answer (counts) + format_weight·format",
                           columns=("counts",)),
    "wvs": Reward(_release_params(), _release(_wvs),
                  "release: score if the answer is gold, format_score if gold is the only option inside it; + bonus"),
    "wvs_d": Reward(_release_params(), _release(_wvs_d),
                    "release: as wvs, another exact option earns 1 − |Δ|/K, the one other option inside the answer "
                    "half that; + bonus"),
    "wvs_g": Reward(_release_params(sigma=0.25), _release(_wvs_g),
                    "release: score + 1 if gold, another exact option exp(−(Δ/(K−1))² / (2·sigma²)), format_score if "
                    "gold is the only option inside; + bonus"),
    "wvs_p": Reward(_release_params(), _release(_wvs_p), "release: wvs_d with its credit times 1 − frequency; + bonus"),
    "accuracy": Reward({}, lambda text, options, gold, frequency: float(scored(text, options)[0] == gold),
                       "1[answer is gold] (lenient parser), logged beside the training reward", weight=0.0),
}
#: Logged beside every training reward (weight 0); the rest are the training rewards.
LOGGED = tuple(name for name, reward in REGISTRY.items() if reward.weight == 0)
REWARDS = tuple(name for name in REGISTRY if name not in LOGGED)
#: Each training reward's parameters and their defaults (config: training.reward_params.<reward>).
REWARD_PARAMS = {name: REGISTRY[name].params for name in REWARDS}


def _training_reward(name: str) -> Reward:
    if name not in REWARDS:
        raise DvmapError(f"training.rewards: unknown reward {name!r}; choose from {list(REWARDS)}")
    return REGISTRY[name]


def reward_params(name: str, given: dict | None = None) -> dict:
    """The training reward's parameters: defaults updated with ``given``; an unknown key is an error naming it."""
    defaults = _training_reward(name).params
    given = dict(given or {})
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise DvmapError(f"{', '.join(f'training.reward_params.{name}.{k}' for k in unknown)}: unknown key(s) "
                         f"{unknown}; {name} takes {sorted(defaults)}")
    params = {**defaults, **given}
    if "sigma" in params and not params["sigma"] > 0:
        raise DvmapError(f"training.reward_params.{name}.sigma must be > 0, not {params['sigma']}")
    return params


def make_reward(name: str, params: dict | None = None) -> Callable[..., list[float]]:
    """The TRL reward function of training reward ``name`` with its parameters."""
    return _function(name, reward_params(name, params))


def logged_funcs() -> list[Callable[..., list[float]]]:
    """The reward functions logged beside the training reward, in ``LOGGED`` order."""
    return [_function(name, {}) for name in LOGGED]


def reward_weights(name: str) -> list[float]:
    """GRPO's weights of ``[make_reward(name), *logged_funcs()]``."""
    return [_training_reward(name).weight, *(REGISTRY[logged].weight for logged in LOGGED)]


def reward_columns(name: str) -> tuple[str, ...]:
    """The dataset columns reward ``name`` needs besides ``options``, ``answer_index`` and ``frequency``."""
    return _training_reward(name).columns


def missing_columns_error(name: str, missing: Sequence[str], where: str = "the rows passed to the reward"
                          ) -> DvmapError:
    """The error of reward ``name`` on data (``where``) that lacks its ``missing`` columns."""
    what = "; ".join(COLUMN_SOURCES.get(column, column) for column in missing)
    return DvmapError(f"{where} lack(s) the column(s) {', '.join(missing)}, which reward {name} needs ({what})")


def _function(name: str, params: dict) -> Callable[..., list[float]]:
    entry = REGISTRY[name]
    score = entry.score

    def reward(completions, options, answer_index, frequency=None, **given) -> list[float]:
        frequency = [0.0] * len(completions) if frequency is None else frequency
        missing = [column for column in entry.columns if given.get(column) is None]
        if missing:
            raise missing_columns_error(name, missing)
        values = []
        for row, (c, o, g, f) in enumerate(zip(completions, options, answer_index, frequency)):
            o = option_list(o, row)
            extra = {column: COLUMN_READERS[column](given[column][row], len(o), row) for column in entry.columns}
            values.append(float(score(completion_text(c), o, int(g), float(f), **extra, **params)))
        return values

    reward.__name__ = name  # TRL logs each reward under its function's name
    return reward


accuracy = _function("accuracy", {})
