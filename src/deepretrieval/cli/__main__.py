"""``python -m deepretrieval.cli``: the ``deepretrieval`` command."""

import sys

from deepretrieval.cli import main

sys.exit(main())
