"""Import DVMap's released corpus (train/dev/test parquet and Hugging Face ``save_to_disk`` benchmark folders)
into dvmap's item tables, and export item tables back to DVMap's layout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc

from .. import ATTRIBUTES
from ..survey.archetypes import profile_ids
from ..survey.catalog import Question
from ..errors import DvmapError
from ..schema import CORPUS_SPLITS, RELEASE, RELEASE_COLUMNS, check_table
from ..io import read_parquet
from .items import order_items
from .prompts import CONVERSATION, arrow_series, conversations, options_array

BENCHMARK_FOLDERS = {"Cross-Demographic": "cross_demographic", "Cross-Country": "cross_country",
                     "Cross-Value": "cross_value"}


def read_release(release_dir: str | Path) -> dict[str, pd.DataFrame]:
    """Every part of a release folder that is present, keyed by dvmap split name, in DVMap's own columns."""
    release_dir = Path(release_dir)
    if not release_dir.is_dir():
        raise DvmapError(f"{release_dir}: release folder not found")
    parts = {}
    for name in CORPUS_SPLITS:
        path = release_dir / f"{name}.parquet"
        if path.exists():
            parts[name] = read_parquet(path)
    for folder, name in BENCHMARK_FOLDERS.items():
        if (release_dir / folder).is_dir():
            parts[name] = read_saved_dataset(release_dir / folder)
    if not parts:
        raise DvmapError(f"{release_dir}: no train/dev/test.parquet and no {'/'.join(BENCHMARK_FOLDERS)} folder")
    return parts


def read_saved_dataset(folder: Path) -> pd.DataFrame:
    """A ``datasets.save_to_disk`` folder: state.json names Arrow IPC stream files."""
    try:
        state = json.loads((folder / "state.json").read_text())
        files = [folder / f["filename"] for f in state["_data_files"]]
        tables = []
        for path in files:
            with pa.OSFile(str(path), "rb") as source:
                tables.append(pyarrow.ipc.open_stream(source).read_all())
    except (OSError, ValueError, KeyError, TypeError, pa.ArrowInvalid) as exc:
        raise DvmapError(f"{folder}: not a readable save_to_disk dataset folder ({exc})") from exc
    return pa.concat_tables(tables).to_pandas()


def import_part(frame: pd.DataFrame, split: str, catalog: dict[str, Question], where: str) -> pd.DataFrame:
    """One release part as a dvmap item table (rows keep the release's order; DVMap's prompt is kept)."""
    check_table(frame, RELEASE, where, "import-release")
    items = frame[list(ATTRIBUTES)].astype(str).copy()
    items["profile_id"] = profile_ids(items).to_pylist()
    items["question_id"] = frame["Q_id"].astype(str).to_numpy()
    items["item_id"] = items["profile_id"] + ":" + items["question_id"]
    items["category"] = frame["Category"].to_numpy()
    items["question"] = frame["Question"].to_numpy()
    items["options"] = [parse_options(s, catalog.get(q)) for s, q in zip(frame["Options"], items["question_id"])]
    items["answer"] = frame["answer"].astype(str).to_numpy()
    bad = [i for i, (a, o) in enumerate(zip(items["answer"], items["options"])) if a not in o]
    if bad:
        raise DvmapError(f"{where}: row {bad[0]}: answer {items['answer'][bad[0]]!r} is not among its options")
    items["answer_index"] = [o.index(a) for a, o in zip(items["answer"], items["options"])]
    items["n"] = np.nan
    items["entropy"] = np.nan
    items["frequency"] = frame["frequency"].astype(float).to_numpy()
    items["split"] = split
    items["data_source"] = frame["data_source"].to_numpy() if "data_source" in frame else "dvmap_release"
    items["release_prompt"] = frame["prompt"].to_numpy()
    return order_items(items, sort_rows=False)


def parse_options(joined: str, question: Question | None) -> list[str]:
    """DVMap's comma-joined option string as a list; the catalog's options win when they join to it."""
    if question is not None and ", ".join(question.options) == joined:
        return list(question.options)
    return [o.strip() for o in joined.split(", ")]


