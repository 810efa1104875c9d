"""The stt/tts routes: the instance each uses, its fallback while keyless, the start-up note."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from bot.providers.registry import (
    DEFAULT_PROVIDER,
    ROLE_NAMES,
    TTS,
    TYPES,
    ProviderConfig,
    ProviderType,
)

if TYPE_CHECKING:
    from bot.config.reader import Section


def read_route(
    root: Section, role: str, providers: Mapping[str, ProviderConfig], require_keys: bool = True
) -> tuple[Section, str, ProviderType | None, dict[str, str] | None, str | None]:
    """The ``stt``/``tts`` section, the instance it uses and that instance's type; when the
    configured instance has no key and a ``fallback`` is set, the fallback (its model/voice keys)
    and the note saying so."""
    sec = root.section(role)
    name = sec.get("provider", str, DEFAULT_PROVIDER) or DEFAULT_PROVIDER
    fallback = _read_fallback(sec)
    pc = providers.get(name)
    if pc is None:
        configured = ", ".join(sorted(providers)) or "none"
        sec.problems.append(
            f"{sec._key('provider')}: {name!r} is not an instance in providers: "
            f"(configured: {configured})"
        )
        return sec, name, None, None, None
    spec = TYPES[pc.type]
    if role not in spec.roles:
        offers = [n for n, p in providers.items() if role in TYPES[p.type].roles]
        sec.problems.append(
            f"{sec._key('provider')}: {name!r} (type {pc.type}) offers no {ROLE_NAMES[role]}; "
            f"instances that do: {', '.join(sorted(offers)) or 'none'}"
        )
    elif require_keys and (missing := pc.missing()) is not None:
        backup = providers.get(fallback.get("provider", "")) if fallback else None
        if fallback is None or backup is None or role not in TYPES[backup.type].roles:
            sec.problems.append(f"{missing}, needed by {sec._key('provider')}")
            if fallback is not None:
                sec.problems.append(
                    f"{sec._key('fallback.provider')}: not an instance offering {ROLE_NAMES[role]}"
                )
            return sec, name, spec, None, None
        hint = f"set {pc.key_hint} to use {name}" if pc.key_hint else f"give {name} an api_key"
        return sec, backup.name, TYPES[backup.type], fallback, hint
    return sec, name, spec, None, None


def _read_fallback(sec: Section) -> dict[str, str] | None:
    """``fallback: {provider, model, voice}``: the route to use while the provider has no key."""
    if sec.data.get("fallback") is None:
        sec.used.add("fallback")
        return None
    fb = sec.section("fallback")
    found = {k: fb.get(k, str, None) for k in ("provider", "model", "voice")}
    fb.finish()
    if not found["provider"]:
        sec.problems.append(f"{sec._key('fallback.provider')}: missing")
        return None
    return {k: v for k, v in found.items() if v}


def route_checks(
    sec: Section,
    role: str,
    pc: ProviderConfig | None,
    spec: ProviderType | None,
    used: tuple[str, str | None],
    note: str | None,
) -> str | None:
    """Problems of the chosen model/voice (the type's own check); returns the start-up note.

    A fallback that cannot work (extra not installed, no such voice) is no error: the other
    route may work and the hosted provider may get a key; the note says what is missing.
    """
    if pc is None or spec is None or role not in spec.roles:
        return note
    _path_errors(sec, role, spec, used, fallback=note is not None)
    missing = spec.missing_role_extra(role)
    problems = [missing] if missing else spec.route_problems(role, used[0], used[1], pc.settings)
    if note is None:
        sec.problems.extend(
            f"providers.{pc.name}: {p}, needed by {sec._key('provider')}" if p == missing else p
            for p in problems
        )
        return None
    if problems:
        return f"{role}: unavailable: {'; '.join(problems)}; or {note}"
    what = f"`{used[1]}`" if role == TTS else f"`{used[0]}`"
    return f"{role}: {pc.name} {what} ({spec.summary}); {note}"


def _path_errors(
    sec: Section, role: str, spec: ProviderType, used: tuple[str, str | None], *, fallback: bool
) -> None:
    """A model or voice given as a path that is not there is a configuration error, on a
    fallback route too: unlike a name, nothing will ever fetch it."""
    field_name = "model" if role != TTS else "voice"
    key = sec._key(f"fallback.{field_name}" if fallback else field_name)
    sec.problems.extend(f"{key}: {p}" for p in spec.path_problems(role, used[0], used[1]))
