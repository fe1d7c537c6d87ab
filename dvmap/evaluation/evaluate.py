"""Evaluation: every predictor's metrics per split, overall and by country, question and attribute, with CIs.

Before scoring, LLM outputs are parsed again under the answer protocol (``lenient`` or ``strict``, see
:mod:`dvmap.answers`): a row with a raw_output gets the majority vote of its samples under that protocol, so the
same generations can be scored under either; a row without one (a baseline) keeps its prediction_index. Each summary
row also carries the paired accuracy difference against the national-label baseline on the same items, with a CI
from the same bootstrap resamples, when national-label predictions are among the inputs or references. The metrics
(:data:`~dvmap.schema.METRICS`) include those of the predicted distributions (option_probs, else the point mass on
the prediction) against the respondents' counts that prediction files carry: see :mod:`dvmap.evaluation.metrics`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from ..answers import PROTOCOLS, vote
from ..errors import DvmapError
from ..schema import BASE_PAIRED, EVALUATION_KEYS, METRICS, PAIRED, SUMMARY_COLUMNS, attribute_columns, predictor_name
from .metrics import MIN_RESPONDENTS, Evaluation, resolve_unit

log = logging.getLogger(__name__)
KEYS = list(EVALUATION_KEYS)
#: The model whose predictions are the reference of the paired difference.
REFERENCE_MODEL = "national_label"
SD_COLUMNS = [f"{m}_sd" for m in (*METRICS, PAIRED)]

Frames = Iterable[pd.DataFrame] | Mapping[str, pd.DataFrame]


@dataclass(frozen=True)
class Reference:
    """One reference predictor's predictions on one split: prediction_index by item_id, and where they came from."""
    source: str
    predictor: str
    threshold: str
    seed: str
    split: str
    prediction_index: pd.Series


def evaluate(predictions: Frames, n_boot: int = 1000, seed: int = 0, unit: str = "auto",
             protocol: str = "lenient", references: Frames | None = None,
             min_respondents: int = MIN_RESPONDENTS, bases: Frames | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(summary, breakdown) of prediction tables: see :func:`evaluate_predictions` and :func:`merge_summaries`.

    ``predictions``, ``references`` and ``bases`` are lists of frames or mappings {source (a file name): frame}. The
    national-label predictions among the references, then among the predictions, are the references of the paired
    difference (see :func:`choose_reference`); ``bases``: the base model's predictions of trained models (the
    paired difference with the base, :func:`evaluate_predictions`)."""
    named = [(name, apply_protocol(frame, protocol)) for name, frame in _named(predictions, "predictions")]
    pool = reference_pool([(name, apply_protocol(frame, protocol))
                           for name, frame in _named(references or [], "reference")] + named)
    base_pool = predictions_pool([(name, apply_protocol(frame, protocol)) for name, frame in _named(bases or [], "base")])
    parts = [evaluate_predictions(frame, n_boot, seed, unit=unit, protocol=protocol, references=pool, reparse=False,
                                  min_respondents=min_respondents, bases=base_pool)
             for _, frame in named]
    return merge_summaries([p[0] for p in parts]), pd.concat([p[1] for p in parts], ignore_index=True)


def evaluate_predictions(frame: pd.DataFrame, n_boot: int = 1000, seed: int = 0, unit: str = "auto",
                         protocol: str = "lenient", references: list[Reference] | None = None,
                         reparse: bool = True, min_respondents: int = MIN_RESPONDENTS,
                         bases: list[Reference] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Summary rows (one per predictor and split: metrics, 95% CIs, fallback rate, paired difference against the
    reference) and the long breakdown by country, question and each attribute. ``unit``: the bootstrap unit
    (auto, item, profile, question); ``references``: see :func:`reference_pool`; ``min_respondents``: the
    respondents an item's profile needs for jsd and profile_wasserstein; ``bases`` (:func:`predictions_pool`): the
    first entry of a split is the base model there: the summary row adds ``accuracy_vs_base`` (this predictor's
    correct − the base's on the same items, every item must have a base prediction) with its CI, same bootstrap."""
    if reparse:
        frame = apply_protocol(frame, protocol)
    summary, breakdown = [], []
    for key, group in _groups(frame):
        key = dict(zip(KEYS, key))
        key["seed"] = _seed_label(key["seed"])
        split_unit = resolve_unit(unit, str(key["split"]))
        reference = choose_reference(references or [], key)
        reference_index = None if reference is None else _reference_index(reference, group, key)
        log.info("evaluating %s on %s (%d items, %s bootstrap%s)", key["predictor"], key["split"], len(group),
                 split_unit, "" if reference is None else f", paired with {reference.predictor}")
        evaluation = Evaluation(group, n_boot=n_boot, seed=seed, unit=split_unit, reference_index=reference_index,
                                min_respondents=min_respondents)
        groups = _breakdown_groups(evaluation.items)
        tables = evaluation.tables([None] + [positions for _, _, positions in groups])
        row = {**key, "protocol": protocol, "bootstrap_unit": split_unit, "n_items": len(group),
               "fallback_rate": float(group["fallback"].notna().mean()),
               "reference": "" if reference is None else reference.predictor}
        for metric in (*METRICS, PAIRED):
            value, low, high = tables[0].get(metric, (np.nan, np.nan, np.nan))
            row.update({metric: value, f"{metric}_ci_low": low, f"{metric}_ci_high": high})
        base = next((b for b in bases or [] if b.split == str(key["split"])), None)
        if base is not None:
            value, low, high = Evaluation(group, n_boot=n_boot, seed=seed, unit=split_unit,
                                          reference_index=_reference_index(base, group, key, "base model"),
                                          min_respondents=min_respondents).table()[PAIRED]
            row.update({"base": base.predictor, BASE_PAIRED: value, f"{BASE_PAIRED}_ci_low": low,
                        f"{BASE_PAIRED}_ci_high": high})
        summary.append(row)
        for (group_type, value, positions), table in zip(groups, tables[1:]):
            for metric in METRICS:
                point, low, high = table[metric]
                breakdown.append({**key, "protocol": protocol, "bootstrap_unit": split_unit, "group_type": group_type,
                                  "group": value, "n_items": len(positions), "metric": metric, "value": point,
                                  "ci_low": low, "ci_high": high})
    return pd.DataFrame(summary), pd.DataFrame(breakdown)


