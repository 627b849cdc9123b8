"""Reading a spec: `load_spec(path)` is the only place YAML is read.

It returns the spec and its warnings, or raises InputError with one line per problem:
the file, the field path (`nodes[1].cores`) and what was expected.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from infra.model.spec import Spec
from infra.model.spec_rules import check_spec, spec_warnings
from infra.problems import InputError, Problem, raise_if

try:  # libyaml's parser where PyYAML was built with it: several times faster
    from yaml import CSafeLoader as _SafeLoader
except ImportError:
    from yaml import SafeLoader as _SafeLoader  # type: ignore[assignment]


class _StrictLoader(_SafeLoader):
    """Safe YAML that refuses duplicate keys: PyYAML would silently keep the last one."""

    def construct_mapping(self, node, deep=False):
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _read_yaml(path: Path, source: str) -> Any:
    try:
        return yaml.load(path.read_bytes().decode(), Loader=_StrictLoader)
    except OSError as err:
        raise InputError(source, [Problem("", f"cannot read the spec: {err.strerror}")]) from None
    except UnicodeDecodeError as err:
        line = path.read_bytes()[: err.start].count(b"\n") + 1
        what = f"not UTF-8 text (byte 0x{err.object[err.start]:02x}); save the spec as UTF-8"
        raise InputError(source, [Problem(f"line {line}", what)]) from None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "YAML"
        what = f"{err.problem} ({err.context})" if err.context else f"{err.problem}"
        if "duplicate key" not in what:
            what += "; check the indentation and quoting there"
        raise InputError(source, [Problem(where, what)]) from None
    except yaml.YAMLError as err:
        raise InputError(source, [Problem("", f"not valid YAML: {err}")]) from None


# ------------------------------------------------------- error wording --


_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_.@-]+$")


def field_path(loc: tuple[Any, ...]) -> str:
    """`nodes[1].cores`; a key that is not plain text (empty, spaces, odd bytes) is quoted."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
            continue
        key = str(part) if _PLAIN_KEY.match(str(part)) else repr(str(part))
        path += f".{key}" if path else key
    return path


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    """The field names of the model at `loc` (for 'unknown key' hints)."""
    model: Any = Spec
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return []
        annotation = field.annotation
        args = getattr(annotation, "__args__", ())
        model = next((a for a in (annotation, *args) if isinstance(a, type)), None)
        if model is None or not issubclass(model, BaseModel):
            return []
    return list(model.model_fields)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _wording(error: ErrorDetails) -> Problem:
    loc, kind = tuple(error["loc"]), error["type"]
    if kind == "missing":
        return Problem(field_path(loc), "required")
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1, cutoff=0.75)
        hint = f"did you mean {close[0]}?" if close else f"expected one of: {', '.join(allowed)}"
        return Problem(field_path(loc), f"unknown key ({hint})")
    message = error["msg"].replace("Input should be", "must be").replace("Value error, ", "")
    if kind in ("int_type", "int_from_float"):
        message = "must be an integer"
    elif kind in ("greater_than_equal", "greater_than"):
        op = ">=" if kind == "greater_than_equal" else ">"
        message = f"must be {op} {error['ctx'].get('ge', error['ctx'].get('gt')):g}"
    elif kind == "too_short":
        message = "must have at least one entry"
    elif kind in ("model_type", "dict_type"):
        message = "must be a mapping of keys to values"
    return Problem(field_path(loc), f"{message}, got {_shown(error['input'])}")


def parse_spec(data: Any, source: str) -> tuple[Spec, list[Problem]]:
    """A spec from already-loaded data (YAML or a test's dict): (spec, warnings)."""
    if not isinstance(data, dict):
        got = "an empty file" if data is None else type(data).__name__
        raise InputError(
            source, [Problem("", f"must be a mapping with cluster and nodes, got {got}")]
        )
    try:
        spec = Spec.model_validate(data)
    except ValidationError as err:
        raise InputError(source, [_wording(e) for e in err.errors()]) from None
    raise_if(source, check_spec(spec))
    return spec, spec_warnings(spec)


def load_spec(path: str | Path) -> tuple[Spec, list[Problem]]:
    source = str(path)
    return parse_spec(_read_yaml(Path(path), source), source)
