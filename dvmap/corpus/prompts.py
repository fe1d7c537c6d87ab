"""Prompt corpora: conversational prompts that TRL's GRPOTrainer reads as is, and an export in veRL's layout.

The wording lives in a YAML file (the packaged ``dvmap/data/prompts.yaml`` or a user's copy, config
``prompts.templates``); this module only fills its placeholders. The file's header documents them.

Texts are built column-wise, each distinct value once: a phrase per attribute value, a persona per distinct profile,
the option texts per distinct option list, and a message by concatenating the placeholders' columns (or formatting
once per distinct combination of values where a placeholder has a conversion or a format spec); the exports build
their nested columns as Arrow arrays. The output is the same, to the byte, as formatting item by item
(tests/test_prompts_scale.py).
"""

from __future__ import annotations

import dataclasses
import string
from importlib import resources
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
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


@dataclasses.dataclass(frozen=True)
class _Column:
    """The values of one placeholder for every item, as codes into its distinct values (in order of first
    appearance), so that each distinct value is worked on once."""

    codes: np.ndarray
    distinct: list
    text: pa.Array | None = None  # the distinct values as an Arrow string array, where they all are str

    @classmethod
    def of(cls, values) -> "_Column":
        codes, distinct = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=False)
        return cls(codes.astype(np.int64), list(distinct))

    def with_text(self) -> "_Column":
        """This column with :attr:`text` set where every distinct value is a str."""
        if not all(isinstance(v, str) for v in self.distinct):
            return self
        return dataclasses.replace(self, text=pa.array(self.distinct, type=pa.string()))

    def part(self, start: int, stop: int) -> "_Column":
        """The values of items ``start`` to ``stop``, sharing the distinct values."""
        return dataclasses.replace(self, codes=self.codes[start:stop])


def _persona_column(items: pd.DataFrame, style: str, t: Templates) -> _Column:
    """The persona text of each item: each attribute value is phrased once, each distinct profile joined once."""
    p = t.persona
    attributes = attribute_columns(items)
    keep = PERSONA_ATTRIBUTES.get(style)
    if keep is not None:
        attributes = [a for a in attributes if a in keep]
    profile = np.zeros(len(items), dtype=np.int64)
    phrased = []  # per attribute: the phrase of each code (NaN and Not Answered: "")
    codes = []
    for name in attributes:
        phrase = p["phrases"].get(name)
        key = f"persona.phrases.{name}" if phrase is not None else "persona.default_phrase"
        values = [v for v in items[name].dropna().unique() if v != NOT_ANSWERED]
        wording = dict(zip(values, _fill(phrase if phrase is not None else p["default_phrase"],
                                         {"attribute": [name] * len(values), "value": values}, len(values),
                                         f"{t.source}: {key}")))  # formatted once per distinct value
        code, distinct = pd.factorize(items[name])  # missing: -1, the last phrase below
        phrased.append([wording.get(v, "") for v in distinct] + [""])
        codes.append(code)
        profile = pd.factorize(profile * (len(distinct) + 1) + code + 1)[0]  # the profile so far, compactly
    first = np.unique(profile, return_index=True)[1]  # first item of each distinct profile, in order
    details = [p["separator"].join(text for text in (phrased[a][codes[a][row]] for a in range(len(attributes)))
                                   if text != "") for row in first]
    distinct = [d for d in pd.unique(pd.Series(details, dtype=object)) if d != ""]
    sentences = dict(zip(distinct, _fill(p["sentence"], {"details": distinct}, len(distinct),
                                         f"{t.source}: persona.sentence")))
    unknown = _fill(p["unknown"], {}, 1, f"{t.source}: persona.unknown")[0]
    return _Column(profile, [sentences.get(d, unknown) for d in details])


