"""Prompt corpora and their veRL exports stay the same, to the byte, when built column-wise.

`prompt_corpus`, `verl_layout` and `dvmap_verl_layout` build their texts once per distinct value (persona per
profile, options per option list, a message per distinct combination of its placeholders, or by concatenating
columns where the template has plain placeholders) and their nested columns as Arrow arrays. Two kinds of evidence
that nothing changed:

- digests of their output on a fixed input (:func:`fixed_items`, a hand-built table with Not Answered values, a
  person with nothing known, a custom attribute with missing values, unicode, braces and commas in values and
  texts, option lists of 2 to 10 options) under this module's own wording (:data:`WORDING`, with plain
  placeholders, and :data:`FANCY`, with a conversion, format specs and literal braces), recorded from the
  row-by-row implementation that preceded the column-wise one;
- on the same input under the packaged wording, equality with a slow, row-by-row reference written here from the
  wording file's definition (:func:`reference_messages`), not from the production code.

How the digests were made: before prompts.py and release.py changed, the code of commit 22450a1 was exported
(``git archive 22450a1 | tar -x -C /tmp/old``) and :func:`digests` of this module was run with it first on the
path (``PYTHONPATH=/tmp/old``), on :func:`fixed_items` with :data:`WORDING` and :data:`FANCY` written by
:func:`wording_file`; its output was pasted into :data:`EXPECTED` (the working tree's unchanged code gave the
same). A digest is the SHA-256 of the JSON of the output table's rows (``pyarrow.Table.to_pylist`` after
``Table.from_pandas``, as `dvmap prompts` writes it) and of the Arrow types of the columns the function makes, so it
changes with any text, value or type of those columns, and not with the parquet writer's version.
"""

from __future__ import annotations

import hashlib
import json
import math

import pandas as pd
import pyarrow as pa
import pytest
import yaml

from dvmap import ATTRIBUTES, NOT_ANSWERED
from dvmap.corpus.prompts import load_templates, messages, personas, prompt_corpus, verl_layout
from dvmap.corpus.release import dvmap_verl_layout

#: Test-owned wording with plain placeholders (every placeholder used somewhere).
WORDING = {
    "option_line": "{number}) {option}",
    "persona": {
        "sentence": "Profile — {details}.",
        "unknown": "Nothing is known about you.",
        "separator": "; ",
        "default_phrase": "your {attribute} is {value}",
        "phrases": {"Country": "you live in {value}", "Gender": "gender {value}", "Life Stage": "age: {value}",
                    "Religion": "faith {{{value}}}"},
    },
    "styles": {
        "structured_cot": {"system": "Answer as this person; think in <reasoning></reasoning>, then <answer></answer>.",
                           "user": "{persona}\n[{category}] {question}\n{options}\nOr inline: {options_inline}."},
        "direct": {"system": "Section {category}: reply inside <answer></answer>.",
                   "user": "{persona}\n\nQuestion: {question}\nOptions:\n{options}\n"},
        "country_only": {"system": "Only the country is known.", "user": "{persona} {question} ({options_inline})"},
        "release": {"system": "Reason, then answer.", "user": "{release_prompt}"},
    },
}
#: The same with a conversion, format specs and literal braces in the messages.
FANCY = json.loads(json.dumps(WORDING))
FANCY["option_line"] = "{number:>3}. {option!r}"
FANCY["styles"]["direct"]["user"] = "{persona:>40}|{question!r}|{{literal}}|{options_inline:.30}|{category!s}"
FANCY["styles"]["release"]["user"] = "<<{release_prompt!s}>> {question:^60}"

