"""LLM predictions for an item table: chunked, resumable, with a progress bar, in the shared prediction schema.

Each chunk of items is written to ``<output>.parts/`` as soon as it is generated. A rerun skips finished chunks and
generates again only the items whose request failed, so an interrupted run resumes without duplicates or gaps. The
final file is written (atomically) only when every item has an output.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from ..answers import SAMPLE_SEPARATOR, vote
from .backends import Backend
from ..errors import DvmapError
from ..io import write_parquet
from .models import ModelSpec
from ..evaluation.predictions import prediction_table
from ..corpus.prompts import prompt_corpus

log = logging.getLogger(__name__)


def predict_file(items: pd.DataFrame, output: Path, spec: ModelSpec, make_backend: Callable[[], Backend],
                 style: str, model_label: str, chunk_size: int = 64, threshold: str = "none",
                 templates=None, protocol: str = "lenient") -> pd.DataFrame:
    """Generate, parse and write predictions for ``items``; return the prediction table. ``templates``: the prompt
    wording (a YAML path or loaded templates; None: the packaged one). Each item's samples are parsed under the
    answer ``protocol`` and majority-voted (:func:`dvmap.answers.vote`)."""
    conversations = prompt_corpus(items, style, templates)["prompt"].tolist()
    parts = Path(f"{output}.parts")
    _claim_parts(parts, items, conversations, spec, chunk_size)
    starts = range(0, len(items), chunk_size)
    todo = {start: _missing(parts / f"chunk-{start:07d}.parquet", start, min(start + chunk_size, len(items)))
            for start in starts}
    todo = {start: rows for start, rows in todo.items() if len(rows)}
    if todo:
        backend = make_backend()
        progress = _progress(sum(len(rows) for rows in todo.values()), f"{model_label} {output.stem}")
        for start, rows in todo.items():
            _generate_chunk(parts / f"chunk-{start:07d}.parquet", rows, conversations, backend,
                            spec.generation.batch_size, progress)
        progress.close()
    chunks = pd.concat([pd.read_parquet(parts / f"chunk-{s:07d}.parquet") for s in starts], ignore_index=True)
    chunks = chunks.sort_values("row").reset_index(drop=True)
    if not chunks["row"].equals(pd.Series(range(len(items)), name="row")):
        raise DvmapError(f"{parts}: chunks do not cover the items exactly; delete the folder and rerun")
    failed = int(chunks["failed"].sum())
    if failed:
        raise DvmapError(f"{output}: {failed} of {len(items)} items failed; their outputs are recorded as failed "
                         f"in {parts} and a rerun retries only them")
    outputs = chunks["outputs"].tolist()
    index = [vote(list(o), list(options), protocol) for o, options in zip(outputs, items["options"])]
    table = prediction_table(items, index, model_label, threshold, spec.generation.seed,
                             raw_output=[SAMPLE_SEPARATOR.join(o) for o in outputs])
    write_parquet(table, output)
    shutil.rmtree(parts)
    return table


def _claim_parts(parts: Path, items: pd.DataFrame, conversations, spec: ModelSpec, chunk_size: int) -> None:
    """Make ``parts`` hold chunks of exactly this work: leftovers of other items, prompts or settings are removed."""
    identity = json.dumps({"items": items["item_id"].tolist(), "prompts": conversations, "chunk_size": chunk_size,
                           "model": [spec.name, spec.kind, spec.path, spec.url, spec.remote_model, spec.backend],
                           "chat": spec.chat_template_kwargs, "generation": dataclasses.asdict(spec.generation)},
                          sort_keys=True, default=str)
    digest = hashlib.sha256(identity.encode()).hexdigest()
    manifest = parts / "manifest.sha256"
    if parts.exists() and (not manifest.exists() or manifest.read_text().strip() != digest):
        log.warning("%s: left over from other items or settings; starting again", parts)
        shutil.rmtree(parts)
    parts.mkdir(parents=True, exist_ok=True)
    manifest.write_text(digest + "\n")


def _missing(chunk: Path, start: int, end: int) -> np.ndarray:
    """Rows of a chunk still to generate: all of them, or those recorded as failed."""
    if not chunk.exists():
        return np.arange(start, end)
    done = pd.read_parquet(chunk)
    return done.loc[done["failed"], "row"].to_numpy()


def _generate_chunk(path: Path, rows: np.ndarray, conversations, backend: Backend, batch_size: int, progress):
    previous = pd.read_parquet(path).set_index("row") if path.exists() else None
    records = []
    for begin in range(0, len(rows), batch_size):
        batch = rows[begin:begin + batch_size]
        for row, outputs in zip(batch, backend.generate([conversations[r] for r in batch])):
            records.append({"row": int(row), "outputs": [o or "" for o in outputs],
                            "failed": any(o is None for o in outputs)})
        progress.update(len(batch))
    fresh = pd.DataFrame(records).set_index("row")
    merged = fresh if previous is None else pd.concat([previous.drop(fresh.index, errors="ignore"), fresh])
    write_parquet(merged.sort_index().reset_index(), path)


def _progress(total: int, description: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=description, unit="item", mininterval=2.0)
