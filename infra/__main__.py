"""`python -m infra`: the operator's command line (see infra/cli.py)."""

import sys

from infra.cli import main

sys.exit(main())
