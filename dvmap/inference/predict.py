"""LLM predictions for an item table: chunked, resumable, with a progress bar, in the shared prediction schema.

Two modes. ``generate``: the model writes a reply (``generation.samples`` of them), parsed under the answer protocol
and majority-voted; ``option_probs`` is the samples' empirical distribution when there are several. ``score``: the
log-probability of each option as the assistant's reply in the direct style's answer format
(:data:`~dvmap.answers.ANSWER_REPLY`), computed by the backend with the prompt encoded once per item; the summed and
the per-token (length-normalised) scores are kept (``option_logprob_sum``, ``option_logprob_mean``), the softmax of
the configured one over the options is ``option_probs`` and its argmax the prediction. Nothing is generated, so
nothing is unparseable. Score mode takes the items in the order of their prompts' text, so that the items of one
profile fill the same batches and the backend encodes their common prefix (system prompt and profile) once.

Each chunk of items is written to ``<output>.parts/`` as soon as it is generated (the folder is made once the model
is loaded). A rerun skips finished chunks and generates again only the items whose request failed, so an interrupted
run resumes without duplicates or gaps. The final file is written (atomically) only when every item has an output;
it records a digest of its items and settings in its parquet metadata, so that a rerun with the same items and
settings skips it without loading the model.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..answers import ANSWER_REPLY, SAMPLE_SEPARATOR, vote
from .backends import Backend
from ..errors import DvmapError
from ..io import write_parquet
from ..schema import SCORE_COLUMNS
from .models import MODES, SCORE_BY, ModelSpec
from ..evaluation.predictions import prediction_table
from ..corpus.prompts import prompt_corpus

log = logging.getLogger(__name__)


#: Parquet schema metadata key of a prediction file's digest (items, prompts, model, settings).
DIGEST_KEY = "dvmap.predict"
#: Files of a local model whose name, size and modification time enter the digest (a retrained model is new).
WEIGHT_FILES = ("config.json", "*.safetensors", "*.bin", "*.gguf")



def predict_file(items: pd.DataFrame, output: Path, spec: ModelSpec, make_backend: Callable[[], Backend],
                 style: str, model_label: str, chunk_size: int = 64, threshold: str = "none",
                 templates=None, protocol: str = "lenient", mode: str = "generate",
                 score_by: str = "sum") -> pd.DataFrame:
    """Predict ``items`` in ``mode`` (see the module docstring), write and return the prediction table.
    ``templates``: the prompt wording (a YAML path or loaded templates; None: the packaged one). Generated samples
    are parsed under the answer ``protocol`` and majority-voted (:func:`dvmap.answers.vote`); scores are ranked by
    ``score_by``. An ``output`` already written for the same items and settings is kept as it is, and
    ``make_backend`` is not called."""
    if mode not in MODES or score_by not in SCORE_BY:
        raise DvmapError(f"models.{spec.name}: mode must be one of {list(MODES)} and score_by one of "
                         f"{list(SCORE_BY)}, not {mode!r} / {score_by!r}")
    conversations = prompt_corpus(items, style, templates)["prompt"].tolist()
    work = {**_work(items, conversations, spec), "mode": mode}
    final = _digest({**work, "label": model_label, "threshold": threshold, "protocol": protocol,
                     "score_by": score_by})
    if _finished(output, final):
        log.info("%s: complete for these items and settings; skipped", output)
        return pd.read_parquet(output)
    parts = Path(f"{output}.parts")
    manifest = _digest({**work, "chunk_size": chunk_size})
    _drop_stale(parts, manifest)
    starts = range(0, len(items), chunk_size)
    order = shared_prefix_order(conversations) if mode == "score" else np.arange(len(items))
    todo = {start: _missing(parts / f"chunk-{start:07d}.parquet", order[start:start + chunk_size])
            for start in starts}
    todo = {start: rows for start, rows in todo.items() if len(rows)}
    if todo:
        backend = make_backend()
        parts.mkdir(parents=True, exist_ok=True)
        (parts / "manifest.sha256").write_text(manifest + "\n")
        progress = _progress(sum(len(rows) for rows in todo.values()), f"{model_label} {output.stem}")
        step = _generated if mode == "generate" else functools.partial(_scored, options=items["options"].tolist())
        for start, rows in todo.items():
            _run_chunk(parts / f"chunk-{start:07d}.parquet", rows, conversations, backend,
                       spec.generation.batch_size, progress, step)
        progress.close()
    chunks = pd.concat([pd.read_parquet(parts / f"chunk-{s:07d}.parquet") for s in starts], ignore_index=True)
    chunks = chunks.sort_values("row").reset_index(drop=True)
    if not chunks["row"].equals(pd.Series(range(len(items)), name="row")):
        raise DvmapError(f"{parts}: chunks do not cover the items exactly; delete the folder and rerun")
    failed = int(chunks["failed"].sum())
    if failed:
        raise DvmapError(f"{output}: {failed} of {len(items)} items failed; their outputs are recorded as failed "
                         f"in {parts} and a rerun retries only them")
    if mode == "generate":
        table = _generation_table(items, chunks["outputs"].tolist(), spec, model_label, threshold, protocol)
    else:
        table = _score_table(items, chunks, spec, model_label, threshold, score_by)
    write_parquet(table, output, metadata={DIGEST_KEY: final})
    shutil.rmtree(parts)
    return table


def _generation_table(items: pd.DataFrame, outputs: list, spec: ModelSpec, label: str, threshold: str,
                      protocol: str) -> pd.DataFrame:
    """The prediction table of generated samples: the vote, and with several samples their distribution."""
    options = [list(o) for o in items["options"]]
    index = [vote(list(o), opts, protocol) for o, opts in zip(outputs, options)]
    probs = None
    if spec.generation.samples > 1:  # the parsed samples' shares (None where no sample parsed)
        counts = [np.bincount([i for i in (vote([s], opts, protocol) for s in o) if i >= 0], minlength=len(opts))
                  for o, opts in zip(outputs, options)]
        probs = [c / c.sum() if c.sum() else None for c in counts]
    return prediction_table(items, index, label, threshold, spec.generation.seed, option_probs=probs,
                            raw_output=[SAMPLE_SEPARATOR.join(o) for o in outputs])


def _score_table(items: pd.DataFrame, chunks: pd.DataFrame, spec: ModelSpec, label: str, threshold: str,
                 score_by: str) -> pd.DataFrame:
    """The prediction table of option scores: the softmax of the ranked score and its argmax, with both scores."""
    summed = [np.asarray(v, dtype=float) for v in chunks["logprob"]]
    mean = [s / np.asarray(t, dtype=float) for s, t in zip(summed, chunks["tokens"])]
    probs = [option_distribution(scores) for scores in (summed if score_by == "sum" else mean)]
    table = prediction_table(items, [int(np.argmax(p)) for p in probs], label, threshold, spec.generation.seed,
                             option_probs=probs)
    total, per_token = SCORE_COLUMNS
    table[total] = [s.tolist() for s in summed]
    table[per_token] = [m.tolist() for m in mean]
    return table


def option_distribution(scores: np.ndarray) -> np.ndarray:
    """The softmax over an item's options of their log-probability scores: its ``option_probs``."""
    weights = np.exp(scores - scores.max())
    return weights / weights.sum()


