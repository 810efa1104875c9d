"""Provider registry: named instances with a type, one construction place, schema per type."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import aiohttp
import pytest
import yaml

from bot.config.load import parse_config
from bot.model.errors import ConfigError
from bot.providers import registry
from bot.providers.registry import (
    STT,
    TYPES,
    Option,
    ProviderType,
    build_providers,
    describe,
    http_options,
)
from testkit.support import config_dict

ROOT = Path(__file__).resolve().parents[2]

ISSUE_EXAMPLE = """
providers:
  cantonese: {api_key: "${CANTONESE_API_KEY}"}
  groq:
    type: nanogpt
    base_url: https://api.groq.com/openai/v1
    api_key: "${GROQ_API_KEY}"
  homelab:
    type: nanogpt
    base_url: http://whisper.lan:8000/v1
    api_key: local
stt: {provider: groq, model: whisper-large-v3-turbo}
tts: {provider: homelab, model: kokoro, voice: af_bella}
"""


def problems_of(data: object, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(data, env=env or {})
    return "\n".join(info.value.problems)


def test_registry_named_instances_of_one_type() -> None:
    config = parse_config(yaml.safe_load(ISSUE_EXAMPLE), env={"GROQ_API_KEY": "gsk_test"})
    groq = config.providers["groq"]
    assert (groq.type, groq.base_url, groq.api_key) == (
        "nanogpt",
        "https://api.groq.com/openai/v1",
        "gsk_test",
    )
    assert config.providers["cantonese"].type == "cantonese"  # no type: its name is its type
    assert (config.stt.provider, config.stt.model) == ("groq", "whisper-large-v3-turbo")
    assert (config.tts.provider, config.tts.model, config.tts.voice) == (
        "homelab",
        "kokoro",
        "af_bella",
    )


def test_registry_old_config_keeps_its_meaning(tmp_path: Path) -> None:
    config = parse_config(config_dict(tmp_path), env={})
    assert {n: p.type for n, p in config.providers.items()} == {
        "nanogpt": "nanogpt",
        "cantonese": "cantonese",
    }
    # A config without a providers section still has the built-ins (with their defaults).
    bare = parse_config({"providers": {"nanogpt": {"api_key": "k"}}}, env={})
    assert bare.providers["cantonese"].base_url == "https://cantonese.ai"
    assert (bare.stt.provider, bare.stt.model, bare.tts.model) == (
        "nanogpt",
        "Whisper-Large-V3",
        "Kokoro-82m",
    )


def test_registry_route_defaults_come_from_the_type() -> None:
    data = {"providers": {"canto2": {"type": "cantonese", "api_key": "k"}}}
    data["stt"] = {"provider": "canto2"}
    data["tts"] = {"provider": "nanogpt"}
    data["providers"]["nanogpt"] = {"api_key": "k"}
    config = parse_config(data, env={})
    assert (config.stt.model, config.tts.model, config.tts.voice) == (
        "cantonese",
        "Kokoro-82m",
        "af_bella",
    )


def test_registry_bad_instances_are_named_with_their_key_path() -> None:
    text = problems_of(
        {
            "providers": {
                "nanogpt": {"api_key": "k"},
                "x": {"type": "whisperx"},
                "mystery": {"api_key": "k"},
                "oa": {"type": "nanogpt", "base_url": "ftp://x", "timeout": 0, "bogus": 1},
            },
            "tts": {"provider": "cantonese"},
        }
    )
    known = "cantonese, local, nanogpt, openai"
    assert f"providers.x.type: unknown type 'whisperx' (known: {known})" in text
    assert "providers.mystery: unknown provider; add `type:`" in text
    assert "providers.oa.base_url: must start with http:// or https://" in text
    assert "providers.oa.timeout: must be greater than 0" in text
    assert "providers.oa.bogus: unknown key" in text
    assert "tts.provider: 'cantonese' (type cantonese) offers no text-to-speech" in text


def test_registry_key_written_as_unset_env_var_is_reported_where_used() -> None:
    text = problems_of(yaml.safe_load(ISSUE_EXAMPLE))
    assert "providers.groq.api_key: missing (set GROQ_API_KEY), needed by stt.provider" in text
    # cantonese's key is unset too, but nothing uses it: not a problem.
    assert "cantonese" not in text


def test_registry_type_with_missing_extra_names_the_pip_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(
        TYPES,
        "local",
        ProviderType(
            name="local",
            factory="voicebot_no_such_module.engines:build",
            roles=frozenset({STT}),
            options=(Option("model_dir", str, None),),
            summary="test type",
            extra="local",
            requires=("voicebot_no_such_module",),
        ),
    )
    text = problems_of(
        {"providers": {"offline": {"type": "local"}}, "stt": {"provider": "offline"}}
    )
    assert "providers.offline: type 'local' needs `pip install voicebot[local]`" in text
    assert "voicebot_no_such_module" not in sys.modules  # checked, never imported


def test_registry_role_extra_is_required_only_for_the_role_a_route_uses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(
        TYPES,
        "engine",
        ProviderType(
            name="engine",
            factory="voicebot_no_such_module.engines:build",
            roles=frozenset({STT, "tts"}),
            options=(),
            summary="test type",
            role_extras={"tts": ("local-tts", ("voicebot_no_such_tts",))},
        ),
    )
    data = {"providers": {"nanogpt": {"api_key": "k"}, "box": {"type": "engine"}}}
    parse_config({**data, "stt": {"provider": "box"}}, env={})  # STT needs nothing extra
    text = problems_of({**data, "tts": {"provider": "box"}})
    assert text == (
        "providers.box: type 'engine' needs `pip install voicebot[local-tts]` for "
        "text-to-speech, needed by tts.provider"
    )


async def test_registry_builds_every_usable_instance_over_one_transport(
    session: aiohttp.ClientSession,
) -> None:
    config = parse_config(yaml.safe_load(ISSUE_EXAMPLE), env={"GROQ_API_KEY": "gsk_test"})
    stt, tts = build_providers(config.providers, session)
    # cantonese has no key: absent (the service names the missing key); nanogpt likewise.
    assert set(stt) == {"groq", "homelab"} and set(tts) == {"groq", "homelab"}
    assert stt["groq"].name == "groq" and tts["homelab"].name == "homelab"
    transports = {id(p._http.transport) for p in [*stt.values(), *tts.values()]}  # type: ignore[attr-defined]
    assert len(transports) == 1
    assert next(iter(stt.values()))._http.transport.session is session  # type: ignore[attr-defined]


def test_registry_describe_lists_type_host_and_routes() -> None:
    config = parse_config(yaml.safe_load(ISSUE_EXAMPLE), env={"GROQ_API_KEY": "gsk_test"})
    lines = describe(config.providers, {"stt": "groq", "tts": "homelab"})
    assert lines == [
        "cantonese: type cantonese, cantonese.ai, no API key; not used by stt/tts",
        "groq: type nanogpt, api.groq.com; speech-to-text",
        "homelab: type nanogpt, whisper.lan:8000; text-to-speech",
    ]
    assert not any("gsk_test" in line for line in lines)


def test_registry_http_options_are_not_forced_on_other_types() -> None:
    local = ProviderType(
        name="engine",
        factory="x:build",
        roles=frozenset({STT}),
        options=(Option("threads", int, 2, positive=True),),
        summary="no HTTP",
    )
    assert local.missing_extra() is None
    assert [o.name for o in http_options("http://x", "K")] == ["api_key", "base_url", "timeout"]


def test_registry_type_names_spelled_only_in_the_type_table() -> None:
    """Done-when of issue 10: no provider type is wired by name outside the registry."""
    allowed = {ROOT / "bot/providers" / f"{t}.py" for t in TYPES} | {
        Path(registry.__file__).resolve()
    }
    allowed |= {p for t in TYPES for p in (ROOT / "bot/providers" / t).glob("*.py")}  # packages
    # The CLI's own chat and user are called "local" (the machine it runs on), not a provider.
    cli_origin = re.compile(r"(user = |chat_id=)\"local\"")
    names = "|".join(TYPES)
    pattern = re.compile(rf"[\"']({names})[\"']")
    offenders = []
    for folder in ("bot", "adapters"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path.resolve() in allowed:
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if pattern.search(line) and not cli_origin.search(line):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []


OPENAI_EXAMPLE = """
providers:
  nanogpt: {api_key: "${NANOGPT_API_KEY}"}
  groq:
    type: openai
    base_url: https://api.groq.com/openai/v1
    api_key: "${GROQ_API_KEY}"
  homelab:
    type: openai
    base_url: http://whisper.lan:8000/v1     # no api_key: self-hosted servers often need none
