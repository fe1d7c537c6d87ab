"""Prompt corpora: conversational prompts that TRL's GRPOTrainer reads as is, and an export in veRL's layout.

The wording lives in a YAML file (the packaged ``dvmap/data/prompts.yaml`` or a user's copy, config
``prompts.templates``); this module only fills its placeholders. The file's header documents them.
"""

from __future__ import annotations

import dataclasses
import string
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from .. import NOT_ANSWERED
from ..errors import DvmapError
from ..schema import attribute_columns

STYLES = ("structured_cot", "direct", "country_only", "release")
DEFAULT_TEMPLATES = resources.files("dvmap") / "data" / "prompts.yaml"

#: Persona attributes a style keeps (styles not listed keep them all): country_only is the national-label ablation.
PERSONA_ATTRIBUTES = {"country_only": ("Country",)}
#: Placeholders of the system and user templates.
MESSAGE_FIELDS = ("persona", "question", "options", "options_inline", "category", "release_prompt")
#: Placeholders of the other templates, by key.
OTHER_FIELDS = {"option_line": ("option", "number"), "persona.sentence": ("details",), "persona.unknown": (),
                "persona.separator": (), "persona.default_phrase": ("attribute", "value"),
                "persona.phrases": ("value",)}
RELEASE_ONLY = ("the release style (and any template using {release_prompt}) needs items imported from DVMap's "
                "release: config data.source: release")


@dataclasses.dataclass(frozen=True)
class Templates:
    """A parsed, checked prompt-wording file."""

    source: str
    option_line: str
    persona: dict
    styles: dict[str, dict[str, str]]

    def style(self, style: str) -> dict[str, str]:
        """The system and user templates of ``style``; an error naming the file and key when the file lacks it."""
        if style not in self.styles:
            raise DvmapError(f"{self.source}: styles.{style}: missing; the file defines {sorted(self.styles)}")
        return self.styles[style]


