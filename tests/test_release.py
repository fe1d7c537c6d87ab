"""Importing DVMap's released corpus (parquet + save_to_disk folders) and exporting item tables back."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.ipc
import pyarrow.parquet as pq
import pytest

from dvmap import ATTRIBUTES
from dvmap.survey.archetypes import archetype_stats, select_archetypes
from dvmap.survey.attribute_map import load_attribute_map
from dvmap.survey.catalog import Question, load_catalog
from dvmap.cli import main
from dvmap.errors import DvmapError
from dvmap.io import write_parquet
from dvmap.corpus.prompts import prompt_corpus
from dvmap.corpus.release import (
    RELEASE_COLUMNS,
    dvmap_verl_layout,
    export_release,
    import_part,
    parse_options,
    read_release,
)
from dvmap.survey.respondents import build_respondents
from dvmap.corpus.splits import assign_profiles, corpus_items
from dvmap.survey.synth import write_synthetic_sav

from .conftest import RELEASE

RELEASE_DIR = RELEASE
DEV_PARQUET = RELEASE_DIR / "dev.parquet"
SCHEMA_DIR = RELEASE_DIR / "benchmark_schema"

# --------------------------------------------------------------------------------------------------------------
# Helpers and fixtures
# --------------------------------------------------------------------------------------------------------------

PROFILE_A = {"Country": "United States of America", "Gender": "Female", "Marital Status": "Married",
             "Has Children": "has at least one child", "Education Level": "Bachelor or equivalent (ISCED 6)",
             "Occupation": "Self employed", "Work Nature": "Private business or industry",
             "Religion": "Protestant", "Life Stage": "Middle Adulthood", "Income Bracket": "Middle income",
             "Common Language": "English"}
PROFILE_B = {**PROFILE_A, "Gender": "Male", "Marital Status": "Single"}
PROFILE_C = {**PROFILE_A, "Religion": "Not Answered", "Income Bracket": "High income"}
PROFILE_D = {**PROFILE_A, "Country": "Japan", "Common Language": "Japanese", "Religion": "Buddhist"}


def md5_id(profile: dict) -> str:
    return hashlib.md5("\x1f".join(profile[a] for a in ATTRIBUTES).encode()).hexdigest()[:12]


def release_rows(catalog, pairs, data_source: str | None = None) -> pd.DataFrame:
    """DVMap-layout rows for (profile, question id, answer index, frequency) tuples."""
    rows = []
    for profile, qid, answer_index, frequency in pairs:
        q = catalog[qid]
        rows.append({"Q_id": qid, **profile, "frequency": frequency, "Category": q.section, "Question": q.text,
                     "prompt": f"You are a {profile['Gender']} from {profile['Country']}. {q.text}",
                     "Options": ", ".join(q.options), "answer": q.options[answer_index]})
    frame = pd.DataFrame(rows, columns=RELEASE_COLUMNS)
    if data_source is not None:
        frame["data_source"] = data_source
    return frame


def dataset_info(schema: pa.Schema) -> dict:
    """dataset_info.json as datasets writes it; the features of the real release's schema folder when present."""
    folder = SCHEMA_DIR / "Cross-Demographic" / "dataset_info.json"
    if folder.exists():
        return json.loads(folder.read_text())
    features = {f.name: {"dtype": "float64" if pa.types.is_floating(f.type) else "string", "_type": "Value"}
                for f in schema}
    return {"citation": "", "description": "", "features": features, "homepage": "", "license": ""}


def write_saved_dataset(folder: Path, frame: pd.DataFrame, shards: int = 1) -> None:
    """A datasets.save_to_disk folder: Arrow IPC *stream* shards named in state.json, plus dataset_info.json."""
    folder.mkdir(parents=True)
    schema = pa.schema([(c, pa.float64() if c == "frequency" else pa.string()) for c in frame.columns])
    table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False).replace_schema_metadata(None)
    step = -(-len(frame) // shards)
    names = []
    for i in range(shards):
        name = f"data-{i:05d}-of-{shards:05d}.arrow"
        with pa.OSFile(str(folder / name), "wb") as sink, pyarrow.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table.slice(i * step, step))
        names.append(name)
    (folder / "state.json").write_text(json.dumps({
        "_data_files": [{"filename": n} for n in names], "_fingerprint": "0123456789abcdef",
        "_format_columns": None, "_format_kwargs": {}, "_format_type": None, "_output_all_columns": False,
        "_split": None}, indent=2))
    (folder / "dataset_info.json").write_text(json.dumps(dataset_info(table.schema), indent=2))


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


