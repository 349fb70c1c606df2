"""Entry script for the `diffusion` experiment (the code lives in wow/experiments/diffusion.py):
`python experiments/diffusion.py [options]` is `wow run diffusion [options]`; --help lists the options."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's wow, not another install

from wow.experiments.diffusion import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
