"""The ``voicebot`` command: run the bot, transcribe or speak from a shell, inspect jobs, config."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from bot import render
from bot.app import Core, run_bot, setup_logging
from bot.config import Config, load_config
from bot.errors import BotError, ConfigError
from bot.jobs.models import Job, JobState
from bot.models import Origin, VoiceClip
from bot.providers.registry import describe
from bot.status import render_job, user_state
from bot.text import ENGLISH

_LOGGER = logging.getLogger(__name__)
CLI = "cli"


class CliDeliverer:
    """Delivers CLI jobs to the waiting command; other CLI jobs (from an earlier, interrupted
    command) are marked delivered, their results stay readable with ``voicebot status``."""

    def __init__(self) -> None:
        self._waiting: dict[str, asyncio.Future[tuple[Job, VoiceClip | None]]] = {}

    def expect(self, job_id: str) -> asyncio.Future[tuple[Job, VoiceClip | None]]:
        """A future resolved with the finished job."""
        fut = self._waiting.setdefault(job_id, asyncio.get_running_loop().create_future())
        return fut

    async def deliver(self, job: Job, clip: VoiceClip | None) -> str | None:
        fut = self._waiting.get(job.id)
        if fut is not None and not fut.done():
            fut.set_result((job, clip))
        return None

    async def progress(self, job: Job) -> None:
        _LOGGER.info("job %s: %s", job.id, user_state(job))


def _parser(providers: Sequence[str] = ()) -> argparse.ArgumentParser:
    names = ", ".join(providers) if providers else "see voicebot check-config"
    provider_help = f"a provider instance from the config's providers: ({names})"
    p = argparse.ArgumentParser(
        prog="voicebot",
        description="Self-hosted voice bot for Telegram and Discord.",
    )
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        help="YAML config file (default: $VOICEBOT_CONFIG or ./config.yaml)",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("run", help="start the configured chat adapters and the job poller")
    t = sub.add_parser("transcribe", help="transcribe an audio file and print the transcript")
    t.add_argument("file", type=Path)
    t.add_argument("--provider", metavar="NAME", help=provider_help)
    t.add_argument("--model")
    t.add_argument("--language")
    t.add_argument("--diarize", action="store_true", default=None, help="label speakers")
    t.add_argument("--format", choices=("text", "srt", "vtt", "json"), default="text")
    s = sub.add_parser("speak", help="synthesize speech into an OGG/Opus voice file")
    s.add_argument("text")
    s.add_argument("-o", "--output", type=Path, required=True)
    s.add_argument("--provider", metavar="NAME", help=provider_help)
    s.add_argument("--model")
    s.add_argument("--voice")
    j = sub.add_parser("jobs", help="list recent jobs")
    j.add_argument("-n", "--limit", type=int, default=20)
    st = sub.add_parser("status", help="show one job")
    st.add_argument("job_id")
    sub.add_parser("check-config", help="validate the configuration and exit")
    db = sub.add_parser("db", help="database maintenance").add_subparsers(dest="db", required=True)
    cp = db.add_parser(
        "copy", help="copy everything to an empty database (e.g. SQLite → PostgreSQL)"
    )
    cp.add_argument("source", help="SQLite path or URL, or postgresql://… URL")
    cp.add_argument("target", help="an empty database: SQLite path or URL, or postgresql://…")
    return p


def _config_path(arg: Path | None) -> Path:
    if arg is not None:
        return arg
    return Path(os.environ.get("VOICEBOT_CONFIG") or "config.yaml")


async def _through_pipeline(
    core: Core, create: Callable[[], Awaitable[Job]]
) -> tuple[Job, VoiceClip | None]:
    """Create a job and run the same store + poller pipeline a chat job uses, until delivered."""
    deliverer = CliDeliverer()
    core.worker.register(CLI, deliverer)
    await core.worker.recover(core.clock())
    job = await create()
    _LOGGER.info("job %s created", job.id)
    finished = deliverer.expect(job.id)
    core.poller.start()
    try:
        return await finished
    finally:
        await core.poller.stop(timeout=5.0)


def _origin() -> Origin:
    try:
        user = getpass.getuser()
    except Exception:
        user = "local"
    return Origin(platform=CLI, chat_id="local", user_id=user)


async def _transcribe(core: Core, args: argparse.Namespace) -> int:
    try:
        data = args.file.read_bytes()
    except OSError as exc:
        raise BotError(f"cannot read {args.file}: {exc.strerror}") from exc
    job, _ = await _through_pipeline(
        core,
        lambda: core.service.transcribe(
            _origin(),
            data,
            args.file.name,
            provider=args.provider,
            model=args.model,
            language=args.language,
            diarize=args.diarize,
        ),
    )
    if job.state is JobState.FAILED or job.transcript is None:
        raise BotError(f"job {job.id} failed: {ENGLISH.render(job.error or '')}")
    transcript = job.transcript
    if args.format == "json":
        print(json.dumps({"job": job.id, **transcript.to_dict()}, ensure_ascii=False, indent=2))
        return 0
    if args.format in ("srt", "vtt"):
        text = render.to_srt(transcript) if args.format == "srt" else render.to_vtt(transcript)
        if text is None:
            raise BotError(
                f"{job.model} returned no timings, so there is no {args.format.upper()}; "
                "use --format text, or a model that returns timings"
            )
        print(text)
        return 0
    text = render.render_transcript(transcript, diarize=bool(job.options.get("diarize")))
    print(text or "(no speech detected)")
    return 0


async def _speak(core: Core, args: argparse.Namespace) -> int:
    job, clip = await _through_pipeline(
        core,
        lambda: core.service.speak(
            _origin(), args.text, voice=args.voice, provider=args.provider, model=args.model
        ),
    )
    if job.state is JobState.FAILED or clip is None:
        raise BotError(f"job {job.id} failed: {ENGLISH.render(job.error or '')}")
    try:
        args.output.write_bytes(clip.ogg)
    except OSError as exc:
        raise BotError(f"cannot write {args.output}: {exc.strerror}") from exc
    print(f"wrote {args.output} ({clip.duration:.1f} s OGG/Opus, job {job.id})")
    return 0


async def _jobs(core: Core, args: argparse.Namespace) -> int:
    jobs = await core.store.recent(args.limit)
    if not jobs:
        print("no jobs yet")
    now = core.clock()
    for job in jobs:
        where = f"{job.origin.platform}:{job.origin.chat_id}"
        age = render_job(job, now).splitlines()[1].removeprefix("age: ")
        print(f"{job.id}  {job.kind.value}  {user_state(job):<13} {age:>7} ago  {where}")
    return 0


async def _status(core: Core, args: argparse.Namespace) -> int:
    job = await core.store.get(args.job_id.strip().lower())
    if job is None:
        raise BotError(f"no job {args.job_id!r} (voicebot jobs lists them)")
    print(render_job(job, core.clock()))
    print(f"origin: {job.origin.platform} chat {job.origin.chat_id}")
    if job.transcript is not None:
        text = render.render_transcript(job.transcript, diarize=bool(job.options.get("diarize")))
        print("\n" + (text or "(no speech detected)"))
    return 0


def _configured_providers(argv: Sequence[str] | None) -> list[str]:
    """Instance names for ``--provider``'s help, when the config can be read (else none)."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", type=Path, default=None)
    known, _ = pre.parse_known_args(argv)
    try:
        return sorted(load_config(_config_path(known.config)).providers)
    except BotError:
        return []


