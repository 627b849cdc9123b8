"""Spec -> plan -> rendered, checked files: the pure stages in one call.

The command line, the Pulumi program and the local runtime all start here, so each
sees the same plan, the same files and the same warnings for a spec.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from infra.model.load import load_spec
from infra.model.plan import Plan
from infra.model.planner import build_plan
from infra.model.topology import DOCKER, Placement
from infra.problems import warning_line
from infra.render.files import Rendered, render


@dataclass(frozen=True)
class Built:
    """What the pure stages make of one spec: its plan, its checked files, its warnings."""

    plan: Plan
    rendered: Rendered
    warnings: list[str]


def build(spec_path: str, local_cores: int | None = None, placement: Placement = DOCKER) -> Built:
    """Raises InputError (one line per problem) for a spec Kafka or the plan refuses."""
    spec, warnings = load_spec(spec_path)
    cores = local_cores or os.cpu_count() or 1
    plan, plan_warnings = build_plan(spec, spec_path, cores, placement)
    rendered = render(plan, spec_path)
    lines = [warning_line(spec_path, w) for w in warnings + plan_warnings]
    return Built(plan, rendered, lines)
