"""Atomic, deterministic artifact writing: write to a temp path beside the target, then rename."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .errors import DvmapError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_parquet(data: pd.DataFrame | pa.Table, path: str | os.PathLike) -> None:
    """Write a table as parquet, atomically and byte-reproducibly (no pandas index, fixed writer options)."""
    table = data if isinstance(data, pa.Table) else pa.Table.from_pandas(data, preserve_index=False)
    table = table.replace_schema_metadata(None)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd", use_dictionary=True, write_statistics=True)


def write_tsv(frame: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write a frame as a tab-separated file, atomically."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, sep="\t", index=False, lineterminator="\n", float_format="%.6g")


def read_table(path: str | os.PathLike) -> pa.Table:
    """Read a parquet artifact as an Arrow table, naming the file in the error when it is missing or unreadable."""
    try:
        return pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise DvmapError(f"{path}: cannot read parquet ({exc})") from exc


def read_parquet(path: str | os.PathLike) -> pd.DataFrame:
    """Read a parquet artifact as a frame (errors as :func:`read_table`)."""
    try:
        return pd.read_parquet(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise DvmapError(f"{path}: cannot read parquet ({exc})") from exc


def to_frame(table: pa.Table | pd.DataFrame) -> pd.DataFrame:
    """A frame with plain string columns where the table has dictionary (categorical) ones."""
    frame = table.to_pandas() if isinstance(table, pa.Table) else table.copy()
    for column in frame.columns:
        if isinstance(frame[column].dtype, pd.CategoricalDtype):
            frame[column] = frame[column].astype(str)
    return frame


#: Columns of dvmap's TSV artifacts that hold labels, never numbers ("0.0" is a threshold, "0" a seed).
LABEL_COLUMNS = ("tau", "threshold", "seed", "key", "country", "category", "group", "group_type")


def read_tsv(path: str | os.PathLike) -> pd.DataFrame:
    """Read a TSV artifact written by :func:`write_tsv`: empty cells are missing, except in label columns."""
    try:
        frame = pd.read_csv(path, sep="\t", dtype={c: str for c in LABEL_COLUMNS}, keep_default_na=False,
                            na_values=["nan", "NaN", ""])
    except (OSError, pd.errors.ParserError) as exc:
        raise DvmapError(f"{path}: cannot read TSV ({exc})") from exc
    for column in LABEL_COLUMNS:
        if column in frame:
            frame[column] = frame[column].astype(object).fillna("")
    return frame