def load_templates(path: str | Path | None = None) -> Templates:
    """Read and check a prompt-wording YAML (None: the packaged one)."""
    source = DEFAULT_TEMPLATES if path is None else Path(path)
    try:
        data = yaml.safe_load(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DvmapError(f"{source}: cannot read prompt templates ({exc})") from exc
    except yaml.YAMLError as exc:
        raise DvmapError(f"{source}: not valid YAML ({exc})") from exc
    where = str(source)
    if not isinstance(data, dict):
        raise DvmapError(f"{where}: expected a mapping with option_line, persona and styles")
    unknown = sorted(set(data) - {"option_line", "persona", "styles"})
    if unknown:
        raise DvmapError(f"{where}: {unknown[0]}: unknown key; expected option_line, persona and styles")
    option_line = _text(data, "option_line", where, "option_line")
    persona = _mapping(data, "persona", where, "persona")
    unknown = sorted(set(persona) - {"sentence", "unknown", "separator", "default_phrase", "phrases"})
    if unknown:
        raise DvmapError(f"{where}: persona.{unknown[0]}: unknown key")
    checked = {key: _text(persona, key, where, f"persona.{key}")
               for key in ("sentence", "unknown", "separator", "default_phrase")}
    phrases = _mapping(persona, "phrases", where, "persona.phrases")
    checked["phrases"] = {str(a): _text(phrases, a, where, f"persona.phrases.{a}") for a in phrases}
    for key, text in [("option_line", option_line), *((f"persona.{k}", v) for k, v in checked.items()
                                                     if k != "phrases")]:
        _check_fields(text, OTHER_FIELDS[key], where, key)
    for attribute, text in checked["phrases"].items():
        _check_fields(text, OTHER_FIELDS["persona.phrases"], where, f"persona.phrases.{attribute}")
    styles = _mapping(data, "styles", where, "styles")
    parsed = {}
    for style, body in styles.items():
        key = f"styles.{style}"
        if style not in STYLES:
            raise DvmapError(f"{where}: {key}: unknown style; choose from {list(STYLES)}")
        if not isinstance(body, dict):
            raise DvmapError(f"{where}: {key}: expected a mapping with system and user")
        extra = sorted(set(body) - {"system", "user"})
        if extra:
            raise DvmapError(f"{where}: {key}.{extra[0]}: unknown key; expected system and user")
        parsed[style] = {part: _text(body, part, where, f"{key}.{part}") for part in ("system", "user")}
        for part, text in parsed[style].items():
            _check_fields(text, MESSAGE_FIELDS, where, f"{key}.{part}")
    return Templates(where, option_line, checked, parsed)


def _mapping(data: dict, key: str, where: str, name: str) -> dict:
    value = data.get(key)
    if not isinstance(value, dict):
        raise DvmapError(f"{where}: {name}: {'missing' if value is None else 'expected a mapping'}")
    return value


def _text(data: dict, key: str, where: str, name: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise DvmapError(f"{where}: {name}: {'missing' if value is None else 'expected a string'}")
    return value


def fields(text: str) -> list[str]:
    """The placeholder names of a format string, in order (positional ones as ''), nested ones included."""
    names = []
    for _, name, spec, _ in string.Formatter().parse(text):
        if name is not None:
            names.append(name)
        if spec:
            names += fields(spec)
    return names


def _check_fields(text: str, allowed, where: str, key: str) -> None:
    try:
        names = fields(text)
    except ValueError as exc:
        raise DvmapError(f"{where}: {key}: malformed template ({exc}); write {{{{ and }}}} for literal braces") from None
    for name in names:
        if name not in allowed:
            shown = "{" + name + "}"
            raise DvmapError(f"{where}: {key}: unknown placeholder {shown}; allowed: "
                             + (", ".join("{" + a + "}" for a in allowed) or "none"))


def _as_templates(templates) -> Templates:
    return templates if isinstance(templates, Templates) else load_templates(templates)


def personas(items: pd.DataFrame, style: str, templates: Templates | str | Path | None = None) -> pd.Series:
    """The persona text of each item (attribute columns only; Not Answered values are left out)."""
    t = _as_templates(templates)
    p = t.persona
    attributes = attribute_columns(items)
    keep = PERSONA_ATTRIBUTES.get(style)
    if keep is not None:
        attributes = [a for a in attributes if a in keep]
    details = np.full(len(items), "", dtype=object)
    for name in attributes:
        phrase = p["phrases"].get(name)
        key = f"persona.phrases.{name}" if phrase is not None else "persona.default_phrase"
        values = [v for v in items[name].dropna().unique() if v != NOT_ANSWERED]
        wording = dict(zip(values, _fill(phrase if phrase is not None else p["default_phrase"],
                                         {"attribute": [name] * len(values), "value": values}, len(values),
                                         f"{t.source}: {key}")))  # formatted once per distinct value
        text = np.array([wording.get(v, "") for v in items[name]], dtype=object)
        joined = np.where(details != "", details + p["separator"] + text, text)
        details = np.where(text != "", joined, details)
    distinct = [d for d in pd.unique(details) if d != ""]
    sentences = dict(zip(distinct, _fill(p["sentence"], {"details": distinct}, len(distinct),
                                         f"{t.source}: persona.sentence")))
    unknown = _fill(p["unknown"], {}, 1, f"{t.source}: persona.unknown")[0]
    return pd.Series([sentences.get(d, unknown) for d in details], index=items.index, dtype=object)


def _release_prompts(items: pd.DataFrame, what: str) -> list[str]:
    """The items' own prompts from DVMap's release (column release_prompt, set by `dvmap import-release`)."""
    column = items.get("release_prompt")
    if column is None:
        raise DvmapError(f"{what}: the items have no release_prompt column; {RELEASE_ONLY}")
    empty = (column.isna() | (column.astype(str) == "")).to_numpy()
    if empty.any():
        item = items["item_id"].iloc[int(np.flatnonzero(empty)[0])] if "item_id" in items else "?"
        raise DvmapError(f"{what}: item {item} has no release_prompt ({RELEASE_ONLY}; a flipped item has none when "
                         "its prompt does not name the flipped value exactly once)")
    return column.astype(str).tolist()


def _fill(text: str, values: dict[str, list], n: int, where: str) -> list[str]:
    """``text`` formatted once per item with that item's field values (``where`` names the file and key)."""
    names = sorted(set(fields(text)))
    try:
        if not names:
            return [text.format()] * n
        columns = [values[name] for name in names]
        return [text.format_map(dict(zip(names, row))) for row in zip(*columns)]
    except (ValueError, KeyError, IndexError, AttributeError) as exc:
        raise DvmapError(f"{where}: cannot fill the template ({type(exc).__name__}: {exc})") from None


def messages(items: pd.DataFrame, style: str, templates: Templates | str | Path | None = None
             ) -> tuple[list[str], list[str]]:
    """The system and user message texts of every item."""
    t = _as_templates(templates)
    wording = t.style(style)
    used = set(fields(wording["system"])) | set(fields(wording["user"]))
    n = len(items)
    values: dict[str, list] = {}
    if style == "release" or "release_prompt" in used:
        values["release_prompt"] = _release_prompts(items, f"prompt style {style!r}")
    if "persona" in used:
        values["persona"] = personas(items, style, t).tolist()
    if "question" in used:
        values["question"] = items["question"].astype(str).tolist()
    if "category" in used:
        values["category"] = items["category"].astype(str).tolist()
    if "options" in used or "options_inline" in used:
        values["options"], values["options_inline"] = _option_texts(t, items["options"])
    return tuple(_fill(wording[part], values, n, f"{t.source}: styles.{style}.{part}") for part in ("system", "user"))


def prompt_corpus(items: pd.DataFrame, style: str, templates: Templates | str | Path | None = None) -> pd.DataFrame:
    """Add the conversational ``prompt`` (system + user messages) of ``style`` to an item table; ``templates`` is
    the wording YAML (None: the packaged dvmap/data/prompts.yaml)."""
    if style not in STYLES:
        raise DvmapError(f"prompts.styles: unknown style {style!r}; choose from {list(STYLES)}")
    system, user = messages(items, style, templates)
    prompts = [[{"role": "system", "content": s}, {"role": "user", "content": u}] for s, u in zip(system, user)]
    out = items.copy()
    out.insert(0, "prompt", prompts)
    out["style"] = style
    return out


def system_message(style: str = "direct", templates: Templates | str | Path | None = None) -> str:
    """The system text of ``style`` when it uses no per-item placeholder."""
    t = _as_templates(templates)
    text = t.style(style)["system"]
    if fields(text):
        raise DvmapError(f"{t.source}: styles.{style}.system: uses placeholders {fields(text)}; it differs per item")
    return text.format()


def user_message(persona_text: str, question: str, options, style: str,
                 templates: Templates | str | Path | None = None) -> str:
    """The user text of ``style`` for one item given its persona text (scripts build ad-hoc prompts with it)."""
    t = _as_templates(templates)
    text = t.style(style)["user"]
    if "release_prompt" in fields(text):
        raise DvmapError(f"{t.source}: styles.{style}.user: {RELEASE_ONLY}")
    listed, inline = _option_texts(t, [options])
    values = {"persona": [persona_text], "question": [question], "category": [""], "options": listed,
              "options_inline": inline}
    return _fill(text, values, 1, f"{t.source}: styles.{style}.user")[0]


def _option_texts(t: Templates, column) -> tuple[list[str], list[str]]:
    """Each item's options as lines (``option_line``) and joined by ", "; formatted once per distinct list."""
    options = [tuple(map(str, o)) for o in column]
    where = f"{t.source}: option_line"
    listed = {o: "\n".join(_fill(t.option_line, {"option": list(o), "number": list(range(1, len(o) + 1))}, len(o),
                                 where)) for o in set(options)}
    return [listed[o] for o in options], [", ".join(o) for o in options]


def __getattr__(name: str):
    if name == "SYSTEM":  # the packaged direct-style system text (kept for scripts that import it)
        return system_message("direct")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