def _groups(frame: pd.DataFrame):
    """(key, rows) per predictor and split; a frame of a single one (a prediction file) is not copied."""
    grouped = frame.groupby(KEYS, sort=False, dropna=False)
    if grouped.ngroups == 1:
        yield next(iter(grouped.groups)), frame
        return
    yield from grouped


def apply_protocol(frame: pd.DataFrame, protocol: str) -> pd.DataFrame:
    """The frame with prediction_index (and prediction) of every row with a raw_output voted again over its samples
    under ``protocol``; rows without raw_output (baselines) are kept as they are."""
    if protocol not in PROTOCOLS:
        raise DvmapError(f"evaluation.protocol: unknown protocol {protocol!r}; choose from {list(PROTOCOLS)}")
    if "raw_output" not in frame.columns or not frame["raw_output"].notna().any():
        return frame
    frame = frame.copy()
    rows = np.flatnonzero(frame["raw_output"].notna().to_numpy())
    raw = frame["raw_output"].to_numpy(dtype=object)[rows]
    options = frame["options"].to_numpy()[rows]
    voted = np.array([vote(str(r), list(o), protocol) for r, o in zip(raw, options)], dtype=float)
    index = np.array(frame["prediction_index"].to_numpy(dtype=float, na_value=np.nan))  # a writable copy
    index[rows] = np.where(voted >= 0, voted, np.nan)
    frame["prediction_index"] = pd.array(index, dtype="Int64")
    frame["prediction"] = [None if np.isnan(i) else list(o)[int(i)] for i, o in zip(index, frame["options"])]
    return frame


def reference_pool(frames: list[tuple[str, pd.DataFrame]]) -> list[Reference]:
    """The national-label predictions among ``frames`` ((source, frame) pairs), one entry per predictor and split,
    in the order given."""
    return predictions_pool([(source, frame[frame["model"] == REFERENCE_MODEL]) for source, frame in frames
                             if "model" in frame.columns])


def predictions_pool(frames: list[tuple[str, pd.DataFrame]]) -> list[Reference]:
    """The predictions of ``frames`` ((source, frame) pairs), one entry per predictor and split, in the order
    given."""
    pool = []
    for source, frame in frames:
        for key, group in frame.groupby(KEYS, sort=False, dropna=False):
            key = dict(zip(KEYS, key))
            index = pd.Series(group["prediction_index"].to_numpy(dtype=float, na_value=np.nan),
                              index=group["item_id"].astype(str).to_numpy())
            pool.append(Reference(source, str(key["predictor"]), str(key["threshold"]), _seed_label(key["seed"]),
                                  str(key["split"]), index))
    return pool


