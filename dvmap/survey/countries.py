"""Country codes (ISO numeric, alpha-2, alpha-3) to the country names DVMap uses."""

from __future__ import annotations

import functools
from importlib import resources

import pandas as pd

COUNTRY_TABLE = resources.files("dvmap") / "data" / "countries.tsv"


def country_table() -> pd.DataFrame:
    """iso_numeric, alpha2, alpha3 and name of every WVS-7 country, as strings."""
    return pd.read_csv(COUNTRY_TABLE, sep="\t", dtype=str, keep_default_na=False)


@functools.cache
def country_names() -> dict[str, str]:
    """Map every known code, as a string ('840', 'US', 'USA'), to DVMap's country name."""
    names: dict[str, str] = {}
    for row in country_table().itertuples(index=False):
        for code in (row.iso_numeric, row.alpha2, row.alpha3):
            if code:
                names[code.upper()] = row.name
    return names


def country_name(code: object) -> str | None:
    """DVMap's name for an ISO numeric (int/float/str) or alpha code; None when unknown."""
    if isinstance(code, float) and code.is_integer():
        code = int(code)
    return country_names().get(str(code).strip().upper())