@pytest.fixture(scope="module")
def release_parts(catalog):
    """A small leak-free release: train (A, B), Cross-Demographic (C), Cross-Country (D, Japan), Cross-Value
    (held-out question Q121 for A and C)."""
    return {
        "train": release_rows(catalog, [(PROFILE_A, "Q1", 0, 1.0), (PROFILE_A, "Q2", 1, 0.5),
                                        (PROFILE_B, "Q1", 0, 1.0), (PROFILE_B, "Q2", 2, 0.5)], "wvs"),
        "Cross-Demographic": release_rows(catalog, [(PROFILE_C, "Q1", 1, 1.0), (PROFILE_C, "Q2", 0, 1.0)]),
        "Cross-Country": release_rows(catalog, [(PROFILE_D, "Q1", 0, 1.0), (PROFILE_D, "Q2", 3, 1.0),
                                                (PROFILE_D, "Q46", 1, 1.0)]),
        "Cross-Value": release_rows(catalog, [(PROFILE_A, "Q121", 2, 0.5), (PROFILE_C, "Q121", 4, 0.5)]),
    }


@pytest.fixture()
def release_dir(tmp_path, release_parts) -> Path:
    root = tmp_path / "release"
    root.mkdir()
    release_parts["train"].to_parquet(root / "train.parquet", index=False)
    for folder in ("Cross-Demographic", "Cross-Country", "Cross-Value"):
        write_saved_dataset(root / folder, release_parts[folder], shards=2 if folder == "Cross-Country" else 1)
    return root


def files_under(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file()) if path.exists() else []


# --------------------------------------------------------------------------------------------------------------
# The real release's dev split round-trips
# --------------------------------------------------------------------------------------------------------------

@pytest.mark.skipif(not DEV_PARQUET.exists(), reason=f"{DEV_PARQUET} not present")
def test_dev_parquet_round_trip(catalog):
    original = pd.read_parquet(DEV_PARQUET)
    items = import_part(original, "dev", catalog, "dev")
    assert len(items) == len(original)
    assert (items["split"] == "dev").all()
    back = export_release(items)
    assert list(back.columns) == list(original.columns)
    # values must match exactly; only a string-dtype flavour difference (object vs str) would be tolerated
    for column in original.columns:
        if pd.api.types.is_string_dtype(original[column]) and pd.api.types.is_string_dtype(back[column]):
            assert back[column].map(type).eq(str).all(), column
            back[column] = back[column].astype(original[column].dtype)
    pd.testing.assert_frame_equal(back, original, check_exact=True)


@pytest.mark.skipif(not DEV_PARQUET.exists(), reason=f"{DEV_PARQUET} not present")
def test_dev_parquet_import_fields(catalog):
    original = pd.read_parquet(DEV_PARQUET)
    items = import_part(original, "dev", catalog, "dev")
    assert all(type(o) is list for o in items["options"])
    assert all(", ".join(o) == s for o, s in zip(items["options"], original["Options"]))
    for qid, options in zip(items["question_id"], items["options"]):
        if qid in catalog:
            assert options == list(catalog[qid].options)
    assert all(o[i] == a for o, i, a in zip(items["options"], items["answer_index"], items["answer"]))
    assert list(items["release_prompt"]) == list(original["prompt"])
    assert list(items["question_id"]) == list(original["Q_id"])
    expected_ids = [md5_id(dict(zip(ATTRIBUTES, values))) for values in original[list(ATTRIBUTES)].itertuples(index=False)]
    assert list(items["profile_id"]) == expected_ids
    assert list(items["item_id"]) == [f"{p}:{q}" for p, q in zip(expected_ids, original["Q_id"])]


