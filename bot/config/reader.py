"""Reading one YAML mapping: ${VAR} expansion, typed keys, every problem kept with its key path."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import yaml

T = TypeVar("T")

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
MISSING = object()
"""What :meth:`Section.raw` returns for an absent key (or one whose ${VAR} is unset)."""


def expand_env(text: str, env: Mapping[str, str]) -> tuple[str, list[str]]:
    """Expand ``${VAR}`` and ``${VAR:-default}``; return the text and the unset variables."""
    missing: list[str] = []

    def sub(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        value = env.get(name)
        if value:
            return value
        if default is not None:
            return default
        missing.append(name)
        return ""

    return _VAR.sub(sub, text), missing


class Section:
    """Reads one mapping, recording every problem with its key path instead of stopping."""

    def __init__(self, data: Any, path: str, problems: list[str], env: Mapping[str, str]) -> None:
        self.path = path
        self.problems = problems
        self.env = env
        self.hints: dict[str, str] = {}
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            problems.append(f"{path}: expected a mapping, got {type(data).__name__}")
            data = {}
        self.data: Mapping[str, Any] = data
        self.used: set[str] = set()

    def _key(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def raw(self, key: str) -> Any:
        self.used.add(key)
        value = self.data.get(key, MISSING)
        if isinstance(value, str):
            value, missing = expand_env(value, self.env)
            if missing:
                self.hints[key] = ", ".join(missing)
                if not value:
                    return MISSING
        return value

    def get(
        self, key: str, kind: type[T], default: T | None, *, required: bool = False
    ) -> T | None:
        value = self.raw(key)
        if value is MISSING or value is None or value == "":
            if required:
                hint = f" (set {self.hints[key]})" if key in self.hints else ""
                self.problems.append(f"{self._key(key)}: missing{hint}")
            return default
        return self.coerce(key, value, kind, default)

    def coerce(self, key: str, value: Any, kind: type[T], default: T | None) -> T | None:
        converters: dict[type[Any], Callable[[Any], Any]] = {
            bool: _to_bool,
            int: _to_int,
            float: _to_float,
            str: _to_str,
        }
        try:
            return converters[kind](value)  # type: ignore[no-any-return]
        except (TypeError, ValueError):
            self.problems.append(f"{self._key(key)}: expected {kind.__name__}, got {value!r}")
            return default

    def section(self, key: str) -> Section:
        self.used.add(key)
        return Section(self.data.get(key), self._key(key), self.problems, self.env)

    def finish(self) -> None:
        for key in sorted(set(self.data) - self.used):
            self.problems.append(f"{self._key(str(key))}: unknown key")


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {
        "true",
        "yes",
        "on",
        "1",
        "false",
        "no",
        "off",
        "0",
    }:
        return value.lower() in {"true", "yes", "on", "1"}
    raise ValueError(value)


def _to_int(value: Any) -> int:
    if isinstance(value, (bool, float)):
        raise ValueError(value)
    return int(value)


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(value)
    return float(value)


def _to_str(value: Any) -> str:
    if isinstance(value, (Mapping, list, bool)):
        raise ValueError(value)
    return str(value)


def positive(section: Section, key: str, value: float | None) -> None:
    if value is not None and value <= 0:
        section.problems.append(f"{section._key(key)}: must be greater than 0")


def read_choice(sec: Section, key: str, default: str, choices: tuple[str, ...]) -> str:
    value = sec.get(key, str, default) or default
    if value not in choices:
        sec.problems.append(f"{sec._key(key)}: must be one of {', '.join(choices)}, got {value!r}")
    return value


def yaml_problem(exc: yaml.YAMLError) -> str:
    """Where and why PyYAML refused a document, worded for a person who opens the file.

    The problem mark is where the parser gave up, often a line after the mistake (an unclosed
    ``[`` or quote is only noticed at the next key), so the context mark (where the unclosed
    construct began) is named too.
    """
    if not isinstance(exc, yaml.MarkedYAMLError) or exc.problem_mark is None:
        return f": {exc}"
    text = f" at {_where(exc.problem_mark)}: {exc.problem or 'syntax error'}"
    if exc.context:
        start = f" that starts at {_where(exc.context_mark)}" if exc.context_mark else ""
        text += f" ({exc.context}{start})"
    return text


def _where(mark: yaml.Mark) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}"
