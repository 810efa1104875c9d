"""Telegram's /help text, in every shipped language (the menu is the command table in
:mod:`adapters.telegram.handlers`)."""

from __future__ import annotations

from bot.text.translator import Text


def telegram_help(tr: Text, limit: str) -> str:
    """/help and /start on Telegram (HTML): the links line closes the first paragraph (what
    the bot does), the summary/translation line goes with the other commands, before the
    closing "Files up to …" paragraph."""
    text = _telegram_help(tr, limit)
    extra = tr.gettext(
        "/summarize, /translate [language] — as a reply to a transcript (or with its job "
        "id), or tap the buttons under it (when the bot has a chat model)"
    )
    links = tr.gettext(
        "🔗 <b>Links</b>: <code>/transcribe URL</code> — a recording or video on the web (a "
        "podcast, a lecture); or send me a link and tap “🎙 Transcribe this link”. Nothing is "
        "downloaded until you ask."
    )
    intro, gap, rest = text.partition("\n\n")
    text = f"{intro}\n{links}{gap}{rest}" if gap else f"{text}\n{links}"
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
