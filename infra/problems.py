"""Problems found in operator input, reported the same way by every stage.

Each problem is one line for the operator: where (spec file, field path or rendered
file and key), what, and what was expected. Stages collect every problem they can
find before failing, so one run shows the whole list instead of one error at a time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Characters str.splitlines() breaks at, shown as escapes so a problem stays one line.
_ONE_LINE = {ord(c): repr(c)[1:-1] for c in "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"}


@dataclass(frozen=True)
class Problem:
    path: str  # field path in the spec (`nodes[1].cores`) or `<node>/<file>: <key>`
    message: str

    def line(self, source: str) -> str:
        """One line, whatever the input held: line breaks in a value are shown escaped."""
        text = (
            f"{source}: {self.path}: {self.message}" if self.path else f"{source}: {self.message}"
        )
        return text.translate(_ONE_LINE)


@dataclass
class Found:
    """What a rules pass found: problems refuse the input, warnings only inform."""

    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    def __add__(self, other: Found) -> Found:
        return Found(self.problems + other.problems, self.warnings + other.warnings)


class InputError(Exception):
    """Bad operator input: the CLI prints each problem as one line and exits 2."""

    def __init__(self, source: str, problems: list[Problem]):
        self.source = source
        self.problems = problems
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        return [p.line(self.source) for p in self.problems]


EXIT_BAD_INPUT = 2  # every verb's exit code for bad input


def raise_if(source: str, problems: list[Problem]) -> None:
    if problems:
        raise InputError(source, problems)


def warning_line(source: str, problem: Problem) -> str:
    return problem.line(f"{source}: warning")
