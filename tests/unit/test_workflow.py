"""The GitHub workflow: tests on push and pull request, a provisioning run that always
sweeps and uploads its JUnit report, and a scheduled sweep."""

from __future__ import annotations

import yaml

from tests.conftest import REPO


def test_the_workflow_has_the_three_jobs():
    workflow = yaml.safe_load((REPO / ".github/workflows/provision.yml").read_text())
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as true
    assert set(triggers) == {"push", "pull_request", "schedule"}
    jobs = workflow["jobs"]
    assert any("make test" in step.get("run", "") for step in jobs["test"]["steps"])

    provision = jobs["provision"]["steps"]
    assert any(step.get("uses", "").startswith("pulumi/actions@") for step in provision)
    ci = next(step for step in provision if "infra ci" in step.get("run", ""))
    assert "specs/three-node-kraft.yaml" in ci["run"] and "--junit build/ci-junit.xml" in ci["run"]
    sweep = next(step for step in provision if "teardown --expired" in step.get("run", ""))
    upload = next(
        step for step in provision if step.get("uses", "").startswith("actions/upload-artifact")
    )
    assert sweep["if"] == upload["if"] == "always()"
    assert upload["with"]["path"] == "build/ci-junit.xml"

    assert jobs["sweep"]["if"] == "github.event_name == 'schedule'"
    assert any("teardown --expired" in step.get("run", "") for step in jobs["sweep"]["steps"])
