"""Prompt corpora: conversational prompts that TRL's GRPOTrainer reads as is, and an export in veRL's layout."""

from __future__ import annotations

import pandas as pd

from . import NOT_ANSWERED
from .errors import DvmapError
from .items import attribute_columns

STYLES = ("structured_cot", "direct", "country_only")

SYSTEM = ("You answer survey questions from the World Values Survey as a specific person would, "
          "judging from who they are. Reply with exactly one of the listed options inside <answer></answer>.")

#: How each attribute reads in a persona sentence.
PERSONA_PHRASES = {
    "Country": "lives in {}",
    "Gender": "gender: {}",
    "Life Stage": "life stage: {}",
    "Marital Status": "marital status: {}",
    "Has Children": "{}",
    "Education Level": "education: {}",
    "Occupation": "employment: {}",
    "Work Nature": "works in: {}",
    "Income Bracket": "income: {}",
    "Religion": "religion: {}",
    "Common Language": "speaks {} at home",
}

STRUCTURED_STEPS = (
    "Work in three steps.\n"
    "1. Attributes: for each attribute of the person, note in one sentence how it bears on this question.\n"
    "2. Options: for each option, say in one sentence why it fits or does not fit this person.\n"
    "3. Answer: give the single option that best fits, inside <answer></answer>."
)


def persona(row: pd.Series, attributes: list[str], style: str) -> str:
    """Describe the person; 'country_only' keeps the country alone (the national-label ablation)."""
    if style == "country_only":
        attributes = [a for a in attributes if a == "Country"]
    parts = []
    for name in attributes:
        value = row[name]
        if value == NOT_ANSWERED or value is None:
            continue
        parts.append(PERSONA_PHRASES.get(name, name + ": {}").format(value))
    return "The person " + "; ".join(parts) + "." if parts else "Nothing is known about the person."


def user_message(persona_text: str, question: str, options, style: str) -> str:
    listed = "\n".join(f"- {o}" for o in options)
    body = f"{persona_text}\n\nQuestion: {question}\nOptions:\n{listed}\n\n"
    if style == "structured_cot":
        return body + STRUCTURED_STEPS
    return body + "Reply with the option only, inside <answer></answer>."


def prompt_corpus(items: pd.DataFrame, style: str) -> pd.DataFrame:
    """Add the conversational ``prompt`` (system + user messages) of ``style`` to an item table."""
    if style not in STYLES:
        raise DvmapError(f"prompts.styles: unknown style {style!r}; choose from {list(STYLES)}")
    attributes = attribute_columns(items)
    profiles = items.drop_duplicates("profile_id").set_index("profile_id")
    personas = {pid: persona(row, attributes, style) for pid, row in profiles.iterrows()}
    prompts = [
        [{"role": "system", "content": SYSTEM},
         {"role": "user", "content": user_message(personas[pid], question, options, style)}]
        for pid, question, options in zip(items["profile_id"], items["question"], items["options"])
    ]
    out = items.copy()
    out.insert(0, "prompt", prompts)
    out["style"] = style
    return out


def verl_layout(corpus: pd.DataFrame) -> pd.DataFrame:
    """veRL's RL dataset layout: data_source, prompt, ability, reward_model.ground_truth, extra_info."""
    attributes = attribute_columns(corpus)
    extra = corpus[["item_id", "question_id", "split", "frequency", *attributes]].to_dict("records")
    for record, options in zip(extra, corpus["options"]):
        record["options"] = list(options)
    return pd.DataFrame({
        "data_source": corpus["data_source"].to_numpy(),
        "prompt": corpus["prompt"].to_numpy(),
        "ability": "value_alignment",
        "reward_model": [{"style": "rule", "ground_truth": a} for a in corpus["answer"]],
        "extra_info": [{**r, "index": i} for i, r in enumerate(extra)],
    })
