"""Entry script for the `dd_momentum` experiment (the code lives in wow/experiments/dd_momentum.py):
`python experiments/dd_momentum.py [options]` is `wow run dd_momentum [options]`; --help lists the options."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's wow, not another install

from wow.experiments.dd_momentum import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
