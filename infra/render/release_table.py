"""What changes between two Kafka release lines, as a table for an operator upgrading."""

from __future__ import annotations

import json

from rich.markup import escape
from rich.table import Table

from consumers.properties import parse
from infra.kafka.catalog import ReleaseDiff
from infra.render.files import Rendered


def broker_keys(rendered: Rendered) -> set[str]:
    """Every key the rendered server.properties files set."""
    return {
        e.key
        for files in rendered.values()
        for f in files
        if f.name == "server.properties"
        for e in parse(f.content)
    }


def _shown(value: object) -> str:
    return escape(json.dumps(value)) if value is not None else "none"


def release_table(found: ReleaseDiff, old: str, new: str, keys: set[str] | None) -> Table:
    table = Table(
        title=f"Broker config from Kafka {old} to {new}" + (" (the spec's keys)" if keys else "")
    )
    for column in ("key", "change", f"in {old}", f"in {new}"):
        table.add_column(column, overflow="fold")
    wanted = (lambda key: key in keys) if keys is not None else (lambda key: True)
    for key in filter(wanted, found.removed):
        table.add_row(key, "[bold red]removed[/]", "defined", "refused by the checker")
    for key in filter(wanted, found.added):
        table.add_row(key, "added", "", "defined")
    for key, fields in found.changed.items():
        if wanted(key):
            for field, before, after in fields:
                table.add_row(key, field, _shown(before), _shown(after))
    return table
