"""What a running `up --local` left for the verbs that work on it: its inventory, and how
to reach its cluster as the admin."""

from __future__ import annotations

import json
from pathlib import Path

from consumers.settings import SettingsError, client_file
from infra.runtime.cluster import ClusterError


def running(out: Path) -> tuple[dict, dict[str, str]]:
    """The inventory under `out` and the admin's librdkafka settings (bootstrap included);
    a ClusterError, in one line, when no runtime left one there."""
    path = out / "inventory.json"
    try:
        inventory = json.loads(path.read_text())
        runtime = inventory["runtime"]
        admin_file = runtime["clients"].get("admin")
        login = client_file(admin_file) if admin_file else {}
        return inventory, {"bootstrap.servers": runtime["bootstrap_servers"], **login}
    except SettingsError as err:  # before ValueError, which it is
        raise ClusterError(f"{path}: the admin's client file: {err}") from None
    except (OSError, ValueError, KeyError, TypeError):
        raise ClusterError(
            f"no local runtime's inventory at {path}: start python -m infra up --local "
            f"SPEC --out {out}"
        ) from None
