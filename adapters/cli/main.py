"""The ``voicebot`` command: run the bot, transcribe or speak from a shell, inspect jobs, config."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import importlib.metadata
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from adapters import load_platform_config
from adapters.cli.check import check_config
from adapters.cli.exits import (
    EXIT_CODES,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    UsageError,
    exit_now_if_engines_linger,
    positive_int,
    refused_as_usage,
)
from adapters.cli.models import (
    MODELS_HELP,
    for_operator,
    models_arguments,
    models_command,
    voice_file,
)
from adapters.cli.serve import run as serve
from adapters.cli.watch import CliDeliverer, Interrupted, ProgressLine, wait_for_job
from bot.app.core import Core, setup_logging
from bot.chat import render
from bot.chat.status import render_job, user_state
from bot.config.load import Config
from bot.jobs.routing import JobProviders
from bot.model.errors import BotError, ConfigError, InputError
from bot.model.job import Job, JobState
from bot.model.speech import Origin, VoiceClip
from bot.text import ENGLISH

_LOGGER = logging.getLogger(__name__)
CLI = "cli"


def _parser(providers: Sequence[str] = ()) -> argparse.ArgumentParser:
    names = ", ".join(providers) if providers else "see voicebot check-config"
    provider_help = f"a provider instance from the config's providers: ({names})"

    # --config is accepted before or after the command: each level has its own copy (parents
    # share action objects), the command-level default is SUPPRESS so it never overwrites a value
    # given before the command.
    def common(default: object) -> argparse.ArgumentParser:
        parent = argparse.ArgumentParser(add_help=False)
        parent.add_argument(
            "--config",
            type=Path,
            default=default,
            metavar="PATH",
            help="YAML config file (default: $VOICEBOT_CONFIG or ./config.yaml)",
        )
        return parent

    p = argparse.ArgumentParser(
        prog="voicebot",
        description="Self-hosted voice bot for Telegram and Discord.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common(None)],
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = p.add_subparsers(
        dest="command",
        required=True,
        metavar="COMMAND",
        help="what to do (COMMAND --help for more)",
    )

    def command(
        name: str, text: str, group: argparse._SubParsersAction[argparse.ArgumentParser] = sub
    ) -> argparse.ArgumentParser:
        return group.add_parser(
            name,
            help=text,
            description=text,
            parents=[common(argparse.SUPPRESS)],
            epilog=EXIT_CODES,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    command("run", "start the configured chat adapters and the job poller")
    t = command(
        "transcribe",
        "transcribe an audio file, or the recording at an http(s) link, and print the transcript",
    )
    t.add_argument(
        "file",
        metavar="FILE_OR_URL",
        help="audio file (any format FFmpeg reads), or an http(s) link to a recording or a page "
        "with one (downloaded first, with progress; the config's links: section says which "
        "links are allowed)",
    )
    t.add_argument("--provider", metavar="NAME", help=provider_help)
    t.add_argument("--model", help="model name (default: stt.model)")
    t.add_argument("--language", help="language code such as en or yue (default: stt.language)")
    t.add_argument("--diarize", action="store_true", default=None, help="label speakers")
    t.add_argument(
        "--format",
        choices=("text", "srt", "vtt", "json"),
        default="text",
        help="output format (default: text)",
    )
    _wait_options(t)
    s = command("speak", "synthesize speech into an OGG/Opus voice file")
    s.add_argument("text", help="the text to speak")
    s.add_argument("-o", "--output", type=Path, required=True, help="where to write the .ogg file")
    s.add_argument("--provider", metavar="NAME", help=provider_help)
    s.add_argument("--model", help="model name (default: tts.model)")
    s.add_argument("--voice", help="voice name, or the path of a voice file (default: tts.voice)")
    _wait_options(s)
    j = command("jobs", "list recent jobs (no provider key needed)")
    j.add_argument("-n", "--limit", type=positive_int, default=20, help="how many (default: 20)")
    st = command("status", "show one job (no provider key needed)")
    st.add_argument("job_id", help="job id as shown by 'voicebot jobs' or in chat")
    command("check-config", "validate the configuration, token shapes and model names, then exit")
    models_arguments(command("models", MODELS_HELP))
    db = command("db", "database maintenance (no config or provider key needed)")
    tools = db.add_subparsers(
        dest="db_command", required=True, metavar="ACTION", help="what to do (ACTION --help)"
    )
    cp = command(
        "copy",
        "copy every job, audio, chat setting and learned speed to an empty database "
        "(e.g. SQLite to PostgreSQL); stop 'voicebot run' first",
        tools,
    )
    cp.add_argument("source", help="SQLite path or sqlite:/// URL, or postgresql:// URL")
    cp.add_argument("target", help="an empty database, given the same way as SOURCE")
    return p


def _wait_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--give-up",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="stop retrying a provider that cannot be reached after this long (default: 60)",
    )
    p.add_argument(
        "--no-progress",
        action="store_true",
        help="no live progress line on stderr (it is only shown on a terminal anyway)",
    )


def _version() -> str:
    try:
        return importlib.metadata.version("voicebot")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _config_path(arg: Path | None) -> Path:
    if arg is not None:
        return arg
    return Path(os.environ.get("VOICEBOT_CONFIG") or "config.yaml")


async def _through_pipeline(
    core: Core, args: argparse.Namespace, create: Callable[[], Awaitable[Job]]
) -> tuple[Job, VoiceClip | None]:
    """Create a job and run the same store + poller pipeline a chat job uses, until delivered
    (or cancelled by Ctrl-C, or given up on an unreachable provider)."""
    deliverer = CliDeliverer(clock=core.clock, give_up=args.give_up)
    core.worker.register(CLI, deliverer)
    await core.worker.recover(core.clock())
    job = await refused_as_usage(create())
    _LOGGER.info("job %s created", job.id)
    finished = deliverer.expect(job.id)
    if sys.stderr.isatty() and not args.no_progress:
        deliverer.line = ProgressLine(core.store, core.schedule.eta, core.clock, sys.stderr)
    core.poller.start()
    try:
        return await wait_for_job(
            core.store, job, finished, deliverer.line, core.clock, free=_free(core, job)
        )
    finally:
        await core.poller.stop(timeout=5.0)


def _free(core: Core, job: Job) -> bool:
    """Whether ``job``'s engine charges nothing for it (a local one: running it again is free)."""
    try:
        return JobProviders(core.stt, core.tts).capabilities(job).rerun_when_lost
    except (KeyError, BotError):
        return False