QUESTIONS = [  # (id, category, text, options)
    ("Q1", "SOCIAL VALUES", "How important is family in your life?",
     ["Very important", "Rather important", "Not very important", "Not at all important"]),
    ("Q2", "TRUST", "Can most people be trusted — or {not}?", ["Most people can be trusted", "Need to be careful"]),
    ("Q3", "POLITICS", "Is democracy «good», “bad”, or neither?", ["Good", "Bad, mostly", "Neither"]),
    ("Q4", "WELL-BEING", "Rate your satisfaction", [str(i) for i in range(1, 11)]),
    ("Q5", "RELIGION", "How often do you pray?", ["Daily", "Weekly, or more", "Monthly", "Rarely", "Never"]),
]
VALUES = {
    "Country": ["Germany", "Japan", "Côte d'Ivoire", "Türkiye", "Mexico", NOT_ANSWERED],
    "Gender": ["Female", "Male", NOT_ANSWERED],
    "Marital Status": ["Married", "Single", "Divorced", NOT_ANSWERED],
    "Has Children": ["has no children", "has at least one child"],
    "Education Level": ["Primary education (ISCED 1)", "Bachelor or equivalent (ISCED 6)", NOT_ANSWERED],
    "Occupation": ["Student", "Self employed", "Retired/pensioned"],
    "Work Nature": ["Private business or industry", NOT_ANSWERED],
    "Religion": ["Buddhist", "{curly} faith", "Protestant; nfd", NOT_ANSWERED],
    "Life Stage": ["Young Adulthood", "Older Adulthood", "Middle Adulthood"],
    "Income Bracket": ["Low income", "Middle income", "High income"],
    "Common Language": ["German", "Japanese", "Français", NOT_ANSWERED],
}


