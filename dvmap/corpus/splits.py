"""Profile-level splits and the triple-generalization benchmark, with a loud leakage check.

Profiles of the seen countries are shuffled (seeded) within each country and cut into corpus train/dev/test and
the cross-demographic benchmark, so no profile is in two of them. Held-out countries form the cross-country
benchmark; held-out questions form the cross-value benchmark and never enter the corpus.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..survey.archetypes import MAJORITY, select_archetypes
from ..survey.catalog import Question
from ..errors import DvmapError
from ..schema import CORPUS_SPLITS, PARTITIONS, UNUSED
from .items import add_frequency, items_from_archetypes, sample_items



def assign_profiles(stats: pa.Table, fractions: dict[str, float], heldout_countries: list[str], seed: int,
                    corpus_countries: list[str] | None = None) -> pd.DataFrame:
    """profile_id, Country, split for every profile; held-out countries' profiles get 'cross_country'; with
    ``corpus_countries``, the profiles of countries in neither list get 'unused' and enter no split."""
    profiles = (stats.select(["profile_id", "Country"]).to_pandas().astype(str)
                .drop_duplicates().sort_values("profile_id").reset_index(drop=True))
    countries = sorted(profiles["Country"].unique())
    for key, listed in (("heldout_countries", heldout_countries), ("corpus_countries", corpus_countries or [])):
        unknown = sorted(set(listed) - set(countries))
        if unknown:
            raise DvmapError(f"splits.{key}: {unknown} not among the data's countries {countries}")
    both = sorted(set(heldout_countries) & set(corpus_countries or []))
    if both:
        raise DvmapError(f"splits.corpus_countries and splits.heldout_countries both list {both}")
    missing = [p for p in PARTITIONS if p not in fractions]
    if missing or any(fractions[p] < 0 for p in PARTITIONS) or not np.isclose(sum(fractions[p] for p in PARTITIONS), 1):
        raise DvmapError(f"splits.fractions must give {list(PARTITIONS)} as non-negative shares summing to 1, "
                         f"got {fractions}")
    rng = np.random.default_rng(seed)
    split = pd.Series("cross_country", index=profiles.index, dtype=object)
    for country, group in profiles.groupby("Country", sort=True):
        if country in heldout_countries:
            continue
        if corpus_countries is not None and country not in corpus_countries:
            split[group.index] = UNUSED
            continue
        shuffled = group.index.to_numpy()[rng.permutation(len(group))]
        bounds = np.round(np.cumsum([fractions[p] for p in PARTITIONS]) * len(group)).astype(int)
        for name, part in zip(PARTITIONS, np.split(shuffled, bounds[:-1])):
            split[part] = name
    profiles["split"] = split
    return profiles


def benchmark_items(stats: pa.Table, assignment: pd.DataFrame, catalog: dict[str, Question],
                    heldout_questions: list[str], consensus_tau: float | str | None, data_source: str,
                    ties: str = "drop", seed: int = 0, max_items: dict[str, int | None] | None = None
                    ) -> dict[str, pd.DataFrame]:
    """The three benchmark splits. Labels are modal answers (ties follow ``ties``); the consensus filter applies
    only if a tau is given; ``max_items`` caps a split at a seeded sample of that many items."""
    _check_questions(heldout_questions, stats)
    pairs = select_archetypes(stats, MAJORITY if consensus_tau is None else consensus_tau)
    pairs = _pairs_of(pairs, assignment, heldout_questions, seen=("cross_demographic", "cross_country"),
                      heldout=PARTITIONS)
    items = items_from_archetypes(pairs, catalog, split="", data_source=data_source, ties=ties, seed=seed)
    split_of = items["profile_id"].map(assignment.set_index("profile_id")["split"])
    heldout_q = items["question_id"].isin(heldout_questions)
    selections = {
        "cross_demographic": (split_of == "cross_demographic") & ~heldout_q,
        "cross_country": (split_of == "cross_country") & ~heldout_q,
        "cross_value": split_of.isin(PARTITIONS) & heldout_q,
    }
    out = {}
    for name, keep in selections.items():
        part = items[keep].assign(split=name)
        if part.empty:
            raise DvmapError(f"benchmark split {name!r} is empty: check splits.heldout_countries, "
                             "splits.heldout_questions and splits.fractions")
        part = sample_items(part, (max_items or {}).get(name), seed)
        out[name] = add_frequency(part).reset_index(drop=True)
    check_leakage(out)
    return out


def corpus_items(archetypes: pa.Table, assignment: pd.DataFrame, catalog: dict[str, Question],
                 heldout_questions: list[str], data_source: str, tau_label: str, ties: str = "drop", seed: int = 0
                 ) -> dict[str, pd.DataFrame]:
    """Corpus train/dev/test of one threshold: its archetypes on seen countries and seen questions."""
    archetypes = _pairs_of(archetypes, assignment, heldout_questions, seen=CORPUS_SPLITS, heldout=())
    items = items_from_archetypes(archetypes, catalog, split="", data_source=data_source, ties=ties, seed=seed)
    split_of = items["profile_id"].map(assignment.set_index("profile_id")["split"])
    out = {}
    for name in CORPUS_SPLITS:
        part = items[(split_of == name) & ~items["question_id"].isin(heldout_questions)].assign(split=name)
        if name == "train" and part.empty:
            raise DvmapError(f"consensus threshold tau={tau_label} leaves an empty corpus (no training item); "
                             "raise the threshold or lower archetypes.min_group_size")
        out[name] = add_frequency(part).reset_index(drop=True)
    return out


def _pairs_of(pairs: pa.Table, assignment: pd.DataFrame, heldout_questions: list[str], seen: tuple[str, ...],
              heldout: tuple[str, ...]) -> pa.Table:
    """The rows of ``pairs`` that some split can take, before any item is built from them (at WVS-7's size a
    threshold keeps about 1.6 million pairs, a split a fraction): those of profiles assigned to a split in ``seen``
    on questions not held out, and to a split in ``heldout`` on held-out questions."""
    keys = pairs.select(["profile_id", "question_id"]).to_pandas()   # categoricals: the work is per category
    split_of = keys["profile_id"].map(assignment.set_index("profile_id")["split"]).astype(object)
    held = keys["question_id"].isin(heldout_questions).to_numpy()
    keep = np.where(held, split_of.isin(heldout).to_numpy(), split_of.isin(seen).to_numpy())
    return pairs.filter(pa.array(keep))


def check_leakage(splits: dict[str, pd.DataFrame], heldout_countries: list[str] | None = None,
                  heldout_questions: list[str] | None = None) -> None:
    """Fail loudly if a profile sits in two profile-level splits, or held-out countries/questions leak."""
    profile_level = [s for s in PARTITIONS if s in splits]
    seen: dict[str, str] = {}
    for name in profile_level:
        for pid in splits[name]["profile_id"].unique():
            if pid in seen:
                raise DvmapError(f"leakage: profile {pid} is in both {seen[pid]!r} and {name!r}")
            seen[pid] = name
    countries = set(heldout_countries or [])
    if "cross_country" in splits:
        countries |= set(splits["cross_country"]["Country"])
    questions = set(heldout_questions or [])
    if "cross_value" in splits:
        questions |= set(splits["cross_value"]["question_id"])
    for name in profile_level:
        leaked = set(splits[name]["Country"]) & countries
        if leaked:
            raise DvmapError(f"leakage: held-out countries {sorted(leaked)} appear in split {name!r}")
    for name in profile_level + (["cross_country"] if "cross_country" in splits else []):
        leaked = set(splits[name]["question_id"]) & questions
        if leaked:
            raise DvmapError(f"leakage: held-out questions {sorted(leaked)} appear in split {name!r}")


def _check_questions(heldout_questions: list[str], stats: pa.Table) -> None:
    present = set(pc.unique(stats["question_id"]).to_pylist())
    unknown = sorted(set(heldout_questions) - present)
    if unknown:
        raise DvmapError(f"splits.heldout_questions: {unknown} have no answers in the data")
    if not present - set(heldout_questions):
        raise DvmapError("splits.heldout_questions holds out every question; none is left for training")
