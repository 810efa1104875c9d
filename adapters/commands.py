"""Command menus and /help texts of both platforms, in every shipped language."""

from __future__ import annotations

from bot.text.translator import Msg, Text, msg

# Telegram's command menu (setMyCommands, once per language).
TELEGRAM_COMMANDS: tuple[tuple[str, Msg], ...] = (
    ("transcribe", msg("Transcribe the voice note you reply to")),
    ("speak", msg("Read text aloud as a voice message")),
    ("status", msg("Recent jobs of this chat, or one: /status ID")),
    ("cancel", msg("Stop your running job, or one: /cancel ID")),
    ("summarize", msg("Summarize the transcript you reply to")),
    ("translate", msg("Translate the transcript you reply to: /translate [language]")),
    ("settings", msg("Show or change settings (this chat's, or yours: /settings me)")),
    ("language", msg("Transcription language: /language German (or auto)")),
    ("voices", msg("The voices /speak can use")),
    ("diarize", msg("Label speakers: /diarize on|off")),
    ("voice", msg("Voice for /speak: /voice NAME (or default)")),
    ("autotranscribe", msg("Transcribe every voice note here: on|off")),
    ("forget", msg("Delete your stored jobs in this chat")),
    ("help", msg("What this bot does and how")),
)

# Discord slash commands: descriptions and parameter descriptions (the translator localizes them).
DISCORD_TEXTS: dict[str, Msg] = {
    "speak": msg("Say a text as a voice message in this channel"),
    "speak.text": msg("What to say"),
    "speak.voice": msg("Voice name (default: yours or this server's)"),
    "status": msg("This channel's recent jobs, or one job"),
    "status.job": msg("A job id, e.g. ab12cd"),
    "settings": msg("Show or change settings"),
    "settings.name": msg("Setting to change"),
    "settings.value": msg("New value (e.g. German, on, af_bella)"),
    "settings.scope": msg("Whose setting: this server's or channel's (default), or only yours"),
    "voices": msg("The voices /speak can use"),
    "cancel": msg("Stop your queued or running job, or one job"),
    "cancel.job": msg("A job id, e.g. ab12cd (default: your newest running job)"),
    "forget": msg("Delete your jobs in this channel"),
    "summarize": msg("Summarize a transcript (its job id)"),
    "translate": msg("Translate a transcript (its job id)"),
    "text.job": msg("The transcript's job id, e.g. ab12cd"),
    "text.language": msg("A language, e.g. German or de (default: yours)"),
    "usage": msg("Spend per user and chat (bot admins only)"),
    "help": msg("What this bot does and how to use it"),
    "Transcribe": msg("Transcribe"),
    "scope.chat": msg("this server or channel"),
    "scope.me": msg("only me"),
}


def telegram_help(tr: Text, limit: str) -> str:
    """/help and /start on Telegram (HTML): the summary/translation line goes with the other
    commands, before the closing "Files up to …" paragraph."""
    text = _telegram_help(tr, limit)
    extra = tr.gettext(
        "/summarize, /translate [language] — as a reply to a transcript (or with its job "
        "id), or tap the buttons under it (when the bot has a chat model)"
    )
    head, gap, tail = text.rpartition("\n\n")
    return f"{head}\n{extra}{gap}{tail}" if gap else f"{text}\n{extra}"


def _telegram_help(tr: Text, limit: str) -> str:
    return tr.gettext(
        "🎙 <b>Voice → text</b>: send me a voice note, audio file or video note and I reply with "
        "its transcript. In groups I transcribe voice notes automatically unless an admin turned "
        "that off (/autotranscribe off); reply <code>/transcribe</code> to a voice note to "
        "transcribe it on demand.\n"
        "🔊 <b>Text → voice</b>: <code>/speak TEXT</code>, or reply <code>/speak</code> to a "
        "message; /voices lists the voices.\n\n"
        "/status — this chat's recent jobs; <code>/status ID</code> — one job\n"
        "/settings — settings and where each comes from; change this chat's with "
        "<code>/settings NAME VALUE</code> (in groups: admins only) or "
        "<code>/language German</code>, <code>/diarize on|off</code>, <code>/voice NAME</code>, "
        "<code>/autotranscribe on|off</code>; your own, for every chat: "
        "<code>/settings me language de</code>\n"
        "/cancel — stop your queued or running job (or tap ✖ under it); <code>/cancel ID</code> "
        "— one job (admins: any job in the group)\n"
        "/forget — delete your stored jobs (transcripts, audio) in this chat\n"
        "/usage — spend per user and chat (the bot's admins only)\n\n"
        "Files up to {limit}.",
        limit=limit,
    )


def discord_help(tr: Text) -> str:
    """/help on Discord (plain text, escaped by the adapter)."""
    return (
        _discord_help(tr)
        + "\n"
        + tr.gettext(
            "• 📝 Summarize / 🌐 Translate under a transcript, or /summarize and /translate "
            "with its job id (when the bot has a chat model)."
        )
    )


def _discord_help(tr: Text) -> str:
    return tr.gettext(
        "I turn voice messages into text and text into voice messages.\n"
        "• Send a voice message or an audio file: I reply with the transcript "
        "(in servers this needs the Message Content intent; otherwise use the menu).\n"
        "• Right-click a message → Apps → Transcribe: transcribe any voice message.\n"
        "• /speak text [voice]: I post the text as a voice message; /voices lists the voices.\n"
        "• /status [job]: this channel's recent jobs, or one job in detail.\n"
        "• /cancel [job], or ✖ under the placeholder: stop your queued or running job "
        "(anyone's, with Manage Messages).\n"
        "• /settings [name value]: show or change language, diarize, voice, autotranscribe, "
        "output, ui_language (server-wide; changing needs Manage Server); with scope "
        "“only me”: your own language, voice and ui_language, everywhere.\n"
        "• /forget: delete your jobs (transcripts, audio) in this channel. "
        "/usage: spend per user and chat (bot admins)."
    )