def choose_reference(pool: list[Reference], key: dict) -> Reference | None:
    """The reference of a predictor on a split: among the pool's entries for that split, the predictor itself (a
    national label is its own reference), else the first of the same threshold and seed, else of the same threshold,
    else the first one (e.g. a zero-shot LLM, threshold none); None when the pool has nothing for the split."""
    candidates = [r for r in pool if r.split == str(key["split"])]
    threshold, seed = str(key["threshold"]), str(key["seed"])
    for keep in (lambda r: r.predictor == str(key["predictor"]),
                 lambda r: r.threshold == threshold and r.seed == seed,
                 lambda r: r.threshold == threshold,
                 lambda r: True):
        chosen = [r for r in candidates if keep(r)]
        if chosen:
            return chosen[0]
    return None


def _reference_index(reference: Reference, group: pd.DataFrame, key: dict, role: str = "reference") -> np.ndarray:
    """The reference's (or base model's) prediction_index for the group's items, in the group's order; every item
    must be there."""
    ids = group["item_id"].astype(str).to_numpy()
    position = reference.prediction_index.index.get_indexer(ids)
    missing = ids[position < 0]
    if len(missing):
        raise DvmapError(f"{reference.source}: the {role} {reference.predictor} has no prediction for "
                         f"{len(missing)} of the {len(ids)} {key['split']} items of {key['predictor']} "
                         f"(e.g. {missing[0]!r})")
    return reference.prediction_index.to_numpy()[position]


def merge_summaries(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """One summary table, with mean ± sd across seeds where a model has several seeds at a threshold."""
    summary = pd.concat(parts, ignore_index=True)
    summary = summary.reindex(columns=list(dict.fromkeys([*summary.columns, *SUMMARY_COLUMNS])))
    summary["seed"] = summary["seed"].astype(str).replace({"nan": "", "<NA>": ""})
    summary = pd.concat([summary, _across_seeds(summary)], ignore_index=True)
    summary = summary.reindex(columns=[*SUMMARY_COLUMNS, *SD_COLUMNS])
    return summary.sort_values(KEYS + ["protocol"], kind="stable").reset_index(drop=True)


def _named(frames: Frames, what: str) -> list[tuple[str, pd.DataFrame]]:
    if isinstance(frames, Mapping):
        return [(str(name), frame) for name, frame in frames.items()]
    return [(f"{what}[{i}]", frame) for i, frame in enumerate(frames)]


def _seed_label(seed) -> str:
    if isinstance(seed, str):
        return seed
    return "" if pd.isna(seed) else str(int(seed))


def _breakdown_groups(items: pd.DataFrame) -> list[tuple[str, str, np.ndarray]]:
    """(group type, group, the items' positions) for every country, question and value of each other attribute."""
    groupings = {"country": "Country", "question": "question_id",
                 **{f"attribute:{a}": a for a in attribute_columns(items) if a != "Country"}}
    groups = []
    for group_type, column in groupings.items():
        codes, distinct = pd.factorize(items[column], use_na_sentinel=False)   # then as text: fast on categoricals
        names, values = pd.factorize(pd.Index(distinct).astype(str), sort=True)
        codes = names[codes]
        order = np.argsort(codes, kind="stable").astype(np.int32)
        bounds = np.searchsorted(codes[order], np.arange(len(values) + 1))
        groups += [(group_type, str(value), order[bounds[code]:bounds[code + 1]])
                   for code, value in enumerate(values)]
    return groups


def _across_seeds(summary: pd.DataFrame) -> pd.DataFrame:
    """Mean and sd across seeds for each (model, threshold, split, protocol, unit) that has more than one seed."""
    seeded = summary[summary["seed"] != ""]
    rows = []
    for (model, threshold, split, protocol, unit), group in seeded.groupby(
            ["model", "threshold", "split", "protocol", "bootstrap_unit"], sort=False, dropna=False):
        if len(group) < 2:
            continue
        references = [r for r in dict.fromkeys(group["reference"].fillna("").astype(str)) if r]
        row = {"predictor": predictor_name(model, threshold, None) + ".seeds", "model": model, "threshold": threshold,
               "seed": "mean", "split": split, "protocol": protocol, "bootstrap_unit": unit,
               "n_items": int(group["n_items"].iloc[0]), "fallback_rate": float(group["fallback_rate"].mean()),
               "reference": ",".join(references)}
        for metric in (*METRICS, PAIRED):
            values = pd.to_numeric(group[metric], errors="coerce")
            row[metric] = float(values.mean())
            row[f"{metric}_sd"] = float(values.std(ddof=1))
        rows.append(row)
    return pd.DataFrame(rows)
