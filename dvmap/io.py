"""Atomic, deterministic artifact writing: write to a temp path beside the target, then rename."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .errors import DvmapError


class Outputs:
    """Files of one command, each written to a temp path beside its target; :func:`atomic_outputs` renames them
    into place together."""

    def __init__(self):
        self.pending: dict[Path, Path] = {}  # target -> temp path
        self.created: list[Path] = []  # folders made for the targets, outermost first

    def path(self, target: str | os.PathLike) -> Path:
        """A fresh temp path for ``target`` (a regular file, or none yet; a target is written once)."""
        target = Path(target)
        if target in self.pending:
            raise DvmapError(f"{target}: written twice by one command (two inputs with the same file name?)")
        if target.exists() and not target.is_file():
            raise DvmapError(f"{target}: exists and is not a regular file; refusing to replace it")
        try:
            self.created += [p for p in reversed((target.parent, *target.parent.parents)) if not p.exists()]
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        except OSError as exc:
            raise DvmapError(f"{target}: cannot write here ({exc.strerror}: {exc.filename})") from exc
        os.close(fd)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        self.pending[target] = Path(tmp)
        return Path(tmp)

    def parquet(self, data: pd.DataFrame | pa.Table, target, metadata: dict[str, str] | None = None) -> None:
        """Write a table as parquet, byte-reproducibly (no pandas index or metadata; ``metadata``: schema
        metadata of dvmap's own, which must be deterministic)."""
        table = data if isinstance(data, pa.Table) else pa.Table.from_pandas(data, preserve_index=False)
        pq.write_table(table.replace_schema_metadata(metadata), self.path(target), compression="zstd",
                       use_dictionary=True, write_statistics=True)

    def parquet_stream(self, parts: Iterable[pd.DataFrame | pa.Table], target) -> None:
        """Write tables with the same columns as consecutive row groups of one parquet file (as :meth:`parquet`),
        holding one at a time; each part takes the first one's column types."""
        writer = None
        try:
            for data in parts:
                if writer is None:
                    table = data if isinstance(data, pa.Table) else pa.Table.from_pandas(data, preserve_index=False)
                    writer = pq.ParquetWriter(self.path(target), table.schema.remove_metadata(), compression="zstd",
                                              use_dictionary=True, write_statistics=True)
                elif isinstance(data, pa.Table):
                    table = data.cast(writer.schema)
                else:
                    table = pa.Table.from_pandas(data, schema=writer.schema, preserve_index=False)
                writer.write_table(table)
        finally:
            if writer is not None:
                writer.close()
        if writer is None:
            raise DvmapError(f"{target}: no rows to write")

    def tsv(self, frame: pd.DataFrame, target) -> None:
        """Write a frame as a tab-separated file."""
        frame.to_csv(self.path(target), sep="\t", index=False, lineterminator="\n", float_format="%.6g")

    def commit(self) -> None:
        for target, tmp in self.pending.items():
            os.replace(tmp, target)
        self.pending.clear()
        self.created.clear()

    def discard(self) -> None:
        for tmp in self.pending.values():
            tmp.unlink(missing_ok=True)
        for folder in reversed(self.created):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if still empty


def check_writable(path: str | os.PathLike, folder: bool = False) -> Path:
    """Refuse, before any work, an output path under a regular file, or one that exists and is of the wrong kind
    (a folder where a file is due, or the reverse)."""
    path = Path(path)
    blocking = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise DvmapError(f"{path}: cannot write here ({blocking} is not a folder)")
    if path.exists() and (path.is_dir() != folder or path.is_symlink()):
        raise DvmapError(f"{path}: exists and is not a {'folder' if folder else 'regular file'}; refusing to "
                         "replace it")
    return path


@contextlib.contextmanager
def atomic_outputs() -> Iterator[Outputs]:
    """Collect a command's outputs (``out.parquet``, ``out.tsv``, ``out.path`` for other writers); rename them all
    into place when the block succeeds, none of them (and no folder made for them) when it fails."""
    out = Outputs()
    try:
        yield out
        out.commit()
    finally:
        out.discard()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto ``path`` only if the block succeeds."""
    with atomic_outputs() as out:
        yield out.path(path)


def write_parquet(data: pd.DataFrame | pa.Table, path: str | os.PathLike, metadata: dict[str, str] | None = None
                  ) -> None:
    """Write a table as parquet, atomically and byte-reproducibly (see :meth:`Outputs.parquet`)."""
    with atomic_outputs() as out:
        out.parquet(data, path, metadata)


def write_tsv(frame: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write a frame as a tab-separated file, atomically."""
    with atomic_outputs() as out:
        out.tsv(frame, path)


def read_table(path: str | os.PathLike) -> pa.Table:
    """Read a parquet artifact as an Arrow table, naming the file in the error when it is missing or unreadable."""
    try:
        return pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise DvmapError(f"{path}: cannot read parquet ({exc})") from exc


def iter_frames(path: str | os.PathLike, rows: int) -> Iterator[pd.DataFrame]:
    """A parquet artifact as consecutive frames of at most ``rows`` rows (errors as :func:`read_table`)."""
    try:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=rows):
            yield batch.to_pandas()
    except (OSError, pa.ArrowException) as exc:
        raise DvmapError(f"{path}: cannot read parquet ({exc})") from exc