def personas(items: pd.DataFrame, style: str, templates: Templates | str | Path | None = None) -> pd.Series:
    """The persona text of each item (attribute columns only; Not Answered values are left out)."""
    column = _persona_column(items, style, _as_templates(templates))
    return pd.Series(np.array(column.distinct + [None], dtype=object)[column.codes], index=items.index,
                     dtype=object)


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


def _fill_columns(text: str, columns: dict[str, _Column], n: int, where: str) -> pa.Array:
    """``text`` filled for every item: by concatenating the placeholders' columns (in Arrow) where the template has
    plain placeholders and text values, else formatted once per distinct combination of values. The texts are
    :func:`_fill`'s (as an Arrow string array), and so is the error: the first combination that fails is the first
    failing item's."""
    names = sorted(set(fields(text)))
    try:
        if not names:
            return _repeat(text.format(), n)
        used = {name: columns[name] for name in names}
        if n == 0:
            return pa.array([], type=pa.string())
        parts = list(string.Formatter().parse(text))
        if all(spec == "" and conversion is None for _, name, spec, conversion in parts if name is not None) \
                and all(c.text is not None for c in used.values()) \
                and sum(name is not None for _, name, _, _ in parts) > 1:
            pieces = []
            for literal, name, _, _ in parts:
                if literal:
                    pieces.append(pa.scalar(literal, type=pa.string()))
                if name is not None:
                    pieces.append(used[name].text.take(used[name].codes))
            return pc.binary_join_element_wise(*pieces, "")
        combination = np.zeros(n, dtype=np.int64)
        for name in names:
            combination = pd.factorize(combination * len(used[name].distinct) + used[name].codes)[0]
        first = np.unique(combination, return_index=True)[1]
        texts = [text.format_map({name: used[name].distinct[used[name].codes[row]] for name in names})
                 for row in first]
        return pa.array(texts, type=pa.string()).take(combination)
    except (ValueError, KeyError, IndexError, AttributeError) as exc:
        raise DvmapError(f"{where}: cannot fill the template ({type(exc).__name__}: {exc})") from None


def _repeat(text: str, n: int) -> pa.Array:
    return pa.array([text], type=pa.string()).take(np.zeros(n, dtype=np.int64))


def _message_blocks(items: pd.DataFrame, style: str, t: Templates) -> Iterator[tuple[pa.Array, pa.Array]]:
    """The system and user texts of every item, as Arrow string arrays, per block of :data:`PROMPT_BLOCK` items
    (at least one block): the placeholders' values are worked out once for all items, the texts block by block."""
    wording = t.style(style)
    used = set(fields(wording["system"])) | set(fields(wording["user"]))
    columns: dict[str, _Column] = {}
    if style == "release" or "release_prompt" in used:
        columns["release_prompt"] = _Column.of(_release_prompts(items, f"prompt style {style!r}"))
    if "persona" in used:
        columns["persona"] = _persona_column(items, style, t)
    if "question" in used:
        columns["question"] = _Column.of(items["question"].astype(str))
    if "category" in used:
        columns["category"] = _Column.of(items["category"].astype(str))
    if "options" in used or "options_inline" in used:
        codes, distinct = _distinct_options(items["options"])
        listed, inline = _option_texts(t, distinct)
        columns["options"], columns["options_inline"] = _Column(codes, listed), _Column(codes, inline)
    columns = {name: column.with_text() for name, column in columns.items()}
    n = len(items)
    for start in range(0, max(n, 1), PROMPT_BLOCK):
        stop = min(start + PROMPT_BLOCK, n)
        block = {name: column.part(start, stop) for name, column in columns.items()}
        yield tuple(_fill_columns(wording[part], block, stop - start, f"{t.source}: styles.{style}.{part}")
                    for part in ("system", "user"))


def messages(items: pd.DataFrame, style: str, templates: Templates | str | Path | None = None
             ) -> tuple[list[str], list[str]]:
    """The system and user message texts of every item."""
    blocks = list(_message_blocks(items, style, _as_templates(templates)))
    return tuple([text for block in blocks for text in block[part].to_pylist()] for part in (0, 1))


