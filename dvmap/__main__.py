"""``python -m dvmap``: the dvmap console script (``accelerate launch -m dvmap`` uses it)."""

from .cli import run

run()
