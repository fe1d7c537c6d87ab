"""Answer parsing shared by evaluation and rewards: free text -> one of the options, or None (unparseable).

Two protocols (config ``evaluation.protocol``):

- ``lenient`` (dvmap's): take the text of the last ``<answer>…</answer>`` (the whole text when there is no tag); an
  exact option after whitespace/case normalisation wins; otherwise the text must mention exactly one option as whole
  words, where an option mentioned only inside a longer mentioned option ("Agree" inside "Agree strongly") does not
  count.
- ``strict`` (DVMap's released evaluation, ``Triple-Generalization_Evaluation_Benchmark/eval_api_parallel.py``): the
  text after the last ``<answer>`` must contain ``</answer>``; what lies between, stripped, is the answer. It is the
  option it equals exactly, else the one option that is a substring of it; comparisons are case-sensitive.

Anything else is unparseable, and evaluation counts it as wrong. The release's rewards (``dvmap.training.rewards``) extract
their answer as its reward code does (:func:`reward_answer_text`: the last complete tag pair within the last 300
characters) and compare it with the options case-sensitively, as the strict protocol does.
"""

from __future__ import annotations

import re
from typing import Sequence

from .errors import DvmapError

PROTOCOLS = ("lenient", "strict")
ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.IGNORECASE | re.DOTALL)


def normalise(text: str) -> str:
    """Lower case, whitespace collapsed, surrounding blanks and final punctuation removed."""
    return re.sub(r"\s+", " ", text).strip().strip(".!;:").strip().lower()


def answer_text(output: str) -> str | None:
    """The content of the last ``<answer>`` tag; the whole output when there is none; None for an empty tag."""
    tags = ANSWER_TAG.findall(output or "")
    text = tags[-1] if tags else (output or "")
    return text if normalise(text) else None


def strict_answer_text(output: str | None) -> str | None:
    """DVMap's evaluation extraction: the stripped text between the last ``<answer>`` and the ``</answer>`` after
    it (case-sensitive tags); None when either tag is missing or the answer is empty."""
    parts = (output or "").split("<answer>")
    if len(parts) < 2 or "</answer>" not in parts[-1]:
        return None
    return parts[-1].split("</answer>")[0].strip() or None


REWARD_CLIP = 300
REWARD_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)


def reward_answer_text(output: str) -> str | None:
    """DVMap's reward extraction: the stripped content of the last ``<answer>…</answer>`` pair within the last
    ``REWARD_CLIP`` characters (case-sensitive tags); None when there is none or it is empty or ``...``."""
    pairs = REWARD_ANSWER_TAG.findall(output[-REWARD_CLIP:])
    text = pairs[-1].strip() if pairs else ""
    return None if text in ("", "...") else text


def option_matches(text: str, options: Sequence[str]) -> tuple[int | None, list[int]]:
    """(index of the option ``text`` equals exactly, or None; indices of the options that are substrings of it),
    both case-sensitive, as DVMap's release compares answers."""
    exact = next((i for i, option in enumerate(options) if text == option), None)
    return exact, [i for i, option in enumerate(options) if option in text]


def parse_answer(output: str | None, options: Sequence[str], protocol: str = "lenient") -> str | None:
    """The option ``output`` answers with under ``protocol``, or None when it is unparseable."""
    if protocol == "strict":
        return _parse_strict(output, options)
    if protocol != "lenient":
        raise DvmapError(f"evaluation.protocol: unknown protocol {protocol!r}; choose from {list(PROTOCOLS)}")
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


def _parse_strict(output: str | None, options: Sequence[str]) -> str | None:
    text = strict_answer_text(output)
    if text is None:
        return None
    exact, substrings = option_matches(text, options)
    if exact is not None:
        return options[exact]
    return options[substrings[0]] if len(substrings) == 1 else None


#: The reply that names an option in the direct style's answer format (the packaged prompts.yaml asks for it):
#: score mode scores each option as this reply.
ANSWER_REPLY = "<answer>{}</answer>"
#: Joins the samples of one item in a prediction table's raw_output (``dvmap predict``); :func:`vote` splits them.
SAMPLE_SEPARATOR = "\n-----\n"


def vote(outputs: Sequence[str] | str | None, options: Sequence[str], protocol: str = "lenient") -> int:
    """Option index of the most frequent answer among the samples that parse under ``protocol`` (ties: the earlier
    option); -1 when none parses. ``outputs`` is the list of samples, or a raw_output joined by
    :data:`SAMPLE_SEPARATOR`."""
    if outputs is None:
        return -1
    if isinstance(outputs, str):
        outputs = outputs.split(SAMPLE_SEPARATOR)
    options = list(options)
    counts: dict[int, int] = {}
    for output in outputs:
        answer = parse_answer(output, options, protocol)
        if answer is not None:
            index = options.index(answer)
            counts[index] = counts.get(index, 0) + 1
    if not counts:
        return -1
    best = max(counts.values())
    return min(i for i, c in counts.items() if c == best)


def _inside(place: tuple[int, int], option: str, spans: dict[str, list[tuple[int, int]]]) -> bool:
    """Whether this mention of ``option`` lies within a mention of a longer option."""
    start, end = place
    return any(o != option and s <= start and end <= e and (e - s) > (end - start)
               for o, places in spans.items() for s, e in places)
