"""The tables the stages pass to each other — their columns and kinds —, the split names and the predictor name.

Every command reads each input table with :func:`read_checked`, which checks it against the schema it needs before
any work is done (:func:`check_table`), so a table of another stage, or an empty one, is an error that names the file,
what the table looks like, what is missing, and the command that writes the right table. TSV tables (diagnostics,
evaluation summaries and breakdowns, train logs) have schemas here too.
"""


from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from . import ATTRIBUTES
from .errors import DvmapError
from .io import read_parquet, read_table, read_tsv

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
                      "options", "answer", "answer_index", "prediction", "prediction_index", "option_probs",
                      "raw_output", "fallback")
#: Columns score mode adds to a prediction table: per option, the reply's summed and per-token log-probability.
SCORE_COLUMNS = ("option_logprob_sum", "option_logprob_mean")
#: Columns of archetype statistics besides the attributes.
STAT_COLUMNS = ("profile_id", "question_id", "n", "counts", "answer", "answer_share", "entropy")
#: DVMap's released corpus (train/dev/test.parquet and the Cross-* benchmark folders).
RELEASE_COLUMNS = ("Q_id", *ATTRIBUTES, "frequency", "Category", "Question", "prompt", "Options", "answer")
#: The respondents' --dropped-report: per country and required attribute, respondents and how many lacked it.
DROPPED_COLUMNS = ("country", "attribute", "respondents", "dropped")
#: Filter diagnostics of one threshold (a tidy table).
DIAGNOSTIC_COLUMNS = ("section", "key", "country", "category", "metric", "value")
#: Metrics of an evaluation (dvmap/evaluation/metrics.py): the predicted labels', then the predicted distributions'
#: (option_probs, else the point mass on the prediction; jsd, profile_wasserstein and representativeness against the
#: respondents' counts); the paired accuracy difference against the reference predictor (the national label).
METRICS = ("accuracy", "likert_consistency", "wasserstein", "unparseable_rate", "expected_accuracy", "brier", "ece",
           "jsd", "profile_wasserstein", "representativeness")
PAIRED = "accuracy_vs_national_label"
#: The paired difference of a trained model with its base model on the same items (``dvmap evaluate --base``).
BASE_PAIRED = "accuracy_vs_base"
#: Which predictor on which split: the keys of evaluation summary and breakdown rows.
EVALUATION_KEYS = ("predictor", "model", "threshold", "seed", "split")
#: Summary columns, in order (``_sd`` columns follow on rows across seeds).
SUMMARY_COLUMNS = (*EVALUATION_KEYS, "protocol", "bootstrap_unit", "n_items", "fallback_rate",
                   *(f"{m}{s}" for m in (*METRICS, PAIRED) for s in ("", "_ci_low", "_ci_high")), "reference",
                   *(f"{BASE_PAIRED}{s}" for s in ("", "_ci_low", "_ci_high")), "base")
BREAKDOWN_COLUMNS = (*EVALUATION_KEYS, "protocol", "bootstrap_unit", "group_type", "group", "n_items", "metric",
                     "value", "ci_low", "ci_high")
#: GRPO train-log columns, from TRL's metric names; TensorBoard (``tensorboard/`` in the model folder) has all metrics.
LOG_COLUMNS = {"step": "step", "epoch": "epoch", "reward": "reward_mean", "reward_std": "reward_std", "kl": "kl",
               "completions/mean_length": "completion_length", "rewards/accuracy/mean": "train_accuracy",
               "eval_reward": "dev_reward", "eval_rewards/accuracy/mean": "dev_accuracy", "loss": "loss",
               "grad_norm": "grad_norm", "learning_rate": "learning_rate", "entropy": "entropy",
               "step_time": "step_time", "num_tokens": "num_tokens",
               "dev_score_accuracy": "dev_score_accuracy", "dev_expected_accuracy": "dev_expected_accuracy"}

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
    other = set(ITEM_COLUMNS) | set(EXTRA_COLUMNS) | set(PROMPT_COLUMNS) | set(PREDICTION_COLUMNS) | set(SCORE_COLUMNS)
    return known + [c for c in frame.columns if c not in known and c not in other]


@dataclass(frozen=True)
class Schema:
    """A table kind: the columns it must have, the command that writes it, and whether it is a TSV (else parquet)."""

    name: str
    columns: tuple[str, ...]
    written_by: str
    tsv: bool = False


