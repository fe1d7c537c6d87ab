"""The ``dvmap`` console script: one subcommand per pipeline stage, each defined in its stage's ``commands``
module (dvmap/survey, corpus, evaluation, inference, training). Snakemake rules call these; so can users."""

from __future__ import annotations

import argparse
import logging
import sys

from . import __version__
from .corpus import commands as corpus
from .errors import DvmapError
from .evaluation import commands as evaluation
from .inference import commands as inference
from .shutdown import exit_program
from .survey import commands as survey
from .training import commands as training

#: The stages in pipeline order; each registers its subcommands.
STAGES = (survey, corpus, evaluation, inference, training)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dvmap", description=__doc__)
    parser.add_argument("--version", action="version", version=f"dvmap {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for stage in STAGES:
        stage.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help/--version (0), or argparse refused an argument (2, after its message)
        return exc.code if isinstance(exc.code, int) else 2
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="dvmap: %(message)s")
    try:
        args.func(args)
    except DvmapError as exc:
        print(f"dvmap {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0


def run() -> None:
    """The console script: :func:`main`, then its status as the process's exit status."""
    exit_program(main())


if __name__ == "__main__":
    run()