# --------------------------------------------------------------------------------------------------------------
# Import through the CLI
# --------------------------------------------------------------------------------------------------------------

def test_read_release_reads_stream_folders(release_dir, release_parts):
    parts = read_release(release_dir)
    assert set(parts) == {"train", "cross_demographic", "cross_country", "cross_value"}
    for folder, name in (("Cross-Demographic", "cross_demographic"), ("Cross-Country", "cross_country"),
                         ("Cross-Value", "cross_value")):
        pd.testing.assert_frame_equal(parts[name].astype(object), release_parts[folder].astype(object))


def test_cli_import_release(tmp_path, release_dir, release_parts):
    corpus_dir, bench_dir = tmp_path / "corpus", tmp_path / "bench"
    rc = main(["-q", "import-release", str(release_dir), "--corpus-dir", str(corpus_dir),
               "--benchmark-dir", str(bench_dir), "--require", "train"])
    assert rc == 0
    assert files_under(corpus_dir) == ["train.parquet"]
    assert files_under(bench_dir) == ["cross_country.parquet", "cross_demographic.parquet", "cross_value.parquet"]
    expected = {corpus_dir / "train.parquet": ("train", "train"),
                bench_dir / "cross_demographic.parquet": ("cross_demographic", "Cross-Demographic"),
                bench_dir / "cross_country.parquet": ("cross_country", "Cross-Country"),
                bench_dir / "cross_value.parquet": ("cross_value", "Cross-Value")}
    for path, (split, part) in expected.items():
        items = pd.read_parquet(path)
        source = release_parts[part]
        assert len(items) == len(source), path
        assert (items["split"] == split).all(), path
        assert list(items["question_id"]) == list(source["Q_id"])  # release row order is kept
        assert list(items["answer"]) == list(source["answer"])
        assert list(items["frequency"]) == list(source["frequency"])
        assert list(items["release_prompt"]) == list(source["prompt"])
        assert [list(o) for o in items["options"]] == [s.split(", ") for s in source["Options"]]
        assert list(items["profile_id"]) == [md5_id(dict(zip(ATTRIBUTES, v)))
                                            for v in source[list(ATTRIBUTES)].itertuples(index=False)]
        # exporting the imported table gives the release rows back
        back = export_release(items, with_data_source="data_source" in source)
        pd.testing.assert_frame_equal(back.astype({"frequency": float}).astype(object), source.astype(object))
    train = pd.read_parquet(corpus_dir / "train.parquet")
    assert (train["data_source"] == "wvs").all()
    assert (pd.read_parquet(bench_dir / "cross_value.parquet")["data_source"] == "dvmap_release").all()


def test_cli_require_missing_part_fails_and_writes_nothing(tmp_path, release_dir, capsys):
    corpus_dir, bench_dir = tmp_path / "corpus", tmp_path / "bench"
    rc = main(["import-release", str(release_dir), "--corpus-dir", str(corpus_dir),
               "--benchmark-dir", str(bench_dir), "--require", "train", "test"])
    assert rc != 0
    assert "'test'" in capsys.readouterr().err
    assert files_under(corpus_dir) == [] and files_under(bench_dir) == []


def test_cli_bad_answer_fails_and_writes_nothing(tmp_path, release_dir, release_parts, capsys):
    bad = release_parts["train"].copy()
    bad.loc[2, "answer"] = "Bogus"
    bad.to_parquet(release_dir / "train.parquet", index=False)
    corpus_dir, bench_dir = tmp_path / "corpus", tmp_path / "bench"
    rc = main(["import-release", str(release_dir), "--corpus-dir", str(corpus_dir), "--benchmark-dir", str(bench_dir)])
    assert rc != 0
    err = capsys.readouterr().err
    assert "row 2" in err and "'Bogus'" in err and "train" in err
    assert files_under(corpus_dir) == [] and files_under(bench_dir) == []


def test_cli_unreadable_saved_dataset(tmp_path, release_dir, capsys):
    (release_dir / "Cross-Value" / "state.json").unlink()
    rc = main(["import-release", str(release_dir), "--benchmark-dir", str(tmp_path / "bench")])
    assert rc != 0
    assert "Cross-Value" in capsys.readouterr().err
    assert files_under(tmp_path / "bench") == []


