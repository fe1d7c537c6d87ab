"""Ingest: WVS-7 files -> one row per respondent with DVMap profile attributes and answer labels."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from .. import NOT_ANSWERED
from .attribute_map import AttributeRule
from .catalog import Question
from ..errors import DvmapError
from ..schema import DROPPED_COLUMNS
from .readers import available_columns, read_survey

log = logging.getLogger(__name__)

ATTRIBUTE_POLICIES = ("error", "not-answered", "drop")
QUESTION_POLICIES = ("error", "skip")


def build_respondents(
    inputs: list[Path],
    catalog: dict[str, Question],
    attribute_map: dict[str, AttributeRule],
    absent_attributes: str | dict[str, str] = "error",
    absent_questions: str = "error",
    id_column: str | None = "D_INTERVIEW",
) -> pd.DataFrame:
    """Read every input file and return the respondents table (see the README, "Artifacts").

    An attribute whose variables are all absent from a file (or entirely missing in it) follows its policy in
    ``absent_attributes`` ("error", "not-answered" or "drop"); a question in that state follows
    ``absent_questions`` ("error", or "skip": its answers are null for that file).
    """
    if not inputs:
        raise DvmapError("no input files given")
    policies = _attribute_policies(absent_attributes, attribute_map)
    if absent_questions not in QUESTION_POLICIES:
        raise DvmapError(f"data.absent_questions must be one of {QUESTION_POLICIES}, not {absent_questions!r}")
    paths = list(map(Path, inputs))
    labels = file_labels(paths)
    frames, id_sources, dropped = [], [], set()
    for path, label in zip(paths, labels):
        frame, file_dropped, id_source = _read_one(path, label, catalog, attribute_map, policies, absent_questions,
                                                   id_column)
        frames.append(frame)
        id_sources.append(id_source)
        dropped |= file_dropped
        log.info("%s: %d respondents", path, len(frame))
    _check_unique_ids(frames, paths, id_sources, id_column)
    table = pd.concat(frames, ignore_index=True)
    table = table.drop(columns=sorted(dropped & set(table.columns)))
    unanswered = [q for q in catalog if q in table and table[q].isna().all()]
    if unanswered:
        log.warning("questions with no answer in any input, dropped: %s", ", ".join(unanswered))
        table = table.drop(columns=unanswered)
    return table


def drop_incomplete(table: pd.DataFrame, required: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Drop respondents whose value of any ``required`` attribute is "Not Answered" (DVMap's release has no such
    respondent for Life Stage or Income Bracket). Returns the kept table and, per country, how many respondents
    there were and how many lacked each required attribute (``attribute`` "any": how many were dropped)."""
    unknown = [a for a in required if a not in table.columns]
    if unknown:
        raise DvmapError(f"data.required_attributes: {unknown} are not attributes of the respondents table "
                         "(check the attribute map, and data.absent_attributes: drop removes an attribute)")
    missing = {a: (table[a] == NOT_ANSWERED).to_numpy() for a in required}
    dropped = np.logical_or.reduce(list(missing.values())) if required else np.zeros(len(table), dtype=bool)
    country = table["Country"].astype(str).to_numpy() if "Country" in table else np.full(len(table), "")
    counts = pd.DataFrame({"country": country, "respondents": 1, "any": dropped,
                           **{a: m for a, m in missing.items()}})
    report = counts.groupby("country", sort=True).sum().reset_index()
    report = report.melt(id_vars=["country", "respondents"], var_name="attribute", value_name="dropped")
    if dropped.all():
        raise DvmapError(f"data.required_attributes {required}: every respondent lacks one of them")
    if dropped.any():
        log.info("dropped %d of %d respondents lacking %s", dropped.sum(), len(table), " or ".join(required))
    return table[~dropped].reset_index(drop=True), report[list(DROPPED_COLUMNS)]


def _attribute_policies(absent: str | dict[str, str], attribute_map: dict) -> dict[str, str]:
    if isinstance(absent, str):
        absent = {name: absent for name in attribute_map}
    policies = {name: absent.get(name, "error") for name in attribute_map}
    for name, policy in {**absent, **policies}.items():
        if name not in attribute_map:
            raise DvmapError(f"data.absent_attributes: unknown attribute {name!r}")
        if policy not in ATTRIBUTE_POLICIES:
            raise DvmapError(f"data.absent_attributes.{name}: must be one of {ATTRIBUTE_POLICIES}, not {policy!r}")
    return policies


def _read_one(path, label, catalog, attribute_map, policies, absent_questions, id_column):
    columns = set(available_columns(path))
    candidates = [s.var for rule in attribute_map.values() for s in rule.sources if s.var in columns]
    wanted = candidates + [q for q in catalog if q in columns]
    if id_column and id_column in columns:
        wanted.append(id_column)
    raw = read_survey(path, list(dict.fromkeys(wanted)))
    data, n = raw.data, len(raw.data)
    if n == 0:
        raise DvmapError(f"{path}: no respondent rows")

    has_ids = bool(id_column) and id_column in data
    out: dict[str, object] = {"respondent_id": _respondent_ids(data, path, label, id_column if has_ids else None)}
    dropped: set[str] = set()
    for name, rule in attribute_map.items():
        present = [s for s in rule.sources if s.var in columns]
        source = next((s for s in present if data[s.var].notna().any()), None)
        if source is None:
            why = (f"column(s) {[s.var for s in present]} entirely missing" if present
                   else f"none of its variables {[s.var for s in rule.sources]} is in the file")
            out[name] = _absent_attribute(name, policies[name], path, why, n, dropped)
            continue
        where = f"{path}: column {source.var} ({name})"
        out[name] = rule.decode(data[source.var], source, raw.value_labels.get(source.var, {}), where)
    for qid, question in catalog.items():
        if qid not in columns or data[qid].isna().all():
            if absent_questions == "error":
                why = "is not in the file" if qid not in columns else "is entirely missing"
                raise DvmapError(
                    f"{path}: question column {qid} {why}; remove it from the catalog or set "
                    "data.absent_questions: skip (--absent-questions skip)"
                )
            out[qid] = pd.Categorical([None] * n, categories=question.options)
            continue
        out[qid] = _recode(data[qid], question, f"{path}: column {qid}")
    id_source = (f"ids from column {id_column}" if has_ids else
                 f"ids {label}-ROW generated: the file has no column {id_column}" if id_column else
                 f"ids {label}-ROW generated: no id column given")
    return pd.DataFrame(out), dropped, id_source


