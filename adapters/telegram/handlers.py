"""Telegram commands and message handlers: turn updates into service calls and short replies
(a new job's placeholder is sent by the service, through :mod:`adapters.telegram.placeholders`,
right before it stores the job)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from telegram import ChatMember, LinkPreviewOptions, Message, Update
from telegram.constants import ParseMode
from telegram.ext import Application, CommandHandler, ContextTypes, MessageHandler, filters

from adapters.telegram import links
from adapters.telegram.buttons import TelegramButtons
from adapters.telegram.cancel import TelegramCancel
from adapters.telegram.convert import (
    GROUP_ANONYMOUS_BOT,
    PLATFORM,
    AudioAttachment,
    audio_attachment,
    command_args,
    escape,
    is_private,
    megabytes,
    origin_for,
)
from adapters.telegram.files import TelegramFiles
from adapters.telegram.guest import GuestCalls
from adapters.telegram.texts import telegram_help
from bot.chat.settings import SETTINGS_USAGE, Prefs
from bot.chat.views import settings_hint
from bot.model.errors import BotError, InputError
from bot.text import Msg, Text, msg

if TYPE_CHECKING:
    from telegram import Bot

    from adapters.telegram.config import TelegramConfig
    from adapters.telegram.placeholders import Placeholders
    from bot.service.voice import VoiceService

_LOGGER = logging.getLogger(__name__)

Context = ContextTypes.DEFAULT_TYPE
Callback = Callable[[Update, Context], Coroutine[Any, Any, None]]

GENERIC_ERROR = msg("Sorry, something went wrong on my side. Please try again in a moment.")
TRANSCRIBE_USAGE = msg(
    "Reply to a voice note or audio file with /transcribe to transcribe it, or send "
    "/transcribe followed by a link."
)
ADMINS_ONLY = msg("Only this group's admins can change its settings.")
_NO_PREVIEW = LinkPreviewOptions(is_disabled=True)


@dataclass(frozen=True, slots=True)
class Command:
    """One command: what answers it, and its line in the command menu (None: not listed)."""

    name: str
    callback: Callback
    menu: Msg | None = None


async def _answer(update: Update, html_text: str) -> None:
    message = update.effective_message
    if message is None:
        return
    try:
        await reply(message, html_text)
    except Exception:  # the chat may be gone; the log already has the original error
        _LOGGER.warning("telegram: could not answer in chat %s", message.chat_id, exc_info=True)


async def reply(message: Message, html_text: str) -> Message:
    """Reply to ``message`` with HTML text (still delivered if the message was deleted)."""
    return await message.reply_text(
        html_text,
        parse_mode=ParseMode.HTML,
        link_preview_options=_NO_PREVIEW,
        do_quote=message.build_reply_arguments(allow_sending_without_reply=True),
    )


class TelegramHandlers:
    """The bot's commands and message handlers: they create jobs through the service and put
    a placeholder under each."""

    def __init__(
        self,
        service: VoiceService,
        bot: Bot,
        placeholders: Placeholders,
        config: TelegramConfig,
        check_link: Callable[[str], object],
    ) -> None:
        self.service = service
        self.bot = bot
        self.placeholders = placeholders
        self.config = config
        self.cancel = TelegramCancel(service, placeholders.show_cancelled)
        self.buttons = TelegramButtons(service, placeholders, self.cancel)
        self.files = TelegramFiles(service, bot, config.max_download_bytes)
        self.guest = GuestCalls(service, bot, self.files.transcribe)
        self.links = links.TelegramLinks(service, bot, placeholders, check_link)
        self.buttons.routes[links.LINK_PREFIX] = self.links.pressed
        self.commands = self._commands()

    def _commands(self) -> tuple[Command, ...]:
        """Every command; those with a menu line in the menu's order (setMyCommands)."""
        short, b, c = self.short_setting, self.buttons, self.cancel
        return (
            Command(
                "transcribe",
                self.transcribe,
                msg("Transcribe the voice note you reply to, or a link: /transcribe URL"),
            ),
            Command("speak", self.speak, msg("Read text aloud as a voice message")),
            Command("status", self.status, msg("Recent jobs of this chat, or one: /status ID")),
            Command("cancel", c.command, msg("Stop your running job, or one: /cancel ID")),
            Command("summarize", b.summarize, msg("Summarize the transcript you reply to")),
            Command(
                "translate",
                b.translate,
                msg("Translate the transcript you reply to: /translate [language]"),
            ),
            Command(
                "settings",
                self.settings,
                msg("Show or change settings (this chat's, or yours: /settings me)"),
            ),
            Command("language", short, msg("Transcription language: /language German (or auto)")),
            Command("voices", self.voices, msg("The voices /speak can use")),
            Command("diarize", short, msg("Label speakers: /diarize on|off")),
            Command("voice", short, msg("Voice for /speak: /voice NAME (or default)")),
            Command("autotranscribe", short, msg("Transcribe every voice note here: on|off")),
            Command("forget", self.forget, msg("Delete your stored jobs in this chat")),
            Command("help", self.help, msg("What this bot does and how")),
            Command("start", self.help),
            Command("usage", self.usage),
        )

    def register(self, app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        """Add every command, the media handler, the button dispatcher and the error handler."""
        only_new = filters.UpdateType.MESSAGE
        for command in self.commands:
            handler = self.guarded(command.callback)
            app.add_handler(CommandHandler(command.name, handler, filters=only_new))
        media = filters.VOICE | filters.AUDIO | filters.VIDEO_NOTE | filters.Document.ALL
        app.add_handler(
            MessageHandler(only_new & media & ~filters.COMMAND, self.guarded(self.media))
        )
        # A message with a link (not audio, not a command): offered a button, never fetched.
        texts = only_new & (filters.TEXT | filters.CAPTION) & ~filters.COMMAND
        app.add_handler(MessageHandler(texts, self.guarded(self.links.offer)))
        self.buttons.register(app)
        guest = filters.UpdateType.GUEST_MESSAGE  # Bot API 10.0: called where not a member
        app.add_handler(MessageHandler(guest, self.guarded(self.guest.handle)))
        app.add_error_handler(self.on_error)

    def guarded(self, callback: Callback) -> Callback:
        """Wrap a handler: skip denied users and chats; answer a BotError with its sentence and
        anything else with a generic one; never raise into PTB."""

        @functools.wraps(callback)
        async def wrapper(update: Update, context: Context) -> None:
            message = update.effective_message
            if message is None:
                return
            if not self.service.allowed(origin_for(message)):
                # Denied users and chats get silence: no downloads, no paid work, no chatter.
                _LOGGER.info("telegram: ignoring chat %s (access lists)", message.chat_id)
                return
            try:
                await callback(update, context)
            except BotError as exc:
                _LOGGER.info("telegram: %s: %s", callback.__name__, exc)
                await _answer(update, escape((await self.text(message)).render(exc.text)))
            except Exception:
                _LOGGER.exception("telegram: %s failed", callback.__name__)
                await _answer(update, escape((await self.text(message)).render(GENERIC_ERROR)))

        return wrapper

    async def on_error(self, update: object, context: Context) -> None:
        """Errors PTB caught outside our handlers (network trouble while polling...)."""
        _LOGGER.error("telegram: unhandled error", exc_info=context.error)

    async def text(self, message: Message) -> Text:
        """The reader's language: their own choice, the chat's, else their Telegram app's."""
        origin = origin_for(message)
        try:
            return await self.service.preferences.text_for(origin)
        except Exception:  # the app's language beats not answering
            _LOGGER.warning("telegram: reader's settings unreadable", exc_info=True)
            return self.service.preferences.text(origin, Prefs())

    async def prefs(self, message: Message) -> Prefs:
        """The chat's and the sender's settings (one store read)."""
        return await self.service.preferences.for_origin(origin_for(message))

    # -- commands ---------------------------------------------------------------------------

    async def help(self, update: Update, context: Context) -> None:
        """/start and /help."""
        assert update.message is not None
        tr = await self.text(update.message)
        limit = megabytes(self.config.max_download_bytes, tr)
        await reply(update.message, telegram_help(tr, limit))

    async def status(self, update: Update, context: Context) -> None:
        """/status [JOB_ID]: only this chat's jobs are visible."""
        message = update.message
        assert message is not None
        wanted = command_args(message) or None
        tr = await self.text(message)
        text = await self.service.status_text(PLATFORM, str(message.chat_id), wanted, tr)
        await reply(message, escape(text))

    async def voices(self, update: Update, context: Context) -> None:
        """/voices: the current TTS model's voices."""
        message = update.message
        assert message is not None
        origin = origin_for(message)
        prefs = await self.service.preferences.for_origin(origin)
        tr = self.service.preferences.text(origin, prefs)
        await reply(message, escape(self.service.preferences.voices(tr, prefs.chat, prefs.user)))

    async def settings(self, update: Update, context: Context) -> None:
        """/settings shows; /settings NAME VALUE changes the chat's (admins only in groups);
        /settings me NAME VALUE changes the sender's own, for every chat."""
        message = update.message
        assert message is not None
        args = command_args(message).split(maxsplit=1)
        if args and args[0].lower() in ("me", "my", "user"):
            rest = args[1].split(maxsplit=1) if len(args) > 1 else []
            if len(rest) < 2:
                raise InputError(SETTINGS_USAGE)
            origin = origin_for(message)
            await self.service.preferences.change_user_setting(
                PLATFORM, origin.user_id, rest[0], rest[1]
            )
            await self._show_settings(message, saved=True)
            return
        if not args:
            await self._show_settings(message)
            return
        await self._change(message, context, args[0], args[1] if len(args) > 1 else "")

    async def short_setting(self, update: Update, context: Context) -> None:
        """/language CODE, /diarize on|off, /voice NAME, /autotranscribe on|off."""
        message = update.message
        assert message is not None and message.text is not None
        name = message.text.split(maxsplit=1)[0].lstrip("/").split("@", 1)[0].lower()
        value = command_args(message)
        if not value:
            await self._show_settings(message)
            return
        await self._change(message, context, name, value)

    async def _show_settings(self, message: Message, *, saved: bool = False) -> None:
        origin = origin_for(message)
        prefs = await self.service.preferences.for_origin(origin)
        chat, user = prefs.chat, prefs.user
        tr = self.service.preferences.text(origin, prefs)
        locale = self.service.preferences.ui_locale(origin, chat, user)
        text = self.service.preferences.describe(chat, user, tr=tr, ui_locale=locale)
        if saved:
            text = tr.gettext("✅ Saved.") + "\n" + text
            if chat.diarize and not self.service.stt_capabilities().diarization:
                text += "\n" + tr.gettext(
                    "(The current transcription model cannot label speakers, so this has no "
                    "effect.)"
                )
        await reply(message, f"{escape(text)}\n\n{escape(settings_hint(tr))}")

    async def _change(self, message: Message, context: Context, name: str, value: str) -> None:
        if not await self._may_change_settings(message, context):
            raise InputError(ADMINS_ONLY)
        await self.service.change_setting(PLATFORM, str(message.chat_id), name, value)
        await self._show_settings(message, saved=True)

    async def _may_change_settings(self, message: Message, context: Context) -> bool:
        if is_private(message.chat):
            return True
        sender_chat = message.sender_chat
        if sender_chat is not None and sender_chat.id == message.chat_id:
            return True  # an anonymous admin posting as the group itself
        user = message.from_user
        if user is None or user.id == GROUP_ANONYMOUS_BOT:
            return False
        member = await context.bot.get_chat_member(message.chat_id, user.id)
        return member.status in (ChatMember.OWNER, ChatMember.ADMINISTRATOR)

    async def forget(self, update: Update, context: Context) -> None:
        """/forget: delete the caller's jobs in this chat."""
        assert update.message is not None
        tr = await self.text(update.message)
        text = await self.service.forget(origin_for(update.message), tr)
        await reply(update.message, escape(text))

    async def usage(self, update: Update, context: Context) -> None:
        """/usage: spend per user and chat, for the bot's admins (access.admins)."""
        assert update.message is not None
        tr = await self.text(update.message)
        text = await self.service.usage_text(origin_for(update.message), tr)
        await reply(update.message, f"<pre>{escape(text)}</pre>")

    async def speak(self, update: Update, context: Context) -> None:
        """/speak TEXT, or /speak as a reply to a text message."""
        message = update.message
        assert message is not None
        text = command_args(message)
        quoted = message.reply_to_message
        if not text and quoted is not None:
            text = quoted.text or quoted.caption or ""
        origin = origin_for(message, update_id=update.update_id)
        if await self.service.already_created(origin):
            return  # a replayed update: its job exists and will be delivered
        prefs = await self.prefs(message)
        await self.service.speak(origin, text, prefs=prefs, placeholder=self.placeholders)

    async def transcribe(self, update: Update, context: Context) -> None:
        """/transcribe as a reply to a voice note or audio message; /transcribe URL, or as a
        reply to a message with a link: that link."""
        message = update.message
        assert message is not None
        target = message.reply_to_message
        attachment = audio_attachment(target)
        link = links.command_target(message, audio=attachment is not None)
        if link is None and (target is None or attachment is None):
            raise InputError(TRANSCRIBE_USAGE)
        prefs = await self.prefs(message)
        if link is not None:
            await self.links.transcribe(message, *link, update.update_id, prefs)
        elif target is not None and attachment is not None:
            await self._transcribe(message, target, attachment, prefs, update.update_id)

    # -- messages ---------------------------------------------------------------------------

    async def media(self, update: Update, context: Context) -> None:
        """A voice note, audio file, video note or document: transcribe it when this chat wants."""
        message = update.message
        assert message is not None
        attachment = audio_attachment(message)
        if attachment is None:
            return  # a photo or PDF sent as a file: not ours to answer
        if message.from_user is not None and message.from_user.is_bot:
            return
        prefs = await self.prefs(message)
        if not is_private(message.chat) and not prefs.chat.auto_transcribe:
            return
        await self._transcribe(message, message, attachment, prefs, update.update_id)

    async def _transcribe(
        self,
        command: Message,
        audio: Message,
        attachment: AudioAttachment,
        prefs: Prefs,
        update_id: int,
    ) -> None:
        origin = origin_for(command, reply_to=audio, update_id=update_id)
        if await self.service.already_created(origin):
            return  # a replayed update: its job exists and will be delivered
        await self.files.transcribe(origin, attachment, prefs, self.placeholders)
