"""The entry point `pulumi up` runs (Pulumi.yaml: main: infra/provision/program/).

Pulumi executes this directory with runpy, which puts only this directory on
sys.path; the repository root is added so the `infra` and `consumers` packages import.
`python -m infra` stays the operator's command line.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from infra.provision.stack import provision

provision()