def export_release(items: pd.DataFrame, with_data_source: bool = True) -> pd.DataFrame:
    """An item table back in DVMap's column layout (the inverse of :func:`import_part`)."""
    out = pd.DataFrame({"Q_id": items["question_id"]})
    for attribute in ATTRIBUTES:
        out[attribute] = items[attribute] if attribute in items else "Not Answered"
    out["frequency"] = items["frequency"]
    out["Category"] = items["category"]
    out["Question"] = items["question"]
    out["prompt"] = items["release_prompt"] if "release_prompt" in items else ""
    out["Options"] = [", ".join(o) for o in items["options"]]
    out["answer"] = items["answer"]
    if with_data_source:
        out["data_source"] = items["data_source"]
    return out.reset_index(drop=True)


#: The columns of DVMap's released parquet files, in their order, with their Arrow types; the fork export
#: (:func:`dvmap_verl_layout`) differs only in ``Options``, a list of strings there.
RELEASE_SCHEMA = pa.schema([(c, pa.float64() if c == "frequency" else pa.string())
                            for c in [*RELEASE_COLUMNS, "data_source"]])
DVMAP_VERL_SCHEMA = RELEASE_SCHEMA.set(RELEASE_SCHEMA.get_field_index("Options"),
                                       pa.field("Options", pa.list_(pa.string())))


def dvmap_verl_layout(corpus: pd.DataFrame) -> pa.Table:
    """A prompt corpus in the layout DVMap's veRL fork trains on: DVMap's release columns (see
    :func:`export_release`) with ``prompt`` the user message text (the fork adds its own system message) and
    ``Options`` a list of strings; its reward manager reads the top-level ``answer``, ``Options`` and ``frequency``."""
    missing = [c for c in ("prompt", "options", "answer", "frequency", "data_source") if c not in corpus.columns]
    if missing:
        raise DvmapError(f"missing column(s) {missing}; expected a prompt corpus from `dvmap prompts`")
    out = export_release(corpus)
    out["prompt"] = arrow_series(_user_texts(corpus["prompt"]))  # typed Arrow: an empty corpus converts too
    out["Options"] = arrow_series(options_array(corpus["options"], text=True))
    try:
        return pa.Table.from_pandas(out, schema=DVMAP_VERL_SCHEMA, preserve_index=False).replace_schema_metadata(None)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise DvmapError(f"cannot write the DVMap veRL layout ({exc})") from exc


def _user_texts(prompts: pd.Series) -> pa.Array | pa.ChunkedArray:
    """The one user message text of each conversation, column-wise (item by item for another prompt shape)."""
    values = conversations(prompts)
    if values.type != CONVERSATION:
        return pa.array([_user_text(messages, i) for i, messages in enumerate(prompts)], type=pa.string())
    if isinstance(values, pa.ChunkedArray):
        texts, start = [], 0
        for chunk in values.chunks:
            texts.append(_conversation_user_texts(chunk, start))
            start += len(chunk)
        return pa.chunked_array(texts, type=pa.string())
    return _conversation_user_texts(values, 0)


def _conversation_user_texts(values: pa.Array, first_row: int) -> pa.Array:
    """The user message text of each conversation of a :data:`CONVERSATION` array (its first row is row
    ``first_row`` of the corpus, for messages)."""
    flat = values.flatten()
    user = pc.fill_null(pc.equal(pc.struct_field(flat, "role"), "user"), False)
    found = np.bincount(pc.list_parent_indices(values).filter(user).to_numpy(), minlength=len(values))
    if (found != 1).any():
        row = int(np.flatnonzero(found != 1)[0])
        raise DvmapError(f"prompt of row {first_row + row}: expected one user message, found {found[row]}")
    return pc.struct_field(flat, "content").filter(user)


def _user_text(messages, row: int) -> str:
    users = [m["content"] for m in messages if m["role"] == "user"]
    if len(users) != 1:
        raise DvmapError(f"prompt of row {row}: expected one user message, found {len(users)}")
    return users[0]