def test_cli_leaky_release_fails(tmp_path, release_dir, release_parts, catalog):
    leaky = pd.concat([release_parts["train"], release_rows(catalog, [(PROFILE_C, "Q3", 0, 1.0)], "wvs")],
                      ignore_index=True)  # profile C is also in Cross-Demographic
    leaky.to_parquet(release_dir / "train.parquet", index=False)
    rc = main(["-q", "import-release", str(release_dir), "--corpus-dir", str(tmp_path / "corpus")])
    assert rc != 0
    assert files_under(tmp_path / "corpus") == []


# --------------------------------------------------------------------------------------------------------------
# import_part errors and option parsing
# --------------------------------------------------------------------------------------------------------------

def test_answer_not_among_options_names_the_row(catalog, release_parts):
    frame = release_parts["Cross-Country"].copy()
    frame.loc[1, "answer"] = "Somewhat"
    with pytest.raises(DvmapError, match=r"xc-part: row 1: answer 'Somewhat' is not among its options"):
        import_part(frame, "cross_country", catalog, "xc-part")


def test_missing_release_columns(catalog, release_parts):
    with pytest.raises(DvmapError, match=r"where is .*; `dvmap import-release` needs a part of DVMap's released "
                                         r"corpus \(missing: Options\)"):
        import_part(release_parts["Cross-Value"].drop(columns=["Options"]), "cross_value", catalog, "where")


COMMA = Question("QC", "MIGRATION", "Impact of immigrants?",
                 ("Very bad", "Quite bad", "Neither good, nor bad", "Quite good", "Very good"),
                 {1: "Very bad", 2: "Quite bad", 3: "Neither good, nor bad", 4: "Quite good", 5: "Very good"})


def test_parse_options_with_comma_inside_an_option(catalog):
    q121 = catalog.get("Q121")
    if q121 is not None and any("," in o for o in q121.options):
        question = q121
    else:
        question = COMMA
    joined = ", ".join(question.options)
    assert parse_options(joined, question) == list(question.options)
    assert parse_options(joined, None) != list(question.options)  # naive splitting cannot recover it
    assert parse_options("Yes, No", None) == ["Yes", "No"]
    # a catalog entry whose options do not join to the string does not override it
    assert parse_options("Low, High", question) == ["Low", "High"]


def test_import_with_comma_option_round_trips(catalog):
    cat = {**catalog, COMMA.id: COMMA}
    frame = release_rows(cat, [(PROFILE_A, "QC", 2, 0.75), (PROFILE_B, "QC", 4, 0.25)], "wvs")
    items = import_part(frame, "train", cat, "comma")
    assert list(items["options"].iloc[0]) == list(COMMA.options)
    assert list(items["answer"]) == ["Neither good, nor bad", "Very good"]
    assert list(items["answer_index"]) == [2, 4]
    pd.testing.assert_frame_equal(export_release(items).astype(object), frame.astype(object))


# --------------------------------------------------------------------------------------------------------------
# dvmap's own items -> release layout -> back
# --------------------------------------------------------------------------------------------------------------

def test_export_then_import_own_corpus(tmp_path, catalog):
    sav = tmp_path / "survey.sav"
    write_synthetic_sav(sav, catalog, respondents_per_country=60, n_countries=2, seed=5)
    respondents = build_respondents([sav], catalog, load_attribute_map())
    stats_path = tmp_path / "stats.parquet"
    pq.write_table(archetype_stats(respondents, catalog), stats_path)
    stats = pq.read_table(stats_path)
    assignment = assign_profiles(stats, {"train": 0.8, "dev": 0.1, "test": 0.0, "cross_demographic": 0.1}, [], 1)
    train = corpus_items(select_archetypes(stats, 1.0), assignment, catalog, [], "wvs", "1.0")["train"]
    exported = export_release(train)
    assert list(exported.columns) == [*RELEASE_COLUMNS, "data_source"]
    assert (exported["prompt"] == "").all()
    back = import_part(exported, "train", catalog, "own")
    for column in ("item_id", "profile_id", "question_id", *ATTRIBUTES, "answer", "answer_index", "frequency",
                   "category", "question", "split", "data_source"):
        assert list(back[column]) == list(train[column]), column
    assert [list(o) for o in back["options"]] == [list(o) for o in train["options"]]


