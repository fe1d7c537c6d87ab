"""Non-LLM baselines fit on a corpus train split: what a value-prediction model has to beat.

Each baseline predicts an option for every item of an evaluation split and says, in ``fallback``, when its own rule
could not apply (an unseen country or question) and a simpler one answered instead: national label -> global
majority -> option prior (the option position most often chosen in training among questions with as many options).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import DvmapError
from ..schema import attribute_columns

KINDS = ("uniform", "global_majority", "national_label", "knn", "gbt")
RULE_NAMES = {"country_question": "national_label", "question": "global_majority"}


def make_baseline(kind: str, seed: int = 0, k: int = 5) -> "Baseline":
    factories = {"uniform": lambda: Uniform(seed), "global_majority": lambda: Majority(("question",)),
                 "national_label": lambda: Majority(("country_question", "question")),
                 "knn": lambda: NearestProfiles(k), "gbt": lambda: BoostedTrees(seed)}
    if kind not in factories:
        raise DvmapError(f"unknown baseline {kind!r}; choose from {list(KINDS)}")
    return factories[kind]()


class Baseline:
    """fit(train) once, then predict(items) -> DataFrame(prediction_index, fallback) for any split."""

    def fit(self, train: pd.DataFrame) -> "Baseline":
        if train.empty:
            raise DvmapError("the training corpus is empty")
        self.train = train.reset_index(drop=True)
        self.tables = {
            "country_question": _majority(self.train, ["Country", "question_id"]),
            "question": _majority(self.train, ["question_id"]),
        }
        relative = self.train.assign(k=self.train["options"].map(len))
        self.prior = _majority(relative, ["k"]).set_index("k")["answer_index"]
        return self

    def majority(self, items: pd.DataFrame, levels: tuple[str, ...]) -> pd.DataFrame:
        """Use the first level that knows the item; ``fallback`` names the rule used when it is not ``levels[0]``."""
        index = np.full(len(items), -1)
        rule = np.full(len(items), "option_prior", dtype=object)
        for level in reversed(levels):  # the more specific levels overwrite
            keys = ["Country", "question_id"] if level == "country_question" else ["question_id"]
            found = items[keys].merge(self.tables[level], how="left", on=keys)["answer_index"].to_numpy()
            hit = ~np.isnan(found)
            index[hit], rule[hit] = found[hit], RULE_NAMES[level]
        unknown = index < 0
        index[unknown] = items["options"].map(len)[unknown].map(self.prior).fillna(0).astype(int)
        fallback = np.where(rule == RULE_NAMES[levels[0]], None, rule)
        return pd.DataFrame({"prediction_index": index, "fallback": fallback})


class Uniform(Baseline):
    def __init__(self, seed: int):
        self.seed = seed

    def predict(self, items: pd.DataFrame) -> pd.DataFrame:
        rng = np.random.default_rng(self.seed)
        index = np.floor(rng.random(len(items)) * items["options"].map(len).to_numpy()).astype(int)
        return pd.DataFrame({"prediction_index": index, "fallback": None})


class Majority(Baseline):
    """Global per-question majority, or with ('country_question', 'question') the national label."""

    def __init__(self, levels: tuple[str, ...]):
        self.levels = levels

    def predict(self, items: pd.DataFrame) -> pd.DataFrame:
        return self.majority(items.reset_index(drop=True), self.levels)


class PerQuestion(Baseline):
    """A model per training question; items of unseen questions get the global majority or option prior."""

    def predict(self, items: pd.DataFrame) -> pd.DataFrame:
        items = items.reset_index(drop=True)
        out = self.majority(items, ("question",))
        out["fallback"] = out["fallback"].fillna("global_majority")
        for qid, group in items.groupby("question_id", sort=False):
            pool = self.train[self.train["question_id"] == qid]
            if not pool.empty and pool["answer_index"].nunique() > 1:
                out.loc[group.index, "prediction_index"] = self.predict_question(qid, pool, group)
                out.loc[group.index, "fallback"] = None
            elif not pool.empty:
                out.loc[group.index, "fallback"] = None  # one answer in training: the majority is the model
        return out


class NearestProfiles(PerQuestion):
    """Majority answer of the k training profiles nearest in Hamming distance on the attributes (same question)."""

    def __init__(self, k: int):
        self.k = k

    def predict_question(self, qid: str, pool: pd.DataFrame, group: pd.DataFrame) -> np.ndarray:
        attributes = attribute_columns(self.train)
        both = pd.concat([pool[attributes], group[attributes]]).astype(str)
        codes = np.stack([pd.factorize(both[a])[0] for a in attributes], axis=1)
        pool_codes, item_codes = codes[: len(pool)], codes[len(pool):]
        distance = (item_codes[:, None, :] != pool_codes[None, :, :]).sum(axis=2)
        nearest = np.argsort(distance, axis=1, kind="stable")[:, : self.k]
        votes = pool["answer_index"].to_numpy()[nearest]
        n_options = len(group["options"].iloc[0])
        return np.stack([(votes == o).sum(axis=1) for o in range(n_options)], axis=1).argmax(axis=1)


class BoostedTrees(PerQuestion):
    """Gradient-boosted trees (scikit-learn) on one-hot attributes; unseen categories are ignored."""

    def __init__(self, seed: int):
        self.seed = seed

    def fit(self, train: pd.DataFrame) -> "BoostedTrees":
        self.models: dict[str, tuple] = {}  # fitted lazily per question, for the questions asked about
        return super().fit(train)

    def predict_question(self, qid: str, pool: pd.DataFrame, group: pd.DataFrame) -> np.ndarray:
        from sklearn.ensemble import HistGradientBoostingClassifier
        from sklearn.preprocessing import OneHotEncoder

        attributes = attribute_columns(self.train)
        if qid not in self.models:
            encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
            x = encoder.fit_transform(pool[attributes].astype(str))
            model = HistGradientBoostingClassifier(max_iter=30, max_leaf_nodes=15, early_stopping=False,
                                                   random_state=self.seed)
            self.models[qid] = (encoder, model.fit(x, pool["answer_index"].to_numpy()))
        encoder, model = self.models[qid]
        return model.predict(encoder.transform(group[attributes].astype(str)))


def _majority(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """The most frequent answer_index per key (ties to the earlier option)."""
    counts = frame.groupby(keys + ["answer_index"], observed=True).size().rename("c").reset_index()
    counts = counts.sort_values(keys + ["c", "answer_index"], ascending=[True] * len(keys) + [False, True])
    return counts.drop_duplicates(keys)[keys + ["answer_index"]].reset_index(drop=True)
