"""The question catalog: a data file listing value questions, their options and how WVS codes recode to them."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from ..errors import DvmapError

DEFAULT_CATALOG = resources.files("dvmap") / "data" / "questions.yaml"


@dataclass(frozen=True)
class Question:
    """One catalog item: ``recode`` maps a WVS code to one of the ordered ``options``."""

    id: str
    section: str
    text: str
    options: tuple[str, ...]
    recode: dict[int, str]

    def option_index(self, label: str) -> int:
        return self.options.index(label)


def load_catalog(path: str | Path | None = None) -> dict[str, Question]:
    """Load and check a catalog file (the packaged one when ``path`` is None), keyed by question id."""
    source = Path(path) if path else DEFAULT_CATALOG
    try:
        entries = yaml.safe_load(source.read_text(encoding="utf-8"))["questions"]
    except (OSError, UnicodeDecodeError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise DvmapError(f"{source}: not a question catalog with a 'questions' list ({exc})") from exc
    catalog: dict[str, Question] = {}
    for position, entry in enumerate(entries):
        where = f"{source}: questions[{position}]"
        try:
            question = Question(
                id=str(entry["id"]),
                section=str(entry["section"]),
                text=str(entry["text"]),
                options=tuple(str(o) for o in entry["options"]),
                recode={int(code): str(label) for code, label in entry["recode"].items()},
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise DvmapError(f"{where}: needs id, section, text, options and recode ({exc})") from exc
        _check_question(question, where)
        if question.id in catalog:
            raise DvmapError(f"{where}: duplicate question id {question.id!r}")
        catalog[question.id] = question
    return catalog


def _check_question(question: Question, where: str) -> None:
    if len(question.options) < 2 or len(set(question.options)) != len(question.options):
        raise DvmapError(f"{where} ({question.id}): options must be at least two distinct labels")
    unknown = sorted(set(question.recode.values()) - set(question.options))
    if unknown:
        raise DvmapError(f"{where} ({question.id}): recode targets {unknown} are not among the options")
    unreached = [o for o in question.options if o not in question.recode.values()]
    if unreached:
        raise DvmapError(f"{where} ({question.id}): options {unreached} are reached by no code")
