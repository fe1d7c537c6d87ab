"""Counterfactual attribute flips (the paper's robustness study): how often a predictor's answer changes when one
attribute of a profile is swapped (default Income Bracket: Low income <-> High income), per question category."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ..survey.archetypes import profile_ids
from ..errors import DvmapError
from ..schema import FLIP_SPLIT, attribute_columns

log = logging.getLogger(__name__)


def flip_items(items: pd.DataFrame, attribute: str, values: tuple[str, str]) -> pd.DataFrame:
    """The items whose ``attribute`` is one of ``values``, with that value swapped; split 'flip'.

    ``source_item_id`` links each flipped item to its original."""
    if attribute not in attribute_columns(items):
        raise DvmapError(f"evaluation.flip.attribute: {attribute!r} is not an attribute of the items")
    first, second = values
    if first == second:
        raise DvmapError(f"evaluation.flip.values: the two values are the same ({first!r})")
    present = set(items[attribute].dropna().astype(str))
    absent = [value for value in (first, second) if value not in present]
    if absent:
        raise DvmapError(f"evaluation.flip.values: {absent} never occur as {attribute} in the items, so the flip "
                         f"would invent a value; {attribute} holds {sorted(present)}")
    chosen = items[items[attribute].isin([first, second])].copy()
    chosen["source_item_id"] = chosen["item_id"]
    if "release_prompt" in chosen:
        chosen["release_prompt"] = _flip_text(chosen, attribute, {first: second, second: first})
    chosen[attribute] = chosen[attribute].map({first: second, second: first})
    chosen["profile_id"] = profile_ids(chosen[attribute_columns(items)]).to_pylist()
    chosen["item_id"] = chosen["source_item_id"] + "|flip"
    chosen["split"] = FLIP_SPLIT
    return chosen.reset_index(drop=True)


def _flip_text(chosen: pd.DataFrame, attribute: str, swap: dict[str, str]) -> list[str | None]:
    """DVMap's own prompts (imported releases) with the attribute's value swapped where it is written. A prompt
    that does not name the value exactly once cannot be flipped: it becomes null, so that the release prompt style
    refuses the item rather than describe the original person."""
    texts = [text.replace(value, swap[value]) if isinstance(text, str) and text.count(value) == 1 else None
             for text, value in zip(chosen["release_prompt"], chosen[attribute])]
    unflipped = sum(t is None for t in texts)
    if unflipped:
        log.warning("%d of %d release prompts do not name %s exactly once; they are left out of the flipped items",
                    unflipped, len(texts), attribute)
    return texts


def flip_rates(original: pd.DataFrame, flipped: pd.DataFrame, flipped_items: pd.DataFrame) -> pd.DataFrame:
    """Per predictor and question category: items, the share whose prediction changed, and the share unparseable
    in either run (an unparseable answer counts as changed only if the other run parsed)."""
    link = flipped_items[["item_id", "source_item_id"]]
    after = flipped.merge(link, on="item_id")[["predictor", "source_item_id", "prediction_index"]]
    before = original[["predictor", "item_id", "category", "prediction_index"]].rename(
        columns={"item_id": "source_item_id"})
    pairs = before.merge(after, on=["predictor", "source_item_id"], suffixes=("_before", "_after"))
    if pairs.empty:
        raise DvmapError("no prediction on a flipped item matches a prediction on its original")
    b = pairs["prediction_index_before"].to_numpy(dtype=float, na_value=np.nan)
    a = pairs["prediction_index_after"].to_numpy(dtype=float, na_value=np.nan)
    pairs["changed"] = (np.isnan(b) != np.isnan(a)) | (~np.isnan(b) & ~np.isnan(a) & (b != a))
    pairs["unparseable"] = np.isnan(b) | np.isnan(a)
    out = (pairs.groupby(["predictor", "category"], sort=True)
           .agg(items=("changed", "size"), change_rate=("changed", "mean"), unparseable_rate=("unparseable", "mean"))
           .reset_index())
    overall = (pairs.groupby("predictor", sort=True)
               .agg(items=("changed", "size"), change_rate=("changed", "mean"),
                    unparseable_rate=("unparseable", "mean")).reset_index().assign(category="ALL"))
    return pd.concat([out, overall], ignore_index=True)[["predictor", "category", "items", "change_rate",
                                                         "unparseable_rate"]]