def fixed_items() -> pd.DataFrame:
    """40 profiles x the questions each answers (about 160 items), in dvmap's item schema, plus a custom attribute
    ``Region`` (missing for some profiles) and DVMap's ``release_prompt``; every value is arithmetic on indices."""
    rows = []
    for p in range(40):
        profile = {a: values[(p * (i + 2) + p // 3) % len(values)] for i, (a, values) in enumerate(VALUES.items())}
        if p == 7:
            profile = {a: NOT_ANSWERED for a in ATTRIBUTES}  # nothing known about this one
        region = None if p % 5 == 0 else f"Region {p % 4}"
        for j, (qid, category, text, options) in enumerate(QUESTIONS):
            if (p + j) % 5 == 4:
                continue
            answer = (p * 7 + j * 3) % len(options)
            rows.append({"item_id": f"p{p:02d}:{qid}", "profile_id": f"p{p:02d}", **profile, "Region": region,
                         "question_id": qid, "category": category, "question": text, "options": list(options),
                         "answer": options[answer], "answer_index": answer, "n": float(1 + p % 3),
                         "entropy": 0.0, "frequency": (p % 7) / 7, "split": "train" if p % 6 else "dev",
                         "data_source": "synthetic",
                         "release_prompt": f"You are from {profile['Country']} {{braces}}. {text} "
                                           f"Options: {', '.join(options)}"})
    return pd.DataFrame(rows)


def wording_file(tmp_path, data: dict, name: str):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def digest(table: pa.Table, columns: list[str]) -> str:
    """SHA-256 of the rows and of the Arrow types of ``columns``."""
    types = {c: str(table.schema.field(c).type) for c in columns}
    text = json.dumps({"types": types, "rows": table.to_pylist()}, ensure_ascii=False, default=repr)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def as_written(frame: pd.DataFrame | pa.Table) -> pa.Table:
    """The table `dvmap prompts` writes (write_parquet's conversion)."""
    return frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False)


def digests(items: pd.DataFrame, templates) -> dict[str, str]:
    """Per style: digests of the prompt corpus, its veRL export and its DVMap-fork export."""
    out = {}
    for style in ("structured_cot", "direct", "country_only", "release"):
        corpus = prompt_corpus(items, style, templates)
        out[f"{style}/corpus"] = digest(as_written(corpus), ["prompt", "style"])
        out[f"{style}/verl"] = digest(as_written(verl_layout(corpus)), ["prompt", "reward_model", "extra_info"])
        fork = as_written(dvmap_verl_layout(corpus))
        out[f"{style}/dvmap_verl"] = digest(fork, fork.schema.names)
    return out


EXPECTED = {  # recorded from commit 22450a1's row-by-row implementation (see the module docstring)
    "plain": {
        "structured_cot/corpus": "ba15875af6ef9beff4e01a3f807950fbcf82ea5d7e3eca6ac5dece6a3d1fa2a6",
        "structured_cot/verl": "b355bbe23dac8b3c4d5b9543f0182d510e831446d6bcd4a7e4ee40feff82c7a4",
        "structured_cot/dvmap_verl": "1adab19be9e06db3358817795984a971f00771dc8c2bad949f71996f944ba877",
        "direct/corpus": "a4ccb495e9d84d6ef66a46be3ea1c8a0a6abc72352b21938c8f31123bd2e2448",
        "direct/verl": "0840da8df52c01b42784d3ea2a27102168eebb7613bb932c4bee70e4a76543d5",
        "direct/dvmap_verl": "12e0ef255c9b9f759bd3dab0a270504201d38ccc3170b8cd5f0f03bd4652bce8",
        "country_only/corpus": "67105d9d66c054ac65fedc5f241bbd4968cc9f6e256c14ab6c0587917770fdc0",
        "country_only/verl": "135a6f012921885ac2b01bd97203801770a163f7beb51032ecf2be75e3434d1a",
        "country_only/dvmap_verl": "858c44218dc9e2907fd96eb396d4af0f06590ee8d1b55dcc41001cea49f2633a",
        "release/corpus": "99e4cdb1a8419bd678c469573d6f7691e07fd5a7d967351eccc456ddbba3ca86",
        "release/verl": "930ced333d527e829d6641547b600d5db4678774b18de6b0cd41574809afe6ab",
        "release/dvmap_verl": "6cdc034ff457a9f0529b8e7fbcb51d17c8de76065df6a80bea849e47b3522cd9",
    },
    "fancy": {
        "structured_cot/corpus": "17c42055550dd9fc5edc0b0f58b4533546f1248b163788be4736567d6b7efb92",
        "structured_cot/verl": "3f5ca859b6d7b12d4ab6db1de3df20ecb8e2bc22bea75157669ae70e54154f79",
        "structured_cot/dvmap_verl": "b4c6f149b741b6d936b4f4a252e776d6330fc2a87fbc08c30965c32263161879",
        "direct/corpus": "43d5ecd4f3723e5b077d44b7c7dd07924cca0537a1f77a23fe36e3b2991e0e19",
        "direct/verl": "4ad4626ac5033b64a9d6c0f15cde09815be04c3b2d666bedc3de9841c70a82d1",
        "direct/dvmap_verl": "6297caa637a3dc0d039578cf4f77abfe599e702c2c46f0f68a14b3c824238f35",
        "country_only/corpus": "67105d9d66c054ac65fedc5f241bbd4968cc9f6e256c14ab6c0587917770fdc0",
        "country_only/verl": "135a6f012921885ac2b01bd97203801770a163f7beb51032ecf2be75e3434d1a",
        "country_only/dvmap_verl": "858c44218dc9e2907fd96eb396d4af0f06590ee8d1b55dcc41001cea49f2633a",
        "release/corpus": "79b4f6cf09cd56b302ecf5259888064f66f939e091c4a3dc8d6c326a1cf670c7",
        "release/verl": "265f916651d45eb8757ef73ffa177de399ef9182735fdcf64a7f0cfe40dc9c81",
        "release/dvmap_verl": "06cf2ead8447e191fb921675b6dbbb1faee1761b546446bb576b27e204bc2cc4",
    },
}


@pytest.mark.parametrize("name", ["plain", "fancy"])
def test_outputs_equal_the_row_by_row_digests(tmp_path, name):
    templates = load_templates(wording_file(tmp_path, WORDING if name == "plain" else FANCY, f"{name}.yaml"))
    assert digests(fixed_items(), templates) == EXPECTED[name]


# --------------------------------------------------------------------------------------------------------------
# The same texts as a row-by-row reference written from the wording file's definition
# --------------------------------------------------------------------------------------------------------------

PERSONA_ONLY = {"country_only": ["Country"]}


def reference_messages(items: pd.DataFrame, style: str, t) -> tuple[list[str], list[str]]:
    """Item by item: the persona joins the phrases of the answered attributes (DVMap's order, then custom ones;
    style country_only: the country only) with the separator into the sentence, or is the unknown text; options
    are option_line per option joined by newlines, and inline joined by ", "."""
    p = t.persona
    attributes = [a for a in ATTRIBUTES if a in items.columns] + (["Region"] if "Region" in items.columns else [])
    attributes = [a for a in attributes if a in PERSONA_ONLY.get(style, attributes)]
    system, user = [], []
    for _, item in items.iterrows():
        phrases = []
        for a in attributes:
            value = item[a]
            if value is None or (isinstance(value, float) and math.isnan(value)) or value == NOT_ANSWERED:
                continue
            phrase = p["phrases"].get(a, p["default_phrase"]).format(attribute=a, value=value)
            if phrase:
                phrases.append(phrase)
        details = p["separator"].join(phrases)
        persona = p["sentence"].format(details=details) if details else p["unknown"].format()
        options = [str(o) for o in item["options"]]
        values = {"persona": persona, "question": str(item["question"]), "category": str(item["category"]),
                  "options": "\n".join(t.option_line.format(option=o, number=i + 1) for i, o in enumerate(options)),
                  "options_inline": ", ".join(options), "release_prompt": item.get("release_prompt")}
        system.append(t.style(style)["system"].format_map(values))
        user.append(t.style(style)["user"].format_map(values))
    return system, user


@pytest.mark.parametrize("wording", ["packaged", "plain", "fancy"])
@pytest.mark.parametrize("style", ["structured_cot", "direct", "country_only", "release"])
def test_messages_equal_the_row_by_row_reference(tmp_path, wording, style):
    data = {"plain": WORDING, "fancy": FANCY}.get(wording)
    templates = load_templates(None if data is None else wording_file(tmp_path, data, "w.yaml"))
    items = fixed_items()
    system, user = reference_messages(items, style, templates)
    assert messages(items, style, templates) == (system, user)
    corpus = prompt_corpus(items, style, templates)
    assert corpus["prompt"].tolist() == [[{"role": "system", "content": s}, {"role": "user", "content": u}]
                                         for s, u in zip(system, user)]
    assert personas(items, style, templates).index.equals(items.index)


def reference_verl(corpus: pd.DataFrame) -> pd.DataFrame:
    """veRL's layout item by item: a dict per row, as the layout defines it."""
    rows = []
    for i, (_, row) in enumerate(corpus.iterrows()):
        info = {k: row[k] for k in ["item_id", "question_id", "split", "frequency",
                                    *[a for a in ATTRIBUTES if a in corpus.columns], "Region"]}
        rows.append({"data_source": row["data_source"], "prompt": list(row["prompt"]), "ability": "value_alignment",
                     "reward_model": {"style": "rule", "ground_truth": row["answer"]},
                     "extra_info": {**info, "options": list(row["options"]), "index": i}})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("style", ["direct", "release"])
def test_exports_equal_the_row_by_row_reference(style):
    corpus = prompt_corpus(fixed_items(), style)
    verl = as_written(verl_layout(corpus))
    expected = as_written(reference_verl(corpus))
    for column in ["prompt", "reward_model", "extra_info"]:
        assert verl.column(column).combine_chunks().equals(expected.column(column).combine_chunks()), column
    fork = dvmap_verl_layout(corpus)
    assert fork.column("prompt").to_pylist() == [p[1]["content"] for p in corpus["prompt"]]
    assert fork.column("Options").to_pylist() == [[str(o) for o in options] for options in corpus["options"]]
    assert fork.column("Options").type == pa.list_(pa.string())


def test_exports_of_a_corpus_read_back_from_parquet(tmp_path):
    """A prompt corpus read from disk (prompts as arrays of dicts) exports to the same tables."""
    from dvmap.io import read_parquet, write_parquet

    corpus = prompt_corpus(fixed_items(), "structured_cot")
    write_parquet(corpus, tmp_path / "c.parquet")
    back = read_parquet(tmp_path / "c.parquet")
    assert as_written(verl_layout(back)).equals(as_written(verl_layout(corpus)))
    assert dvmap_verl_layout(back).equals(dvmap_verl_layout(corpus))


def test_options_that_are_not_text(tmp_path):
    """Options are written as str(option); lists equal as text share their texts."""
    items = fixed_items().iloc[:12].copy()
    items["options"] = [[1, 2, 3] if i % 2 else ["1", "2", "3"] for i in range(len(items))]
    templates = load_templates(wording_file(tmp_path, WORDING, "w.yaml"))
    assert messages(items, "structured_cot", templates) == reference_messages(items, "structured_cot", templates)


def test_empty_items(tmp_path):
    items = fixed_items().iloc[:0]
    for style in ("structured_cot", "release"):
        corpus = prompt_corpus(items, style)
        assert corpus.empty and list(corpus.columns[:1]) == ["prompt"]
        assert as_written(verl_layout(corpus)).num_rows == 0
        assert dvmap_verl_layout(corpus).num_rows == 0


def test_a_template_that_cannot_be_filled_names_the_key(tmp_path):
    data = json.loads(json.dumps(WORDING))
    data["styles"]["direct"]["user"] = "{persona} {category:d}"
    templates = load_templates(wording_file(tmp_path, data, "bad.yaml"))
    with pytest.raises(Exception, match=r"styles\.direct\.user: cannot fill the template \(ValueError: Unknown "
                                        r"format code 'd' for object of type 'str'\)"):
        prompt_corpus(fixed_items(), "direct", templates)


def test_user_message_for_one_item():
    from dvmap.corpus.prompts import user_message

    items = fixed_items().iloc[[3]]
    templates = load_templates()
    persona = personas(items, "direct", templates).iloc[0]
    row = items.iloc[0]
    assert user_message(persona, row["question"], row["options"], "direct", templates) == \
        reference_messages(items, "direct", templates)[1][0]


@pytest.mark.parametrize("change", ["none", "reversed keys", "extra key", "missing content", "bytes", "empty list",
                                    "a string", "three messages"])
def test_conversation_arrays_are_what_inference_gives(change):
    """The quick conversion of a prompt column gives pyarrow's inferred array, for well-formed prompts and not."""
    from dvmap.corpus.prompts import arrow_values, conversations

    prompts = [[{"role": "system", "content": f"s{i}"}, {"role": "user", "content": f"u{i}"}] for i in range(5)]
    broken = {"none": lambda p: p,
              "reversed keys": lambda p: [{"content": m["content"], "role": m["role"]} for m in p],
              "extra key": lambda p: [{**m, "name": "x"} for m in p],
              "missing content": lambda p: [{"role": m["role"], "content": None} for m in p],
              "bytes": lambda p: [{"role": m["role"], "content": m["content"].encode()} for m in p],
              "empty list": lambda p: [],
              "a string": lambda p: "text",
              "three messages": lambda p: p + [{"role": "assistant", "content": "a"}]}[change]
    prompts[2] = broken(prompts[2])
    column = pd.Series(prompts, dtype=object)
    if change == "a string":  # not convertible at all: the same error as before
        for convert in (conversations, arrow_values):
            with pytest.raises(pa.ArrowInvalid):
                convert(column)
        return
    assert conversations(column).equals(arrow_values(column))
    assert conversations(column).type == pa.Table.from_pandas(pd.DataFrame({"p": column})).schema.field("p").type
