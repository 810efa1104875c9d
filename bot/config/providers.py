"""The ``providers:`` section: each named instance read with its type's schema."""

from __future__ import annotations

import re
from typing import Any

from bot.config.reader import MISSING, Section, positive
from bot.providers.registry import TYPES, Option, ProviderConfig

_INSTANCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")


def _read_provider(root: Section, name: str) -> ProviderConfig | None:
    """Read one instance with its type's schema (``type`` defaults to the instance's name)."""
    sec = root.section(name)
    kind = sec.get("type", str, None) or name
    spec = TYPES.get(kind)
    if not _INSTANCE_NAME.match(name):
        sec.problems.append(f"{sec.path}: a name is letters, digits, '_', '-' or '.'")
    if spec is None:
        known = ", ".join(sorted(TYPES))
        if "type" in sec.data:
            sec.problems.append(f"{sec._key('type')}: unknown type {kind!r} (known: {known})")
        else:
            sec.problems.append(f"{sec.path}: unknown provider; add `type:` (one of {known})")
        return None
    settings = {opt.name: _read_option(sec, opt) for opt in spec.options}
    if (problem := spec.missing_extra()) is not None:
        sec.problems.append(f"{sec.path}: {problem}")
    sec.finish()
    key_env = next((o.env for o in spec.options if o.name == "api_key"), None)
    return ProviderConfig(
        name=name,
        type=kind,
        settings=settings,
        key_hint=sec.hints.get("api_key", key_env),
        key_unset="api_key" in sec.hints,
        declared=name in root.data,
    )


def _read_option(sec: Section, opt: Option) -> Any:
    if opt.kind is list:
        raw = sec.raw(opt.name)
        if raw is MISSING or raw is None:
            return tuple(opt.default or ())
        if not isinstance(raw, list) or not all(isinstance(i, str | int | float) for i in raw):
            sec.problems.append(f"{sec._key(opt.name)}: expected a list of names, got {raw!r}")
            return tuple(opt.default or ())
        return tuple(str(i) for i in raw)
    value = sec.get(opt.name, opt.kind, opt.default)
    if opt.positive:
        positive(sec, opt.name, value)
    if opt.choices and value is not None and value not in opt.choices:
        sec.problems.append(
            f"{sec._key(opt.name)}: must be one of {', '.join(opt.choices)}, got {value!r}"
        )
    if opt.url and isinstance(value, str):
        value = value.rstrip("/")
        if not value.startswith(("http://", "https://")):
            sec.problems.append(f"{sec._key(opt.name)}: must start with http:// or https://")
    return value


def read_providers(root: Section) -> dict[str, ProviderConfig]:
    """Every configured instance, plus the built-in types older configs use without a section."""
    prov = root.section("providers")
    providers: dict[str, ProviderConfig] = {}
    for name in prov.data:
        pc = _read_provider(prov, str(name))
        if pc is not None:
            providers[pc.name] = pc
    for kind, spec in TYPES.items():
        if spec.implicit and kind not in providers:
            implicit = _read_provider(Section({}, "providers", [], root.env), kind)
            if implicit is not None:
                providers[kind] = implicit
    prov.finish()
    return providers
