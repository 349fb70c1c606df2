"""Entry script for the `table1` experiment (the code lives in wow/experiments/table1.py):
`python experiments/table1.py [options]` is `wow run table1 [options]`; --help lists the options."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's wow, not another install

from wow.experiments.table1 import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