#: The Arrow type of a conversational prompt: what pyarrow makes of [{"role": ..., "content": ...}, ...].
CONVERSATION = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
#: Items whose texts are built at a time: the temporary text columns are a block's, not the whole split's.
PROMPT_BLOCK = 32_768


def prompt_corpus(items: pd.DataFrame, style: str, templates: Templates | str | Path | None = None) -> pd.DataFrame:
    """Add the conversational ``prompt`` (system + user messages) of ``style`` to an item table; ``templates`` is
    the wording YAML (None: the packaged dvmap/data/prompts.yaml)."""
    if style not in STYLES:
        raise DvmapError(f"prompts.styles: unknown style {style!r}; choose from {list(STYLES)}")
    blocks = _message_blocks(items, style, _as_templates(templates))
    prompts = pa.chunked_array([_conversation_array(system, user) for system, user in blocks], type=CONVERSATION)
    out = items.copy()
    out.insert(0, "prompt", arrow_series(prompts).set_axis(out.index))
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
    listed, inline = _option_texts(t, [tuple(map(str, options))])
    values = {"persona": [persona_text], "question": [question], "category": [""], "options": listed,
              "options_inline": inline}
    return _fill(text, values, 1, f"{t.source}: styles.{style}.user")[0]


def _distinct_options(column) -> tuple[np.ndarray, list[tuple[str, ...]]]:
    """Codes of each item's option list into the distinct lists (as tuples of text), in order of first appearance."""
    index: dict[tuple, int] = {}
    codes = np.fromiter((index.setdefault(tuple(o), len(index)) for o in column), dtype=np.int64, count=len(column))
    if all(isinstance(option, str) for options in index for option in options):
        return codes, list(index)
    index = {}  # options that are not text: lists equal as text are the same list
    codes = np.fromiter((index.setdefault(tuple(map(str, o)), len(index)) for o in column), dtype=np.int64,
                        count=len(column))
    return codes, list(index)


def _option_texts(t: Templates, distinct: list[tuple[str, ...]]) -> tuple[list[str], list[str]]:
    """Each option list as lines (``option_line``) and joined by ", "."""
    where = f"{t.source}: option_line"
    listed = ["\n".join(_fill(t.option_line, {"option": list(o), "number": list(range(1, len(o) + 1))}, len(o), where))
              for o in distinct]
    return listed, [", ".join(o) for o in distinct]


def _conversation_array(system: pa.Array, user: pa.Array) -> pa.Array:
    """[{"role": "system", "content": s}, {"role": "user", "content": u}] per item, as a :data:`CONVERSATION`."""
    n = len(system)
    content = pa.concat_arrays([system, user]).take(np.arange(2 * n).reshape(2, n).T.ravel())  # s0, u0, s1, …
    role = pa.array(["system", "user"], type=pa.string()).take(np.tile([0, 1], n))
    messages = pa.StructArray.from_arrays([role, content], fields=list(CONVERSATION.value_type))
    return pa.ListArray.from_arrays(pa.array(np.arange(0, 2 * n + 1, 2), type=pa.int32()), messages,
                                    type=CONVERSATION)


