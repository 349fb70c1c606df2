"""Entry script for the `troisi_orlandi` experiment (the code lives in wow/experiments/troisi_orlandi.py):
`python experiments/troisi_orlandi.py [options]` is `wow run troisi_orlandi [options]`; --help lists the options."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's wow, not another install

from wow.experiments.troisi_orlandi import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
