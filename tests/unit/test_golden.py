"""Golden files: every example spec's rendered files, plan and inventory, reviewed like code.

After an intended change: `UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/unit/test_golden.py`,
then read the diff of tests/unit/golden/ before committing it.
"""

from __future__ import annotations

import os

import pytest

from infra.build import build
from infra.render.inventory import inventory_json
from tests.conftest import EXAMPLE_SPECS, REPO, TEST_LOCAL_CORES

GOLDEN = REPO / "tests/unit/golden"


def produced(spec_path) -> dict[str, str]:
    result = build(str(spec_path.relative_to(REPO)), local_cores=TEST_LOCAL_CORES)
    files = {f"{node}/{f.name}": f.content for node, fs in result.rendered.items() for f in fs}
    files["plan.json"] = result.plan.to_json()
    files["inventory.json"] = inventory_json(result.plan, result.rendered)
    return files


@pytest.mark.parametrize("spec_path", EXAMPLE_SPECS, ids=lambda p: p.stem)
def test_rendered_files_match_the_golden_copies(spec_path):
    folder = GOLDEN / spec_path.stem
    files = produced(spec_path)
    if os.environ.get("UPDATE_GOLDEN") == "1":
        for name, content in files.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(content)
    on_disk = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}
    assert on_disk == set(files), "golden files missing or left over"
    for name, content in files.items():
        assert (folder / name).read_text() == content, f"{spec_path.stem}/{name} differs"
