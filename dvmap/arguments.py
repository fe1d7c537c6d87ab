"""Command-line pieces shared by the stages' subcommands: common options, and value checks that refuse what the
config schema refuses (argparse reports them as ``dvmap COMMAND: error: argument …`` with exit status 2)."""

from __future__ import annotations

import argparse
import logging
import os

from .answers import PROTOCOLS
from .corpus.items import TIE_POLICIES


def at_least(minimum: int, key: str):
    """An argparse type: an integer >= ``minimum``; the error names the config key."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer ({key})") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is below {minimum} ({key} must be >= {minimum})")
        return value
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


def log_devices() -> None:
    """Say which GPUs the job was given (SLURM's gres sets CUDA_VISIBLE_DEVICES; it is unset on a CPU node)."""
    devices = os.environ.get("CUDA_VISIBLE_DEVICES", "unset")
    logging.getLogger("dvmap").info("devices: CUDA_VISIBLE_DEVICES=%s", devices)
