"""Entry script for the `fit_alpha` experiment (the code lives in wow/experiments/fit_alpha.py):
`python experiments/fit_alpha.py [options]` is `wow run fit_alpha [options]`; --help lists the options."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's wow, not another install

from wow.experiments.fit_alpha import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
