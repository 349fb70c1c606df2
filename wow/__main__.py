"""``python -m wow ...`` is the ``wow`` command."""

import sys

from .cli import main

sys.exit(main())
