"""Entry script for the `elastic_fraction` experiment (the code lives in wow/experiments/elastic_fraction.py):
`python experiments/elastic_fraction.py [options]` is `wow run elastic_fraction [options]`; --help lists the options."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's wow, not another install

from wow.experiments.elastic_fraction import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