def _absent_attribute(name, policy, path, why, n, dropped):
    if policy == "error":
        raise DvmapError(
            f"{path}: attribute {name!r}: {why}; set data.absent_attributes to 'not-answered' or 'drop' "
            f"for it (--absent-attributes)"
        )
    log.warning("%s: attribute %r: %s; policy %s", path, name, why, policy)
    if policy == "drop":
        dropped.add(name)
    return np.full(n, NOT_ANSWERED, dtype=object)


def file_labels(paths: list[Path]) -> list[str]:
    """The file part of generated respondent ids (``{label}-{row}``, for a file without the id column): the file's
    stem, with as many parent folders as it takes to tell apart inputs whose stems are the same (``a/wvs``,
    ``b/wvs``), and the full name where only the suffix differs (``wvs.sav``, ``wvs.dta``). A file's label depends
    only on the inputs sharing its stem, not on their order, so the ids of a single file or of differently named
    files are the stems, as they always were. The same file listed twice keeps one label (its ids then collide, and
    the duplicate-id check reports it)."""
    resolved = [Path(os.path.abspath(p)) for p in paths]
    labels = [p.stem for p in resolved]
    for stem in {s for s in labels if labels.count(s) > 1}:
        group = [i for i, s in enumerate(labels) if s == stem]
        distinct = len({resolved[i] for i in group})
        deepest = max(len(resolved[i].parts) for i in group)
        tails = _distinct_tails(resolved, group, distinct, deepest, suffix=False)
        tails = tails or _distinct_tails(resolved, group, distinct, deepest, suffix=True)
        for i in group:
            labels[i] = tails[i]
    return labels


def _distinct_tails(paths: list[Path], group: list[int], distinct: int, deepest: int, suffix: bool):
    """The shortest path tails (last folders and the file name, with or without its suffix) that tell the files of
    ``group`` apart, or None."""
    for depth in range(1, deepest + 1):
        tails = {i: "/".join((paths[i] if suffix else paths[i].with_suffix("")).parts[-depth:]).lstrip("/")
                 for i in group}
        if len(set(tails.values())) == distinct:
            return tails
    return None


def _respondent_ids(data: pd.DataFrame, path: Path, label: str, id_column: str | None) -> np.ndarray:
    if id_column:
        ids = data[id_column]
        if ids.isna().any():
            raise DvmapError(f"{path}: column {id_column} (respondent id) has missing values")
        return np.array([f"{int(v)}" if isinstance(v, float) and v.is_integer() else str(v) for v in ids], dtype=object)
    return np.array([f"{label}-{i:06d}" for i in range(1, len(data) + 1)], dtype=object)


def _check_unique_ids(frames: list[pd.DataFrame], paths: list[Path], id_sources: list[str],
                      id_column: str | None) -> None:
    """Respondent ids are unique over all inputs; the error names each involved file with where its ids came from
    (its id column, or generated from the file label and row for a file that lacks that column)."""
    ids = pd.concat([f["respondent_id"] for f in frames], ignore_index=True)
    owner = np.repeat(np.arange(len(frames)), [len(f) for f in frames])
    duplicated = ids.duplicated(keep=False).to_numpy()
    if duplicated.any():
        shown = ids[duplicated].unique()[:5].tolist()
        involved = sorted(set(owner[duplicated].tolist()))
        files = "; ".join(f"{paths[i]} ({id_sources[i]})" for i in involved)
        listed_twice = sorted({str(paths[i]) for i in involved
                               if sum(os.path.abspath(p) == os.path.abspath(paths[i]) for p in paths) > 1})
        hint = (f"data.inputs lists {', '.join(listed_twice)} more than once" if listed_twice else
                f"set data.id_column (--id-column) to a column that is unique across the files (now "
                f"{id_column or 'none'})")
        raise DvmapError(
            f"duplicate respondent ids in {files}: {', '.join(shown)} "
            f"({int(ids.duplicated().sum())} duplicates); {hint}"
        )


def _recode(values: pd.Series, question: Question, where: str) -> pd.Categorical:
    """Answer labels as a categorical whose categories are the question's options, in order."""
    missing = values.isna()
    present = values[~missing]
    if not pd.api.types.is_numeric_dtype(present):
        unknown = sorted(set(present.astype(str)) - set(question.options))
        if unknown:
            raise DvmapError(f"{where}: answers {unknown[:5]} are not options of {question.id}")
        labels = present.astype(str)
    else:
        codes = present.astype(float)
        recode = {float(k): v for k, v in question.recode.items()}
        unknown = sorted(set(codes.unique()) - set(recode))
        if unknown:
            shown = [int(c) if float(c).is_integer() else c for c in unknown[:5]]
            raise DvmapError(f"{where}: codes {shown} have no label in the catalog's recode for {question.id}")
        labels = codes.map(recode)
    out = np.full(len(values), None, dtype=object)
    out[~missing.to_numpy()] = labels.to_numpy()
    return pd.Categorical(out, categories=question.options)