def _origin() -> Origin:
    try:
        user = getpass.getuser()
    except Exception:
        user = "local"
    return Origin(platform=CLI, chat_id="local", user_id=user)


def _is_link(source: str) -> bool:
    return source.lower().startswith(("http://", "https://"))


def _create_stt(core: Core, args: argparse.Namespace) -> Callable[[], Awaitable[Job]]:
    """How the transcription job is created: from a link (downloaded by the job) or a file."""
    chosen: dict[str, Any] = {
        "provider": args.provider,
        "model": args.model,
        "language": args.language,
        "diarize": args.diarize,
        "timings": args.format in ("srt", "vtt"),
    }
    if _is_link(args.file):
        return lambda: core.service.transcribe_link(_origin(), args.file, **chosen)
    path = Path(args.file)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BotError(f"cannot read {path}: {exc.strerror}") from exc
    return lambda: core.service.transcribe(_origin(), data, path.name, **chosen)


async def _transcribe(core: Core, args: argparse.Namespace) -> int:
    job, _ = await _through_pipeline(core, args, _create_stt(core, args))
    if job.state is JobState.FAILED or job.transcript is None:
        raise BotError(f"job {job.id} failed: {for_operator(ENGLISH.render(job.error or ''))}")
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
        args,
        lambda: core.service.speak(
            _origin(),
            args.text,
            voice=voice_file(args.voice),
            provider=args.provider,
            model=args.model,
        ),
    )
    if job.state is JobState.FAILED or clip is None:
        raise BotError(f"job {job.id} failed: {for_operator(ENGLISH.render(job.error or ''))}")
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
        return sorted(load_platform_config(_config_path(known.config)).providers)
    except BotError:
        return []


def _check_provider(config: Config, args: argparse.Namespace) -> None:
    name = getattr(args, "provider", None)
    if name is not None and name not in config.providers:
        configured = ", ".join(sorted(config.providers))
        raise UsageError(f"--provider {name}: no such provider instance (configured: {configured})")


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
    """Entry point of the ``voicebot`` console script; returns the exit code (see EXIT_CODES)."""
    wants_help = any(a in ("-h", "--help") for a in (sys.argv[1:] if argv is None else argv))
    args = _parser(_configured_providers(argv) if wants_help else ()).parse_args(argv)
    setup_logging(None, "WARNING")
    try:
        if args.command == "db":
            # Copies between the two databases named: no config, so no provider key needed.
            return _db_copy(args.source, args.target)
        # Reading the local database needs no provider key.
        keys = args.command not in ("jobs", "status")
        config = load_platform_config(_config_path(args.config), require_keys=keys)
        setup_logging(config)
        if args.command in ("transcribe", "speak", "jobs", "status"):
            logging.getLogger().setLevel(max(logging.WARNING, logging.getLogger().level))
        if args.command == "check-config":
            return check_config(config)
        if args.command == "models":
            return models_command(config, args.action, progress=not args.no_progress)
        _check_provider(config, args)
        if args.command == "run":
            return serve(config)
        return asyncio.run(_with_core(config, args))
    except ConfigError as exc:
        print("voicebot: invalid configuration:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_USAGE
    except UsageError as exc:
        print(f"voicebot: {args.command}: {for_operator(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except Interrupted as exc:
        print(f"voicebot: {exc}", file=sys.stderr)
        exit_now_if_engines_linger(EXIT_INTERRUPTED)
        return EXIT_INTERRUPTED
    except InputError as exc:
        # The same sentence a chat user gets (the operator detail is in str(exc)).
        sentence = for_operator(exc.user_message)
        print(f"voicebot: {args.command}: {sentence}", file=sys.stderr)
        return EXIT_FAILED
    except BotError as exc:
        print(f"voicebot: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("voicebot: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