# --------------------------------------------------------------------------------------------------------------
# The export DVMap's veRL fork trains on
# --------------------------------------------------------------------------------------------------------------

@pytest.mark.skipif(not DEV_PARQUET.exists(), reason=f"{DEV_PARQUET} not present")
@pytest.mark.parametrize("style", ["release", "structured_cot"])
def test_dvmap_verl_export_has_the_released_schema(tmp_path, catalog, style):
    """Same column names in the same order and the same Arrow types as the released dev.parquet, apart from
    Options (a list of strings); prompt is the user message (the fork adds its own system message)."""
    released = pq.read_schema(DEV_PARQUET)
    original = pd.read_parquet(DEV_PARQUET).head(300)
    corpus = prompt_corpus(import_part(original, "dev", catalog, "dev"), style)
    path = tmp_path / "dev.parquet"
    write_parquet(dvmap_verl_layout(corpus), path)
    schema = pq.read_schema(path)
    assert schema.names == released.names
    for field in released:
        exported = schema.field(field.name).type
        if field.name == "Options":
            assert pa.types.is_list(exported) and exported.value_type == pa.string(), exported
        else:
            assert exported == field.type, (field.name, exported, field.type)
    back = pd.read_parquet(path)
    assert [list(o) for o in back["Options"]] == [s.split(", ") for s in original["Options"]]
    users = [p[1]["content"] for p in corpus["prompt"]]
    assert back["prompt"].tolist() == users
    if style == "release":  # the release's own prompt text comes back unchanged
        assert back["prompt"].tolist() == original["prompt"].tolist()
    for column in ("Q_id", *ATTRIBUTES, "frequency", "Category", "Question", "answer", "data_source"):
        assert back[column].tolist() == original[column].tolist(), column
    # what the fork's reward manager reads from each row: the answer among the options, and a float frequency
    row = pq.read_table(path).slice(0, 1).to_pylist()[0]
    assert row["answer"] in row["Options"] and isinstance(row["frequency"], float)


def test_cli_prompts_writes_the_fork_export(tmp_path, release_dir):
    corpus_dir = tmp_path / "corpus"
    assert main(["-q", "import-release", str(release_dir), "--corpus-dir", str(corpus_dir)]) == 0
    train = corpus_dir / "train.parquet"
    assert main(["-q", "prompts", str(train), "--style", "direct", "-o", str(tmp_path / "direct"),
                 "--dvmap-verl-dir", str(tmp_path / "fork")]) == 0
    table = pq.read_table(tmp_path / "fork" / "train.parquet")
    assert table.schema.names == [*RELEASE_COLUMNS, "data_source"]
    assert table.schema.field("Options").type == pa.list_(pa.string())
    assert table.schema.field("frequency").type == pa.float64()
    assert all(table.schema.field(c).type == pa.string()
               for c in table.schema.names if c not in ("Options", "frequency"))
    corpus = pd.read_parquet(tmp_path / "direct" / "train.parquet")
    rows = table.to_pylist()
    assert [r["prompt"] for r in rows] == [p[1]["content"] for p in corpus["prompt"]]
    assert [r["Options"] for r in rows] == [list(o) for o in corpus["options"]]
    assert [r["answer"] for r in rows] == corpus["answer"].tolist()
    # export-release --dvmap-verl writes the same file from the prompt corpus
    assert main(["-q", "export-release", str(tmp_path / "direct" / "train.parquet"), "--dvmap-verl",
                 "-o", str(tmp_path / "again.parquet")]) == 0
    assert pq.read_table(tmp_path / "again.parquet").equals(table)


def test_fork_export_needs_a_prompt_corpus(catalog, release_parts):
    items = import_part(release_parts["train"], "train", catalog, "train")
    with pytest.raises(DvmapError, match=r"\['prompt'\].*dvmap prompts"):
        dvmap_verl_layout(items)