stt: {provider: groq, model: whisper-large-v3-turbo}
tts: {provider: homelab, model: kokoro, voice: af_bella}
"""


async def test_registry_issue_example_with_openai_instances(
    session: aiohttp.ClientSession,
) -> None:
    config = parse_config(yaml.safe_load(OPENAI_EXAMPLE), env={"GROQ_API_KEY": "gsk_test"})
    assert config.providers["homelab"].type == "openai"
    assert config.providers["homelab"].api_key is None
    assert describe(config.providers, {"stt": "groq", "tts": "homelab"}) == [
        "groq: type openai, api.groq.com; speech-to-text",
        "homelab: type openai, whisper.lan:8000, no API key; text-to-speech",
        "nanogpt: type nanogpt, nano-gpt.com, no API key; not used by stt/tts",
    ]
    stt, tts = build_providers(config.providers, session)
    assert set(stt) == {"groq", "homelab"} and set(tts) == {"groq", "homelab"}
    text = problems_of(yaml.safe_load(OPENAI_EXAMPLE))
    assert text == "providers.groq.api_key: missing (set GROQ_API_KEY), needed by stt.provider"


def test_registry_openai_defaults_and_limits() -> None:
    data = {"providers": {"oa": {"type": "openai", "api_key": "k"}}, "stt": {"provider": "oa"}}
    data["tts"] = {"provider": "oa"}
    config = parse_config(data, env={})
    assert (config.stt.model, config.tts.model, config.tts.voice) == (
        "whisper-1",
        "gpt-4o-mini-tts",
        "alloy",
    )
    oa = config.providers["oa"]
    assert oa.base_url == "https://api.openai.com/v1"
    assert oa.settings["max_upload_bytes"] == 25 * 1024 * 1024
    bad = {"providers": {"oa": {"type": "openai", "max_chars": 0, "voices": "alloy"}}}
    text = problems_of(bad)
    assert "providers.oa.max_chars: must be greater than 0" in text
    assert "providers.oa.voices: expected a list of names, got 'alloy'" in text


def test_registry_readme_provider_entries_are_valid_config() -> None:
    # The README links to these ready-to-copy entries, in docs/providers.md.
    section = (ROOT / "docs" / "providers.md").read_text()
    block = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    env = {"OPENAI_API_KEY": "sk", "GROQ_API_KEY": "gsk", "NANOGPT_API_KEY": "nk"}
    config = parse_config(yaml.safe_load(block), env=env)
    assert {n: p.type for n, p in config.providers.items() if p.declared} == {
        "openai": "openai",
        "groq": "openai",
        "speaches": "openai",
        "localai": "openai",
        "nano-v1": "openai",
    }
    assert config.providers["localai"].api_key is None  # ${LOCALAI_API_KEY:-}: no key
    assert (config.stt.provider, config.tts.provider) == ("groq", "speaches")
