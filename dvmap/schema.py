"""The tables the stages pass to each other — their columns and kinds —, the split names and the predictor name.

Every command checks each input table against the schema it needs before doing any work
(:func:`check_table`), so a table of another stage, or an empty one, is an error that names the file, what the
table looks like, what is missing, and the command that writes the right table.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pyarrow as pa

from . import ATTRIBUTES
from .errors import DvmapError

CORPUS_SPLITS = ("train", "dev", "test")
BENCHMARK_SPLITS = ("cross_demographic", "cross_country", "cross_value")
#: The profile-level partition of the seen countries' profiles (config splits.fractions).
PARTITIONS = CORPUS_SPLITS + ("cross_demographic",)
#: The split of counterfactually flipped items.
FLIP_SPLIT = "flip"
#: The split of profiles whose country is neither a corpus country nor held out (splits.corpus_countries).
UNUSED = "unused"

#: Columns every item table (corpus and benchmark) has, in order, after the profile attributes.
ITEM_COLUMNS = ("item_id", "profile_id", "question_id", "category", "question", "options", "answer", "answer_index",
                "n", "entropy", "frequency", "split", "data_source")
#: Optional columns an item table may carry: counts from archetypes, DVMap's own prompt from an imported release,
#: the original of a counterfactually flipped item.
EXTRA_COLUMNS = ("counts", "answer_share", "release_prompt", "source_item_id")
#: Columns a prompt corpus adds to its items.
PROMPT_COLUMNS = ("prompt", "style")
#: Columns of a prediction table, before the item's attributes.
PREDICTION_COLUMNS = ("item_id", "predictor", "model", "threshold", "seed", "split", "question_id", "category",
                      "options", "answer", "answer_index", "prediction", "prediction_index", "raw_output", "fallback")
#: Columns of archetype statistics besides the attributes.
STAT_COLUMNS = ("profile_id", "question_id", "n", "counts", "answer", "answer_share", "entropy")
#: DVMap's released corpus (train/dev/test.parquet and the Cross-* benchmark folders).
RELEASE_COLUMNS = ("Q_id", *ATTRIBUTES, "frequency", "Category", "Question", "prompt", "Options", "answer")

#: A predictor's folder name under results/predictions/: model, training threshold, seed.
PREDICTOR = "{model}.tau~{tau}.seed~{seed}"


def predictor_name(model: str, threshold: str, seed: int | None) -> str:
    """Folder name of one predictor, e.g. ``gbt.tau~0.0.seed~0`` (no seed part when ``seed`` is None)."""
    name = PREDICTOR.format(model=model, tau=threshold, seed=seed)
    return name if seed is not None else name.rpartition(".seed~")[0]


def attribute_columns(frame: pd.DataFrame) -> list[str]:
    """Profile attribute columns of an item, prompt or prediction table: DVMap's, in DVMap's order, then any
    custom ones."""
    known = [a for a in ATTRIBUTES if a in frame.columns]
    other = set(ITEM_COLUMNS) | set(EXTRA_COLUMNS) | set(PROMPT_COLUMNS) | set(PREDICTION_COLUMNS)
    return known + [c for c in frame.columns if c not in known and c not in other]


@dataclass(frozen=True)
class Schema:
    """A table kind: the columns it must have and the command that writes it."""

    name: str
    columns: tuple[str, ...]
    written_by: str


RESPONDENTS = Schema("a respondents table", ("respondent_id", "Country"), "dvmap respondents")
STATS = Schema("archetype statistics", ("Country", *STAT_COLUMNS), "dvmap archetype-stats")
ARCHETYPES = Schema("archetypes of one threshold", ("Country", *STAT_COLUMNS), "dvmap archetypes")
ASSIGNMENT = Schema("a profile assignment", ("profile_id", "Country", "split"), "dvmap split")
ITEMS = Schema("an item table (corpus or benchmark split)", ("Country", *ITEM_COLUMNS), "dvmap split / corpus")
PROMPTS = Schema("a prompt corpus", (*PROMPT_COLUMNS, "Country", *ITEM_COLUMNS), "dvmap prompts")
PREDICTIONS = Schema("a prediction table", PREDICTION_COLUMNS, "dvmap baseline / predict")
RELEASE = Schema("a part of DVMap's released corpus", RELEASE_COLUMNS, "DVMap's release")
#: Most specific first: how :func:`describe` names a table that is not the expected one.
KNOWN = (PREDICTIONS, PROMPTS, ITEMS, STATS, ASSIGNMENT, RESPONDENTS, RELEASE)


def describe(columns) -> str:
    """What a table with these columns looks like: the first known schema it satisfies, else 'an unknown table'."""
    present = set(columns)
    return next((s.name for s in KNOWN if set(s.columns) <= present), "a table of unknown kind")


def check_table(table: pd.DataFrame | pa.Table, schema: Schema, where, command: str, allow_empty: bool = False
                ) -> None:
    """Raise a DvmapError naming ``where`` when ``table`` lacks a column of ``schema`` or has no row."""
    columns = table.column_names if isinstance(table, pa.Table) else list(table.columns)
    missing = [c for c in schema.columns if c not in columns]
    if missing:
        raise DvmapError(f"{where} is {describe(columns)}; `dvmap {command}` needs {schema.name} (missing: "
                         f"{', '.join(missing)}); {schema.written_by} writes it")
    rows = table.num_rows if isinstance(table, pa.Table) else len(table)
    if not rows and not allow_empty:
        raise DvmapError(f"{where}: {schema.name} with no row; `dvmap {command}` needs at least one")