def _check_provider(config: Config, args: argparse.Namespace) -> None:
    name = getattr(args, "provider", None)
    if name is not None and name not in config.providers:
        configured = ", ".join(sorted(config.providers))
        raise BotError(f"--provider {name}: no such provider instance (configured: {configured})")


def _check(config: Config) -> int:
    print("configuration OK")
    print(f"  database: {config.storage.path}")
    print("  providers:")
    routes = {"stt": config.stt.provider, "tts": config.tts.provider}
    for line in describe(config.providers, routes):
        print(f"    {line}")
    print(f"  speech-to-text: {config.stt.provider} / {config.stt.model}")
    print(f"  text-to-speech: {config.tts.provider} / {config.tts.model} ({config.tts.voice})")
    for note in (config.stt.note, config.tts.note):
        if note:
            print(f"  note: {note}")
    print(f"  telegram: {'on' if config.telegram.token else 'off (no token)'}")
    print(f"  discord: {'on' if config.discord.token else 'off (no token)'}")
    return 0


async def _with_core(config: Config, args: argparse.Namespace) -> int:
    handlers = {"transcribe": _transcribe, "speak": _speak, "jobs": _jobs, "status": _status}
    core = await Core.open(config)
    try:
        return await handlers[args.command](core, args)
    finally:
        await core.close()


def _db_copy(source: str, target: str) -> int:
    from bot.storage.copy import copy_database

    counts = asyncio.run(copy_database(source, target))
    print("copied " + ", ".join(f"{n} {table}" for table, n in counts.items()))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``voicebot`` console script; returns the exit code."""
    wants_help = any(a in ("-h", "--help") for a in (sys.argv[1:] if argv is None else argv))
    args = _parser(_configured_providers(argv) if wants_help else ()).parse_args(argv)
    setup_logging(None, "WARNING")
    try:
        if args.command == "db":
            return _db_copy(args.source, args.target)
        config = load_config(_config_path(args.config))
        setup_logging(config)
        if args.command in ("transcribe", "speak", "jobs", "status"):
            logging.getLogger().setLevel(max(logging.WARNING, logging.getLogger().level))
        if args.command == "check-config":
            return _check(config)
        _check_provider(config, args)
        if args.command == "run":
            from adapters import configured_adapters

            asyncio.run(run_bot(config, configured_adapters))
            return 0
        return asyncio.run(_with_core(config, args))
    except ConfigError as exc:
        print("voicebot: invalid configuration:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    except BotError as exc:
        print(f"voicebot: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
