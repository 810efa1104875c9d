"""Discord's slash command descriptions and /help text, in every shipped language."""

from __future__ import annotations

from discord.app_commands import locale_str

from bot.text.translator import Msg, Text, msg

# Discord slash commands: descriptions and parameter descriptions (the translator localizes them).
DISCORD_TEXTS: dict[str, Msg] = {
    "speak": msg("Say a text as a voice message in this channel"),
    "speak.text": msg("What to say"),
    "speak.voice": msg("Voice name (default: yours or this server's)"),
    "transcribe": msg("Transcribe a recording or video from a link"),
    "transcribe.url": msg("The link (http or https) to a recording, podcast or video"),
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


def t(key: str) -> locale_str:
    """A command text the translator localizes (the English text is its msgid)."""
    return locale_str(DISCORD_TEXTS[key].id)


def discord_help(tr: Text) -> str:
    """/help on Discord (plain text, escaped by the adapter)."""
    extra = (
        tr.gettext(
            "• /transcribe url: a recording or video on the web (a podcast, a lecture), or "
            "Apps → Transcribe on a message with a link. Nothing is downloaded until you ask."
        ),
        tr.gettext(
            "• 📝 Summarize / 🌐 Translate under a transcript, or /summarize and /translate "
            "with its job id (when the bot has a chat model)."
        ),
        tr.gettext(
            "• Add the app to your own account (its profile → Add App) to use Transcribe, "
            "/transcribe, /speak, /status and /cancel in any server or DM, even where the bot "
            "is not a member: the transcript is then shown to you only, with 📢 Post it."
        ),
    )
    return "\n".join((_discord_help(tr), *extra))


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
