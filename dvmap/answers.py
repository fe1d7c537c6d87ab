"""Answer parsing shared by evaluation and rewards: free text -> one of the options, or None (unparseable).

Rules: take the text of the last ``<answer>…</answer>`` (the whole text when there is no tag); an exact option after
whitespace/case normalisation wins; otherwise the text must mention exactly one option as whole words, where an
option mentioned only inside a longer mentioned option ("Agree" inside "Agree strongly") does not count.
Anything else is unparseable, and evaluation counts it as wrong.
"""

from __future__ import annotations

import re
from typing import Sequence

ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.IGNORECASE | re.DOTALL)


def normalise(text: str) -> str:
    """Lower case, whitespace collapsed, surrounding blanks and final punctuation removed."""
    return re.sub(r"\s+", " ", text).strip().strip(".!;:").strip().lower()


def answer_text(output: str) -> str | None:
    """The content of the last ``<answer>`` tag; the whole output when there is none; None for an empty tag."""
    tags = ANSWER_TAG.findall(output or "")
    text = tags[-1] if tags else (output or "")
    return text if normalise(text) else None


def parse_answer(output: str | None, options: Sequence[str]) -> str | None:
    """The option ``output`` answers with, or None when it is unparseable."""
    if output is None:
        return None
    text = answer_text(output)
    if text is None:
        return None
    wanted = normalise(text)
    for option in options:
        if normalise(option) == wanted:
            return option
    spans = {}
    for option in options:
        pattern = r"(?<!\w)" + re.escape(normalise(option)).replace(r"\ ", r"\s+") + r"(?!\w)"
        found = [m.span() for m in re.finditer(pattern, wanted)]
        if found:
            spans[option] = found
    mentioned = [option for option, places in spans.items()
                 if any(not _inside(place, option, spans) for place in places)]
    return mentioned[0] if len(mentioned) == 1 else None


def _inside(place: tuple[int, int], option: str, spans: dict[str, list[tuple[int, int]]]) -> bool:
    """Whether this mention of ``option`` lies within a mention of a longer option."""
    start, end = place
    return any(o != option and s <= start and end <= e and (e - s) > (end - start)
               for o, places in spans.items() for s, e in places)