def read_parquet(path: str | os.PathLike) -> pd.DataFrame:
    """Read a parquet artifact as a frame (errors as :func:`read_table`)."""
    try:
        return pd.read_parquet(path)
    except (OSError, pa.ArrowException) as exc:
        raise DvmapError(f"{path}: cannot read parquet ({exc})") from exc


def read_compact(path: str | os.PathLike, columns: list[str] | None = None, plain: tuple[str, ...] = ()
                 ) -> pd.DataFrame:
    """A parquet artifact as a frame in little memory, for tables of hundreds of thousands of rows: string columns
    become categoricals (except those named in ``plain``) and every list column holds one shared tuple per distinct
    list (:func:`shared_lists`); ``columns`` reads only those. Errors as :func:`read_table`."""
    try:
        schema = pq.read_schema(path)
        strings = [f.name for f in schema if (pa.types.is_string(f.type) or pa.types.is_large_string(f.type))
                   and f.name not in plain and (columns is None or f.name in columns)]
        table = pq.read_table(path, columns=columns, read_dictionary=strings)
    except (OSError, pa.ArrowException) as exc:
        raise DvmapError(f"{path}: cannot read parquet ({exc})") from exc
    data = {}
    for name, column in zip(table.column_names, table.columns):
        if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
            data[name] = shared_lists(column)
        else:
            data[name] = column.to_pandas()
    frame = pd.DataFrame(data, index=pd.RangeIndex(table.num_rows))
    del table, data, column
    pa.default_memory_pool().release_unused()  # the decoded Arrow buffers, else kept by the allocator
    return frame


def shared_lists(column: pa.ChunkedArray | pa.Array) -> pd.Series:
    """An object Series of tuples, one tuple object per distinct list of ``column`` (equal lists share it): a list
    column such as ``options`` repeats a few dozen lists over hundreds of thousands of rows. A null list is None."""
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    n = len(column)
    lengths = pc.fill_null(pc.list_value_length(column), -1).to_numpy(zero_copy_only=False).astype(np.int64)
    values = pc.dictionary_encode(column.flatten())        # the non-null lists' items, in row order
    width = int(lengths.max(initial=0)) + 1
    codes = np.full((n, width), -2, dtype=np.int32)        # per row: its length, then its items' codes, padded
    codes[:, 0] = lengths
    sizes = np.maximum(lengths, 0)
    rows = np.repeat(np.arange(n), sizes)
    positions = np.arange(len(rows)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    codes[rows, positions + 1] = pc.fill_null(values.indices, -1).to_numpy(zero_copy_only=False)
    key = np.zeros(n, dtype=np.uint64)                     # a hash of each row's codes, then checked exactly
    with np.errstate(over="ignore"):
        for j in range(width):
            key = key * np.uint64(0x9E3779B97F4A7C15) + codes[:, j].astype(np.uint64)
    inverse, _ = pd.factorize(key)
    first = np.zeros(inverse.max(initial=-1) + 1, dtype=np.int64)
    first[inverse[::-1]] = np.arange(n)[::-1]              # each distinct row's first occurrence
    if not (codes == codes[first][inverse]).all():         # a hash collision: the exact (slower) way
        _, first, inverse = np.unique(codes, axis=0, return_index=True, return_inverse=True)
        inverse = inverse.ravel()
    distinct = [None if items is None else tuple(items) for items in column.take(first).to_pylist()]
    shared = np.empty(len(distinct), dtype=object)
    shared[:] = distinct
    return pd.Series(shared[inverse], dtype=object)


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
    except (OSError, ValueError) as exc:  # ValueError: a parse error, an empty file, not text
        raise DvmapError(f"{path}: cannot read TSV ({exc})") from exc
    for column in LABEL_COLUMNS:
        if column in frame:
            frame[column] = frame[column].astype(object).fillna("")
    return frame
