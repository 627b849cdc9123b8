"""The spec fuzzer: whatever file an operator points `check` at, the command ends with
exit 0 or 2, one line per problem naming the file, never a traceback, within bounded
time and memory.

Hypothesis mutates the example specs (values replaced by wrong types, huge, negative and
non-finite numbers; keys deleted and duplicated; files truncated; deep nesting; bytes
that are not UTF-8) and writes arbitrary YAML. Two runs in every `make test`: a fixed
seed and a fresh one. Inputs that once failed are kept in tests/unit/bad_specs/ with the
lines they must print.
"""

from __future__ import annotations

import contextlib
import io
import resource
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from infra.cli import main
from tests.conftest import EXAMPLE_SPECS

EXAMPLES = [yaml.safe_load(p.read_text()) for p in EXAMPLE_SPECS]
ODD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, -1, 10**12, 2**63, float("inf"), float("-inf"), float("nan"), 1e308]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["auto", "local", "kraft", "zookeeper", "4.1", "3.9", "7d", "50GiB", ""]),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=10))
ANY_YAML = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


def _paths(data, prefix=()):
    """Every (path, value) in a loaded spec."""
    yield prefix, data
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from _paths(value, (*prefix, i))


def _set(data, path, value):
    if not path:
        return value
    *parents, last = path
    target = data
    for part in parents:
        target = target[part]
    if value is _DELETE:
        del target[last]
    else:
        target[last] = value
    return data


_DELETE = object()


@st.composite
def mutated_spec(draw) -> bytes:
    data = yaml.safe_load(yaml.safe_dump(draw(st.sampled_from(EXAMPLES))))
    for _ in range(draw(st.integers(1, 4))):
        paths = [p for p, _ in _paths(data) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        kind = draw(st.sampled_from(["replace", "replace", "delete", "nest"]))
        value = {"replace": draw(ODD_VALUES), "delete": _DELETE}.get(kind)
        if kind == "nest":
            depth = draw(st.integers(1, 200))
            value = draw(ODD_VALUES)
            for _ in range(depth):
                value = [value]
        data = _set(data, path, value)
    text = yaml.safe_dump(data, allow_unicode=True).encode()
    tail = draw(st.sampled_from(["none", "truncate", "duplicate", "bytes"]))
    if tail == "truncate":
        text = text[: draw(st.integers(0, len(text)))]
    elif tail == "duplicate":
        lines = text.splitlines(keepends=True)
        at = draw(st.integers(0, len(lines)))
        text = b"".join(lines[:at] + lines[max(0, at - 1) : at] + lines[at:])
    elif tail == "bytes":
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.binary(min_size=1, max_size=4)) + text[at:]
    return text


def ends_in_one_line_per_problem(path: Path, content: bytes) -> None:
    path.write_bytes(content)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["check", str(path)])  # an exception here fails the test: a traceback
    assert code in (0, 2)
    lines = err.getvalue().splitlines()
    assert all(line.startswith(f"{path}: ") for line in lines), lines
    if code == 2:
        assert lines and out.getvalue() == ""


FUZZ = settings(
    max_examples=1000,
    deadline=5000,  # ms per example: a huge number must cost nothing
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
MAX_RSS_MB = 1024


def _within_memory() -> None:
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert peak_mb < MAX_RSS_MB, f"the checker's process grew to {peak_mb:.0f} MiB"


@FUZZ
@seed(20261201)
@given(content=st.one_of(mutated_spec(), ANY_YAML.map(lambda d: yaml.safe_dump(d).encode())))
def test_fixed_seed_every_spec_ends_in_exit_0_or_2_with_lines_naming_the_file(tmp_path, content):
    ends_in_one_line_per_problem(tmp_path / "fuzzed.yaml", content)
    _within_memory()


@FUZZ
@given(content=st.one_of(mutated_spec(), ANY_YAML.map(lambda d: yaml.safe_dump(d).encode())))
def test_fresh_seed_every_spec_ends_in_exit_0_or_2_with_lines_naming_the_file(tmp_path, content):
    ends_in_one_line_per_problem(tmp_path / "fuzzed.yaml", content)
    _within_memory()
