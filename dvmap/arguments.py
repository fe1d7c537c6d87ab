"""Command-line pieces shared by the stages' subcommands: common options, and value checks that refuse what the
config schema refuses (argparse reports them as ``dvmap COMMAND: error: argument …`` with exit status 2).

Every option that mirrors a config key says so in its help as ``(config: KEY)``, and its default is config.yaml's
value for KEY (tests/test_cli_config_agreement.py checks both, and that ``choices`` are the schema's enum)."""

from __future__ import annotations

import argparse
import logging
import math
import os

from .answers import PROTOCOLS
from .corpus.items import TIE_POLICIES
from .schema import BENCHMARK_SPLITS, PARTITIONS

#: Defaults of splits.heldout_countries and splits.heldout_questions (config.yaml's values).
HELDOUT_COUNTRIES = ("Mexico", "Nigeria")
HELDOUT_QUESTIONS = ("Q47", "Q56", "Q71", "Q73", "Q121", "Q165", "Q173", "Q195", "Q209")
#: Fewest bootstrap replicates (evaluation.bootstrap, the schema's minimum too). Percentiles of a handful of
#: replicates are little more than their range; 10 is a floor for quick checks, the default is 1000.
MIN_BOOTSTRAP = 10
#: The word that stands for null (every item) in --max-items.
ALL = "all"


def at_least(minimum: int, key: str, maximum: int | None = None):
    """An argparse type: an integer >= ``minimum`` (and <= ``maximum`` when given); the error names the config key."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer ({key})") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is below {minimum} ({key} must be >= {minimum})")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"{value} is above {maximum} ({key} must be <= {maximum})")
        return value
    return parse


def count_or_all(key: str):
    """An argparse type: an integer >= 1, or ``all`` (None: no limit, the config's null)."""
    count = at_least(1, key)

    def parse(text: str) -> int | None:
        return None if text == ALL else count(text)
    return parse


def non_negative(key: str):
    """An argparse type: a finite float >= 0; the error names the config key."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number ({key})") from None
        if not math.isfinite(value) or value < 0:
            raise argparse.ArgumentTypeError(f"{text} is not a non-negative share ({key})")
        return value
    return parse


def sums_to_one(values) -> bool:
    """Whether shares sum to 1, with the tolerance dvmap.corpus.splits uses (numpy.isclose's)."""
    return abs(sum(values) - 1.0) <= 1e-8 + 1e-5


class Fractions(argparse.Action):
    """--fractions TRAIN DEV TEST XDEMO: non-negative shares (checked by the type) that sum to 1."""

    def __call__(self, parser, namespace, values, option_string=None):
        if not sums_to_one(values):
            raise argparse.ArgumentError(self, f"the shares {values} sum to {sum(values):g}, not 1 "
                                               "(splits.fractions must sum to 1)")
        setattr(namespace, self.dest, list(values))


def threshold(key: str, optional: bool = False):
    """An argparse type: a consensus threshold label (an entropy in bits >= 0, or ``majority``; with ``optional``
    also ``none``/``null``), returned as given; the error names the config key."""
    def parse(text: str) -> str:
        from .errors import DvmapError
        from .survey.archetypes import parse_tau

        if optional and text in ("none", "null"):
            return text
        try:
            parse_tau(text)
        except DvmapError as exc:
            raise argparse.ArgumentTypeError(f"{exc} ({key})") from None
        return text
    return parse


def benchmark_size(text: str) -> str:
    """An argparse type for --benchmark-items: ``SPLIT=N`` with a benchmark split and N >= 1, returned as given."""
    name, _, value = text.partition("=")
    if name not in BENCHMARK_SPLITS or not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected SPLIT=N with SPLIT one of {list(BENCHMARK_SPLITS)} "
                                         "and N >= 1 (splits.benchmark_items)")
    return text


def policy_spec(policies, key: str):
    """An argparse type for ``NAME=POLICY`` with POLICY one of ``policies``, returned as given."""
    def parse(text: str) -> str:
        name, sep, policy = text.partition("=")
        if not sep or not name or policy not in policies:
            raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=POLICY with POLICY one of {list(policies)} "
                                             f"({key})")
        return text
    return parse


def json_object(key: str):
    """An argparse type: a JSON object, returned as given (the command reads it); the error names the config key."""
    def parse(text: str) -> str:
        import json

        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise argparse.ArgumentTypeError(f"not JSON ({exc}) ({key})") from None
        if not isinstance(value, dict):
            raise argparse.ArgumentTypeError(f"expected a JSON object, not {type(value).__name__} ({key})")
        return text
    return parse


def add_catalog(parser) -> None:
    parser.add_argument("--catalog", help="question catalog YAML (config: data.catalog; default: the packaged one)")


def catalog(args):
    """The question catalog named by ``--catalog`` (the packaged one by default)."""
    from .survey.catalog import load_catalog

    return load_catalog(args.catalog)


def add_protocol(parser, role: str) -> None:
    parser.add_argument("--protocol", choices=PROTOCOLS, default=PROTOCOLS[0],
                        help=f"answer protocol: {role} (config: evaluation.protocol)")


def add_ties(parser) -> None:
    parser.add_argument("--ties", choices=TIE_POLICIES, default=TIE_POLICIES[0],
                        help="pairs whose modal answer is tied: dropped, or a seeded draw among the tied options "
                             "(config: splits.ties)")


def add_heldout_questions(parser) -> None:
    parser.add_argument("--heldout-questions", nargs="*", default=list(HELDOUT_QUESTIONS), metavar="QUESTION",
                        help="questions of cross_value, never in the corpus; give the option without questions to "
                             "hold out none (config: splits.heldout_questions)")


def add_fractions(parser) -> None:
    parser.add_argument("--fractions", type=non_negative("splits.fractions"), nargs=len(PARTITIONS), action=Fractions,
                        default=[0.7, 0.1, 0.1, 0.1], metavar=("TRAIN", "DEV", "TEST", "XDEMO"),
                        help="non-negative shares of each seen country's profiles, summing to 1 "
                             "(config: splits.fractions)")


def log_devices() -> None:
    """Say which GPUs the job was given (SLURM's gres sets CUDA_VISIBLE_DEVICES; it is unset on a CPU node)."""
    devices = os.environ.get("CUDA_VISIBLE_DEVICES", "unset")
    logging.getLogger("dvmap").info("devices: CUDA_VISIBLE_DEVICES=%s", devices)
