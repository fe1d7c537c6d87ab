"""Read WVS-7 respondent files (SPSS .sav, Stata .dta, CSV) into raw codes plus value labels.

Negative WVS codes (-1 Don't know … -5 Missing) and system-missing values both come back as NaN.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyreadstat

from ..errors import DvmapError

SUFFIXES = (".sav", ".zsav", ".dta", ".csv")


@dataclass
class RawSurvey:
    """Raw codes of one input file: numeric columns hold floats (NaN = missing), text columns strings."""

    path: Path
    data: pd.DataFrame
    value_labels: dict[str, dict[float, str]] = field(default_factory=dict)


def available_columns(path: Path) -> list[str]:
    """Column names of an input file, read without loading its data."""
    suffix = _suffix(path)
    try:
        if suffix in (".sav", ".zsav"):
            return list(pyreadstat.read_sav(str(path), metadataonly=True)[1].column_names)
        if suffix == ".dta":
            return list(pyreadstat.read_dta(str(path), metadataonly=True)[1].column_names)
        return list(_duckdb_csv(path, limit=0).columns)
    except (pyreadstat.ReadstatError, pyreadstat.PyreadstatError) as exc:
        raise DvmapError(f"{path}: not a readable {suffix} file ({exc})") from exc


def read_survey(path: Path, columns: list[str]) -> RawSurvey:
    """Read ``columns`` (all present in the file) with negative codes turned into missing values."""
    suffix = _suffix(path)
    if suffix == ".csv":
        data, labels = _duckdb_csv(path), {}
        data = data[columns]
    else:
        reader = pyreadstat.read_dta if suffix == ".dta" else pyreadstat.read_sav
        try:
            data, meta = reader(str(path), usecols=columns, user_missing=False)
        except (pyreadstat.ReadstatError, pyreadstat.PyreadstatError) as exc:
            raise DvmapError(f"{path}: not a readable {suffix} file ({exc})") from exc
        labels = {k: v for k, v in meta.variable_value_labels.items() if k in columns}
    return RawSurvey(Path(path), _negatives_to_missing(data), labels)


def _suffix(path: Path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIXES:
        raise DvmapError(f"{path}: unsupported file type {suffix!r}; expected one of {', '.join(SUFFIXES)}")
    if not Path(path).is_file():
        raise DvmapError(f"{path}: input file not found")
    return suffix


def _duckdb_csv(path: Path, limit: int | None = None) -> pd.DataFrame:
    """Read the official WVS CSV (UTF-8 with a BOM, literal negative codes) with duckdb's CSV sniffer."""
    sql = "SELECT * FROM read_csv(?, header = true, encoding = 'utf-8', sample_size = -1)"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    try:
        return duckdb.execute(sql, [str(path)]).df()
    except duckdb.Error as exc:
        hint = "; the CSV must be UTF-8 encoded" if "unicode" in str(exc).lower() else ""
        raise DvmapError(f"{path}: cannot parse CSV{hint} ({exc})") from exc


def _negatives_to_missing(data: pd.DataFrame) -> pd.DataFrame:
    out = {}
    for name, column in data.items():
        if pd.api.types.is_numeric_dtype(column):
            values = column.to_numpy(dtype="float64", na_value=np.nan, copy=True)
            values[values < 0] = np.nan
            out[name] = values
        else:
            text = column.astype("object")
            out[name] = text.where(text.notna() & (text.astype(str).str.strip() != ""), None)
    return pd.DataFrame(out, index=data.index)
