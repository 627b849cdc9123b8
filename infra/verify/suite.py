"""`python -m infra verify`: run the live suite (tests/infra) and show one table.

The suite runs in its own pytest process against the inventory's hosts and writes
JUnit XML; each test records node, check, expected and actual, which become the
table's rows. Exit 1 when any check failed; checks the target cannot answer are shown
as not run, with the reason.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from infra.problems import EXIT_BAD_INPUT

REPO = Path(__file__).resolve().parents[2]
WIDTH = 36


def _short(text: str) -> str:
    return text if len(text) <= WIDTH else text[: WIDTH - 1] + "…"


def results(junit: Path) -> list[dict[str, str]]:
    rows = []
    for case in ET.parse(junit).iter("testcase"):
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        outcome, detail = "passed", ""
        for tag in ("failure", "error", "skipped"):
            found = case.find(tag)
            if found is not None:
                outcome = {"failure": "FAILED", "error": "ERROR", "skipped": "not run"}[tag]
                detail = (found.get("message") or "").removeprefix("not run: ")
        rows.append(
            {
                "node": props.get("node", ""),
                "check": props.get("check", case.get("name", "")),
                "expected": props.get("expected", ""),
                "actual": detail if outcome in ("not run", "ERROR") else props.get("actual", ""),
                "result": outcome,
            }
        )
    return rows


def table(rows: list[dict[str, str]]) -> Table:
    view = Table(title="verification")
    styles = {"passed": "green", "FAILED": "bold red", "ERROR": "bold red", "not run": "yellow"}
    for column in ("node", "check", "expected", "actual", "result"):
        view.add_column(column, overflow="fold")
    for row in rows:
        view.add_row(  # what the target said is text, never markup
            escape(row["node"]),
            escape(row["check"]),
            escape(_short(row["expected"])),
            escape(_short(row["actual"])),
            f"[{styles[row['result']]}]{row['result']}[/]",
        )
    return view


def _readable(inventory: Path) -> str | None:
    """Why the inventory cannot be verified against, or None."""
    try:
        data = json.loads(inventory.read_text())
    except OSError as err:
        return f"cannot read it: {err.strerror}"
    except json.JSONDecodeError as err:
        return f"not JSON: {err}"
    if not isinstance(data, dict) or not {"cluster", "nodes", "topics", "groups"} <= set(data):
        return "not an inventory (python -m infra plan SPEC --inventory writes one)"
    return None


def verify(
    inventory: Path | None,
    stack: str | None,
    junit: Path,
    console: Console,
    settle_s: float | None = None,
) -> int:
    """Run the suite; the table shows this run's results or none (never an older file's).
    `settle_s`: how long a converging check waits (the suite's default when None)."""
    if inventory is not None and (why := _readable(inventory)):
        print(f"verify: --inventory {inventory}: {why}", file=sys.stderr)
        return EXIT_BAD_INPUT
    target = ["--stack", stack] if stack else ["--inventory", str(inventory)]
    if settle_s is not None:
        target += ["--settle", str(settle_s)]
    junit.unlink(missing_ok=True)
    console.print(f"verifying {stack or inventory} (one line per check):")
    completed = subprocess.run(
        [
            sys.executable, "-m", "pytest", "tests/infra", *target, "-q", "-p", "no:cacheprovider",
            "-o", "junit_family=xunit1", f"--junitxml={junit}",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,  # pytest's own summary: shown only when the suite cannot run
        text=True,
    )  # fmt: skip
    if not junit.exists() or completed.returncode in (2, 3, 4):  # could not start or collect
        said = [line for line in completed.stdout.splitlines() if line.strip()]
        errors = [line for line in said if "Error" in line or line.startswith("E ")]
        print(
            f"verify: the suite could not run: {(errors or said or ['no output'])[-1]}",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    rows = results(junit)
    console.print(table(rows))
    counts = {
        k: sum(r["result"] == k for r in rows) for k in ("passed", "FAILED", "ERROR", "not run")
    }
    console.print(
        f"{counts['passed']} passed, {counts['FAILED'] + counts['ERROR']} failed, "
        f"{counts['not run']} not run; JUnit XML: {junit}"
    )
    return 1 if counts["FAILED"] or counts["ERROR"] else 0


def inventory_file(inventory_json: str) -> Path:
    """An inventory (a spec's, a stack's output) as the file the suite reads."""
    path = Path(tempfile.mkdtemp(prefix="verify-")) / "inventory.json"
    path.write_text(inventory_json)
    return path
