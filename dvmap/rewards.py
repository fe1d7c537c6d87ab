"""DVMap's GRPO rewards as TRL reward functions, scored with the evaluation's answer parser (dvmap.answers).

TRL calls a reward function as ``f(prompts=..., completions=..., **columns)``, where each dataset column arrives
as a list with one entry per completion. These read ``options`` (a list of option strings per item), ``answer_index``
(the gold option) and, for ``rarity``, ``frequency``. Rewards:

- ``binary``:   1[answer is gold] + β·format (DVMap's choice)
- ``likert``:   α·(1 − |Δ|/(K−1)) + β·format, Δ the distance in options between answer and gold
- ``gaussian``: exp(−(Δ/(K−1))² / (2σ²)) + β·format
- ``rarity``:   1[answer is gold]·(1 − frequency) + β·format

An unparseable completion scores 0 apart from its format term. ``format`` is 1 when the completion puts a parseable
option inside ``<answer></answer>``. ``accuracy`` (1[answer is gold]) is logged beside the training reward with
weight 0, which gives accuracy on the train and dev sets from the same completions.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

from .answers import ANSWER_TAG, parse_answer
from .errors import DvmapError

#: Each reward's parameters and their defaults (config: training.reward_params.<reward>).
REWARD_PARAMS = {
    "binary": {"format_weight": 0.1},
    "likert": {"alpha": 1.0, "format_weight": 0.1},
    "gaussian": {"sigma": 0.5, "format_weight": 0.0},
    "rarity": {"format_weight": 0.1},
}
REWARDS = tuple(REWARD_PARAMS)


def completion_text(completion) -> str:
    """The text of a completion: a string, or a conversational list of messages (their contents joined)."""
    if isinstance(completion, str):
        return completion
    return "".join(message.get("content") or "" for message in completion)


def option_list(options, row: int) -> list[str]:
    """Options as a list of strings. A comma-joined string is refused: iterating over it walks its characters,
    the bug that silently disabled partial credit in DVMap's release."""
    if isinstance(options, str):
        raise DvmapError(f"reward: the options of row {row} are a string ({options[:40]!r}); "
                         "they must be a list of option strings")
    options = [str(o) for o in options]
    if len(options) < 2:
        raise DvmapError(f"reward: row {row} has {len(options)} option(s); at least 2 are needed")
    return options


def scored(completion, options: Sequence[str]) -> tuple[int | None, float]:
    """(index of the parsed option or None, format score) for one completion."""
    text = completion_text(completion)
    choice = parse_answer(text, options)
    index = None if choice is None else list(options).index(choice)
    tagged = bool(ANSWER_TAG.search(text))
    return index, float(tagged and index is not None)


def _core(name: str, params: dict) -> Callable[[int | None, int, int, float], float]:
    """The reward's score of a parsed answer index against the gold index, given K options and the frequency."""
    if name == "binary":
        return lambda index, gold, k, frequency: float(index == gold)
    if name == "likert":
        alpha = float(params["alpha"])
        return lambda index, gold, k, frequency: alpha * (1 - abs(index - gold) / (k - 1))
    if name == "gaussian":
        sigma = float(params["sigma"])
        if sigma <= 0:
            raise DvmapError(f"training.reward_params.gaussian.sigma must be > 0, not {sigma}")
        return lambda index, gold, k, frequency: math.exp(-((index - gold) / (k - 1)) ** 2 / (2 * sigma ** 2))
    if name == "rarity":
        return lambda index, gold, k, frequency: float(index == gold) * (1.0 - frequency)
    raise DvmapError(f"training.rewards: unknown reward {name!r}; choose from {list(REWARDS)}")


def reward_params(name: str, given: dict | None = None) -> dict:
    """The reward's parameters: defaults updated with ``given``; unknown keys are an error naming the key."""
    if name not in REWARD_PARAMS:
        raise DvmapError(f"training.rewards: unknown reward {name!r}; choose from {list(REWARDS)}")
    given = dict(given or {})
    unknown = sorted(set(given) - set(REWARD_PARAMS[name]))
    if unknown:
        raise DvmapError(f"training.reward_params.{name}: unknown key(s) {unknown}; "
                         f"known: {sorted(REWARD_PARAMS[name])}")
    return {**REWARD_PARAMS[name], **given}


def make_reward(name: str, params: dict | None = None) -> Callable[..., list[float]]:
    """The TRL reward function ``name`` with its parameters (see the module docstring)."""
    params = reward_params(name, params)
    core = _core(name, params)
    beta = float(params["format_weight"])

    def reward(completions, options, answer_index, frequency=None, **_) -> list[float]:
        frequency = frequency if frequency is not None else [0.0] * len(completions)
        values = []
        for row, (completion, opts, gold, freq) in enumerate(zip(completions, options, answer_index, frequency)):
            opts = option_list(opts, row)
            index, form = scored(completion, opts)
            base = 0.0 if index is None else core(index, int(gold), len(opts), float(freq))
            values.append(base + beta * form)
        return values

    reward.__name__ = name  # TRL logs each reward under its function's name
    return reward


def accuracy(completions, options, answer_index, **_) -> list[float]:
    """1 when the completion's parsed answer is the gold option (logged with weight 0)."""
    return [float(scored(c, option_list(o, row))[0] == int(gold))
            for row, (c, o, gold) in enumerate(zip(completions, options, answer_index))]