def arrow_values(column: pd.Series) -> pa.Array:
    """A column as the Arrow array that ``Table.from_pandas`` makes of its Python values inside a list of dicts."""
    values = pa.array(column.to_numpy(dtype=object), from_pandas=True)
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def conversations(column: pd.Series) -> pa.Array | pa.ChunkedArray:
    """A prompt column as the Arrow array ``Table.from_pandas`` makes of it (:func:`arrow_values`), quickly where
    every prompt is a list of {"role": str, "content": str} dicts (keys in that order): converted to
    :data:`CONVERSATION` directly, the type that inference gives for exactly those values; anything else, a missing
    value included, is inferred as before. A column :func:`prompt_corpus` built is that array already, in its
    blocks (a ChunkedArray)."""
    if isinstance(column.dtype, pd.ArrowDtype) and column.dtype.pyarrow_dtype == CONVERSATION:
        return column.array.__arrow_array__()
    values = column.to_numpy(dtype=object)
    try:
        shaped = len(values) > 0 and all(type(m) is dict and tuple(m) == _ROLE_CONTENT and type(m["role"]) is str
                                         and type(m["content"]) is str for p in values for m in p)
    except TypeError:
        shaped = False
    if shaped:
        try:
            typed = pa.array(values, type=CONVERSATION, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            typed = None
        if typed is not None:
            typed = typed.combine_chunks() if isinstance(typed, pa.ChunkedArray) else typed
            flat = typed.flatten()
            if len(flat) and typed.null_count == 0 and flat.null_count == 0 and \
                    pc.struct_field(flat, "role").null_count == 0 and pc.struct_field(flat, "content").null_count == 0:
                return typed
    return arrow_values(column)


_ROLE_CONTENT = ("role", "content")


def options_array(column: pd.Series, text: bool = False) -> pa.Array:
    """Each item's options as an Arrow list array, converted once per distinct list: what pyarrow makes of
    ``list(options)`` or, with ``text``, of ``[str(o) for o in options]`` as a list of strings."""
    if text:
        codes, distinct = _distinct_options(column)
        return pa.array([list(o) for o in distinct], type=pa.list_(pa.string())).take(codes)
    index: dict[tuple, int] = {}
    codes = np.fromiter((index.setdefault(tuple(o), len(index)) for o in column), dtype=np.int64, count=len(column))
    if not all(isinstance(option, str) for options in index for option in options):  # not text: item by item
        return pa.array([list(o) for o in column], from_pandas=True)
    return pa.array([list(o) for o in index], from_pandas=True).take(codes)


def arrow_series(values: pa.Array) -> pd.Series:
    """An Arrow array as an Arrow-backed column (its values read as Python objects: dicts, lists, str)."""
    return pd.Series(pd.arrays.ArrowExtensionArray(values))


def verl_layout(corpus: pd.DataFrame) -> pd.DataFrame:
    """veRL's RL dataset layout: data_source, prompt, ability, reward_model.ground_truth, extra_info."""
    attributes = attribute_columns(corpus)
    keys = ["item_id", "question_id", "split", "frequency", *attributes]
    if not len(corpus) or len(set(keys) | {"options", "index"}) != len(keys) + 2:
        return _verl_layout_rows(corpus, keys)
    extra = pa.StructArray.from_arrays(
        [*(arrow_values(corpus[k]) for k in keys), options_array(corpus["options"]),
         pa.array(np.arange(len(corpus)), type=pa.int64())], names=[*keys, "options", "index"])
    reward = pa.StructArray.from_arrays([_repeat("rule", len(corpus)), arrow_values(corpus["answer"])],
                                        names=["style", "ground_truth"])
    return pd.DataFrame({
        "data_source": corpus["data_source"].to_numpy(),
        "prompt": arrow_series(conversations(corpus["prompt"])),
        "ability": "value_alignment",
        "reward_model": arrow_series(reward),
        "extra_info": arrow_series(extra),
    })


def _verl_layout_rows(corpus: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """verl_layout item by item (an empty corpus, or attributes named like the layout's own keys)."""
    extra = corpus[keys].to_dict("records")
    for record, options in zip(extra, corpus["options"]):
        record["options"] = list(options)
    return pd.DataFrame({
        "data_source": corpus["data_source"].to_numpy(),
        "prompt": corpus["prompt"].to_numpy(),
        "ability": "value_alignment",
        "reward_model": [{"style": "rule", "ground_truth": a} for a in corpus["answer"]],
        "extra_info": [{**r, "index": i} for i, r in enumerate(extra)],
    })
