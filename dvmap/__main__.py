"""``python -m dvmap``: the dvmap console script (``accelerate launch -m dvmap`` uses it)."""

import sys

from .cli import main

sys.exit(main())