def model_directory(spec: ModelSpec) -> str | None:
    """The local model directory of an hf or gguf source (None for an endpoint); a DvmapError naming it when it
    holds no model."""
    if spec.kind == "endpoint":
        return None
    if not (Path(spec.path) / "config.json").is_file():
        raise DvmapError(f"{spec.path}: not a model directory (no config.json)")
    return spec.path


def _work(items: pd.DataFrame, conversations, spec: ModelSpec) -> dict:

    """What the generated outputs depend on: the items, their prompts, the model (and its weight files) and the
    generation settings."""
    content = pd.util.hash_pandas_object(items.astype(str), index=False).to_numpy().tobytes()
    return {"items": hashlib.sha256(content).hexdigest(), "prompts": conversations, "chat": spec.chat_template_kwargs,
            "model": [spec.name, spec.kind, spec.path, spec.url, spec.remote_model, spec.backend],
            "weights": _weights(spec.path), "generation": dataclasses.asdict(spec.generation)}


def _digest(identity: dict) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()


def _weights(path: str | None) -> list:
    """(name, size, modification time) of the weight files of a local model (of the file itself, if one)."""
    if not path:
        return []
    folder = Path(path)
    files = [folder] if folder.is_file() else sorted({f for p in WEIGHT_FILES for f in folder.glob(p)})
    return [(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files]


def _finished(output: Path, digest: str) -> bool:
    """Whether ``output`` is a prediction file written for exactly this digest."""
    try:
        metadata = pq.read_schema(output).metadata or {}
    except (OSError, pa.ArrowException):
        return False
    return metadata.get(DIGEST_KEY.encode()) == digest.encode()


def _drop_stale(parts: Path, manifest: str) -> None:
    """Remove ``parts`` if it holds chunks of other items, prompts or settings (or no manifest)."""
    recorded = parts / "manifest.sha256"
    if parts.exists() and (not recorded.exists() or recorded.read_text().strip() != manifest):
        log.warning("%s: left over from other items or settings; starting again", parts)
        shutil.rmtree(parts)


def shared_prefix_order(conversations: list) -> np.ndarray:
    """The rows in the order of their prompts' text, so that the items of one profile (whose prompts differ only
    after the profile) fall in the same score batches and share its encoded prefix."""
    texts = np.array([json.dumps(c, ensure_ascii=False) for c in conversations], dtype=object)
    return np.argsort(texts, kind="stable")


def _missing(chunk: Path, rows: np.ndarray) -> np.ndarray:
    """Rows of a chunk still to generate: all of them, or those recorded as failed."""
    if not chunk.exists():
        return rows
    done = pd.read_parquet(chunk)
    return done.loc[done["failed"], "row"].to_numpy()


def _generated(backend: Backend, batch: np.ndarray, conversations) -> list[dict]:
    """Chunk records of generated samples (a sample that failed is recorded as failed)."""
    return [{"row": int(row), "outputs": [o or "" for o in outputs], "failed": any(o is None for o in outputs)}
            for row, outputs in zip(batch, backend.generate([conversations[r] for r in batch]))]


def _scored(backend: Backend, batch: np.ndarray, conversations, options: list) -> list[dict]:
    """Chunk records of option scores (an item the backend could not score is None: recorded as failed)."""
    replies = [[ANSWER_REPLY.format(o) for o in options[r]] for r in batch]
    scored = backend.score([conversations[r] for r in batch], replies)
    return [{"row": int(row), "logprob": [s for s, _ in item or []], "tokens": [t for _, t in item or []],
             "failed": item is None} for row, item in zip(batch, scored)]


def _run_chunk(path: Path, rows: np.ndarray, conversations, backend: Backend, batch_size: int, progress, step):
    previous = pd.read_parquet(path).set_index("row") if path.exists() else None
    records = []
    for begin in range(0, len(rows), batch_size):
        batch = rows[begin:begin + batch_size]
        records += step(backend, batch, conversations)
        progress.update(len(batch))
    fresh = pd.DataFrame(records).set_index("row")
    merged = fresh if previous is None else pd.concat([previous.drop(fresh.index, errors="ignore"), fresh])
    write_parquet(merged.sort_index().reset_index(), path)


def _progress(total: int, description: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=description, unit="item", mininterval=2.0)