RESPONDENTS = Schema("a respondents table", ("respondent_id", "Country"), "dvmap respondents")
STATS = Schema("archetype statistics", ("Country", *STAT_COLUMNS), "dvmap archetype-stats")
ARCHETYPES = Schema("archetypes of one threshold", ("Country", *STAT_COLUMNS), "dvmap archetypes")
ASSIGNMENT = Schema("a profile assignment", ("profile_id", "Country", "split"), "dvmap split")
ITEMS = Schema("an item table (corpus or benchmark split)", ("Country", *ITEM_COLUMNS), "dvmap split / corpus")
FLIPPED = Schema("flipped items", (*ITEMS.columns, "source_item_id"), "dvmap flip-items")
PROMPTS = Schema("a prompt corpus", (*PROMPT_COLUMNS, "Country", *ITEM_COLUMNS), "dvmap prompts")
PREDICTIONS = Schema("a prediction table", PREDICTION_COLUMNS, "dvmap baseline / predict")
RELEASE = Schema("a part of DVMap's released corpus", RELEASE_COLUMNS, "DVMap's release")
DROPPED = Schema("a dropped-respondents report", DROPPED_COLUMNS, "dvmap respondents --dropped-report", tsv=True)
DIAGNOSTICS = Schema("filter diagnostics", DIAGNOSTIC_COLUMNS, "dvmap diagnostics", tsv=True)
SUMMARY = Schema("an evaluation summary", SUMMARY_COLUMNS, "dvmap evaluate / summary", tsv=True)
BREAKDOWN = Schema("an evaluation breakdown", BREAKDOWN_COLUMNS, "dvmap evaluate --breakdown / summary", tsv=True)
TRAIN_LOG = Schema("a GRPO train log", ("step", LOG_COLUMNS["reward"]), "dvmap train --log", tsv=True)
#: Most specific first: how :func:`describe` names a table that is not the expected one.
KNOWN = (PREDICTIONS, PROMPTS, FLIPPED, ITEMS, STATS, ASSIGNMENT, RESPONDENTS, RELEASE, SUMMARY, BREAKDOWN,
         DIAGNOSTICS, DROPPED, TRAIN_LOG)


def describe(columns) -> str:
    """What a table with these columns looks like: the first known schema it satisfies, else 'an unknown table'."""
    present = set(columns)
    return next((s.name for s in KNOWN if set(s.columns) <= present), "a table of unknown kind")


def check_table(table: pd.DataFrame | pa.Table, schema: Schema, where, command: str, allow_empty: bool = False
                ) -> None:
    """Raise a DvmapError naming ``where`` when ``table`` lacks a column of ``schema`` or has no row."""
    if isinstance(table, pa.Table):
        _check_shape(table.column_names, table.num_rows, schema, where, command, allow_empty)
    else:
        _check_shape(list(table.columns), len(table), schema, where, command, allow_empty)


def check_parquet(path, schema: Schema, command: str) -> None:
    """:func:`check_table` for a parquet file from its footer alone, without reading its rows."""
    try:
        metadata = pq.ParquetFile(path).metadata
    except (OSError, pa.ArrowException) as exc:
        raise DvmapError(f"{path}: cannot read parquet ({exc})") from exc
    _check_shape(metadata.schema.to_arrow_schema().names, metadata.num_rows, schema, path, command, False)


def _check_shape(columns: list[str], rows: int, schema: Schema, where, command: str, allow_empty: bool) -> None:
    missing = [c for c in schema.columns if c not in columns]
    if missing:
        raise DvmapError(f"{where} is {describe(columns)}; `dvmap {command}` needs {schema.name} (missing: "
                         f"{', '.join(missing)}); {schema.written_by} writes it")
    if not rows and not allow_empty:
        raise DvmapError(f"{where}: {schema.name} with no row; `dvmap {command}` needs at least one")


def read_checked(path, schema: Schema, command: str, allow_empty: bool = False, arrow: bool = False
                 ) -> pd.DataFrame | pa.Table:
    """The table at ``path`` (TSV or parquet, as ``schema`` says; an Arrow table if ``arrow``), checked against
    ``schema`` for ``dvmap command`` (:func:`check_table`)."""
    if schema.tsv:
        table = read_tsv(path)
    else:
        table = read_table(path) if arrow else read_parquet(path)
    check_table(table, schema, path, command, allow_empty)
    return table
