"""The bad-spec corpus: each file under bad_specs/ states the exact lines it must produce.

A file's `# expect:` header lines are the whole of stderr, in order, with `{spec}` for
the path given on the command line; stdout stays empty and the exit code is 2.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO

CORPUS = sorted((REPO / "tests/unit/bad_specs").glob("*.yaml"))


def expected_lines(path) -> list[str]:
    rel = str(path.relative_to(REPO))
    return [
        line.removeprefix("# expect: ").replace("{spec}", rel)
        for line in path.read_bytes().decode(errors="replace").splitlines()
        if line.startswith("# expect: ")
    ]


def test_the_corpus_is_large_enough_and_every_file_states_its_lines():
    assert len(CORPUS) >= 25
    assert all(expected_lines(p) for p in CORPUS)


@pytest.mark.parametrize("verb", ["check", "plan", "render"])
@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_bad_spec_gives_its_exact_lines_and_exit_2(cli, tmp_path, path, verb):
    args = [verb, str(path.relative_to(REPO))] + (
        ["--out", str(tmp_path)] if verb == "render" else []
    )
    code, out, err = cli(*args)
    assert (code, out) == (2, "")
    assert err.splitlines() == expected_lines(path)
    assert not any(tmp_path.iterdir()), "a bad spec must write nothing"


def test_a_bad_spec_never_shows_a_traceback_from_the_real_command():
    path = REPO / "tests/unit/bad_specs/cores-not-a-number.yaml"
    result = subprocess.run(
        [sys.executable, "-m", "infra", "check", str(path.relative_to(REPO))],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == expected_lines(path)


def test_a_missing_spec_file_is_one_line(cli):
    code, out, err = cli("check", "specs/does-not-exist.yaml")
    assert (code, out) == (2, "")
    assert err == "specs/does-not-exist.yaml: cannot read the spec: No such file or directory\n"
