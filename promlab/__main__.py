"""``python -m promlab``: the same as the ``promlab`` command."""

import sys

from promlab.cli import main

sys.exit(main())
