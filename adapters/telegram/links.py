"""Links on Telegram: ``/transcribe URL`` (or ``/transcribe`` as a reply to a message with a link)
and the "🎙 Transcribe this link" button offered under a message with links.

Nothing is downloaded until someone presses: the press is the consent. The button's data names
only which link (``link:0``…``link:2``: a link does not fit Telegram's 64 bytes, and a client may
send any data), and the link is read again from the message the offer replies to, so a press
works after a restart with nothing kept, and only for a link someone actually sent. A press makes
at most one job per link of a message (the job's source names them), whoever presses, however
often, and a replayed update makes none.
"""

from __future__ import annotations

import contextlib
import logging
import re
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, MessageEntity
from telegram.error import TelegramError

from adapters.telegram.cancel import is_chat_admin
from adapters.telegram.convert import (
    GROUP_ANONYMOUS_BOT,
    PLATFORM,
    command_args,
    escape,
    is_private,
    origin_for,
)
from bot.links import LinkRefused, find_links
from bot.model.errors import BotError
from bot.model.speech import Origin
from bot.text import Msg, Text, msg

if TYPE_CHECKING:
    from collections.abc import Callable

    from telegram import Bot, CallbackQuery, Update
    from telegram.ext import ContextTypes

    from adapters.telegram.placeholders import Placeholders
    from bot.chat.settings import Prefs
    from bot.service.voice import VoiceService

    Context = ContextTypes.DEFAULT_TYPE

_LOGGER = logging.getLogger(__name__)

LINK_PREFIX = "link:"
MAX_OFFERED = 3  # buttons under one message: more would bury the chat in a keyboard
OFFER_BUTTON = msg("🎙 Transcribe this link")
OFFER_ONE = msg(
    "I can transcribe the recording behind this link; nothing is downloaded unless you press "
    "the button."
)
OFFER_MANY = msg(
    "I can transcribe the recording behind one of these links; nothing is downloaded unless "
    "you press its button."
)
NOT_YOURS = msg("Only the person who sent this link, or an admin of this group, can start it.")
LINK_GONE = msg(
    "I can no longer read the message with this link; send /transcribe with the link instead."
)
ALREADY_STARTED = msg("This link is already being transcribed.")
# A word that is a link of some scheme (file:, ftp:, data:…): taken as the link, so its refusal
# names the reason instead of the usage line.
_SCHEMED = re.compile(r"^[a-z][a-z0-9+.\-]*:\S", re.IGNORECASE)


def message_links(message: Message | None) -> list[str]:
    """The http(s) links a message carries, in order, each once: in its text or caption, and
    behind its formatted links (``text_link`` entities)."""
    if message is None:
        return []
    found = find_links(message.text or message.caption or "")
    entities = (*(message.entities or ()), *(message.caption_entities or ()))
    for entity in entities:
        if entity.type == MessageEntity.TEXT_LINK and entity.url:
            found += find_links(entity.url)
    return list(dict.fromkeys(found))


def command_link(args: str) -> str | None:
    """The link ``/transcribe ARGS`` names: the first http(s) one, else a first word written as
    a link of another scheme (refused with its reason); None when the words are no link."""
    found = find_links(args)
    if found:
        return found[0]
    words = args.split(maxsplit=1)
    return words[0] if words and _SCHEMED.match(words[0]) else None


def command_target(command: Message, *, audio: bool) -> tuple[str, Message] | None:
    """The link ``/transcribe`` means and the message its job replies to: a link in the
    command's words (replying to the command); else, unless it replies to audio (transcribed as
    before), a word written as a link of another scheme (refused with its reason), or the first
    link of the message it replies to (replying there). None: no link meant."""
    args = command_args(command)
    if find_links(args):
        return find_links(args)[0], command
    if audio:
        return None
    word = command_link(args)
    if word is not None:
        return word, command
    quoted = command.reply_to_message
    found = message_links(quoted)
    return (found[0], quoted) if quoted is not None and found else None


def _label(url: str, number: int) -> str:
    """A button naming one of several links: its number and where it points."""
    parts = urlsplit(url)
    where = (parts.hostname or "") + parts.path.rstrip("/")
    return f"🎙 {number}. {where[:40]}"


def offer_markup(links: list[str], tr: Text) -> InlineKeyboardMarkup:
    """One button per link (at most :data:`MAX_OFFERED`), each naming its link's index."""
    if len(links) == 1:
        labels = [tr.render(OFFER_BUTTON)]
    else:
        labels = [_label(url, n + 1) for n, url in enumerate(links)]
    rows = [
        [InlineKeyboardButton(label, callback_data=f"{LINK_PREFIX}{n}")]
        for n, label in enumerate(labels)
    ]
    return InlineKeyboardMarkup(rows)


class TelegramLinks:
    """Links in: the command, the offer under a message with links, and its button."""

    def __init__(
        self,
        service: VoiceService,
        bot: Bot,
        placeholders: Placeholders,
        check: Callable[[str], object],
    ) -> None:
        self.service = service
        self.bot = bot
        self.placeholders = placeholders
        # LinkFetcher.check: raises LinkRefused for a link no download could be allowed to
        # start (links off, not http(s), a domain not allowed, a literal private address...).
        self.check = check
        self._starting: set[str] = set()  # sources being created now: a double press waits

    def offered(self, message: Message | None) -> list[str]:
        """The links a message is (or was) offered buttons for, in button order: those that
        pass every check needing no network (no DNS lookup, nothing fetched)."""
        return [u for u in message_links(message) if self._may_offer(u)][:MAX_OFFERED]

    def _may_offer(self, url: str) -> bool:
        try:
            self.check(url)
        except LinkRefused:
            return False
        return True

    async def transcribe(
        self, command: Message, url: str, target: Message, update_id: int, prefs: Prefs
    ) -> None:
        """``/transcribe URL``: a link job replying to ``target`` (the command, or the message
        with the link it replies to); a refusal is raised as its sentence."""
        origin = origin_for(command, reply_to=target, update_id=update_id)
        if await self.service.already_created(origin):
            return  # a replayed update: its job exists and will be delivered
        await self.service.transcribe_link(origin, url, prefs=prefs, placeholder=self.placeholders)

    async def offer(self, update: Update, context: Context) -> None:
        """A message with links: one reply offering a button per link (at most three), where the
        chat takes automatic answers (a private chat, or a group with autotranscribe on)."""
        message = update.message
        if message is None or (message.from_user is not None and message.from_user.is_bot):
            return
        links = self.offered(message)
        if not links:
            return
        origin = origin_for(message)
        prefs = await self.service.preferences.for_origin(origin)
        if not is_private(message.chat) and not prefs.chat.auto_transcribe:
            return
        tr = self.service.preferences.text(origin, prefs)
        text = tr.render(OFFER_ONE if len(links) == 1 else OFFER_MANY)
        await message.reply_html(
            escape(text),
            reply_markup=offer_markup(links, tr),
            do_quote=message.build_reply_arguments(allow_sending_without_reply=True),
        )

    async def pressed(self, update: Update, context: Context) -> None:
        """A "Transcribe this link" button: by the link's sender or a chat admin, one job per
        link; anyone else, or a link no longer readable, gets a short alert."""
        query = update.callback_query
        if query is None:
            return
        offer = query.message if isinstance(query.message, Message) else None
        source = offer.reply_to_message if offer is not None else None
        index = _index(query.data or "")
        links = self.offered(source)
        if offer is None or source is None or index is None or index >= len(links):
            await _alert(query, await self._presser_text(query), LINK_GONE)
            return
        origin = _press_origin(query, offer, source, index)
        if not self.service.allowed(origin):
            await query.answer()
            return
        tr = await self.service.preferences.text_for(origin)
        if not await self._may_press(query, source):
            await _alert(query, tr, NOT_YOURS)
            return
        if await self._start(query, origin, links[index], tr):
            await self._retire(offer, index)

    async def _start(self, query: CallbackQuery, origin: Origin, url: str, tr: Text) -> bool:
        """Create the press's job unless its link already has one (a second press, a replayed
        update: a toast); a refusal is an alert and the button stays. True: created."""
        key = str(origin.extra["source"])
        if key in self._starting:  # the same press twice at once: the first one decides
            await query.answer(tr.render(ALREADY_STARTED))
            return False
        self._starting.add(key)
        try:
            if await self.service.already_created(origin):
                await query.answer(tr.render(ALREADY_STARTED))
                return False
            prefs = await self.service.preferences.for_origin(origin)
            await self.service.transcribe_link(
                origin, url, prefs=prefs, placeholder=self.placeholders
            )
        except BotError as exc:  # a refusal: the button stays, the presser reads why
            _LOGGER.info("telegram: link button refused: %s", exc)
            await _alert(query, tr, exc.text)
            return False
        finally:
            self._starting.discard(key)
        await query.answer()
        return True

    async def _may_press(self, query: CallbackQuery, source: Message) -> bool:
        """The link's sender, or an admin of the group: the press is the consent to download,
        and it spends the presser's limits, so nobody else's press can start it."""
        presser = query.from_user.id
        if is_private(source.chat):
            return True  # only the user and the bot are there
        sender = source.from_user
        if sender is not None and sender.id == presser and presser != GROUP_ANONYMOUS_BOT:
            return True
        return await is_chat_admin(self.bot, source.chat, presser)

    async def _retire(self, offer: Message, index: int) -> None:
        """Take the pressed button away (the placeholder replies to the link now); the offer
        goes once no button is left."""
        markup = offer.reply_markup
        rows = [
            row
            for row in (markup.inline_keyboard if markup else ())
            if not any(b.callback_data == f"{LINK_PREFIX}{index}" for b in row)
        ]
        with contextlib.suppress(TelegramError):  # gone or too old: nothing to tidy
            if rows:
                await offer.edit_reply_markup(InlineKeyboardMarkup(rows))
            else:
                await offer.delete()

    async def _presser_text(self, query: CallbackQuery) -> Text:
        """The presser's language, before anything else is known about the press."""
        user = query.from_user
        chat = query.message.chat.id if query.message is not None else user.id
        extra = {"locale": user.language_code} if user.language_code else {}
        origin = Origin(PLATFORM, chat_id=str(chat), user_id=str(user.id), extra=extra)
        return await self.service.preferences.text_for(origin)


def _index(data: str) -> int | None:
    number = data.removeprefix(LINK_PREFIX)
    return int(number) if number.isdigit() and len(number) < 3 else None


def _press_origin(query: CallbackQuery, offer: Message, source: Message, index: int) -> Origin:
    """The job a press makes: the presser's, replying to the message with the link, its source
    naming that message and link (one job per link, however many presses)."""
    code = query.from_user.language_code
    thread = offer.message_thread_id if offer.is_topic_message else None
    return Origin(
        platform=PLATFORM,
        chat_id=str(offer.chat.id),
        user_id=str(query.from_user.id),
        reply_to=str(source.message_id),
        thread_id=str(thread) if thread is not None else None,
        extra={"source": f"link:{source.message_id}:{index}", **({"locale": code} if code else {})},
    )


async def _alert(query: CallbackQuery, tr: Text, text: Msg) -> None:
    """A short alert only the presser sees (answerCallbackQuery takes 200 characters)."""
    with contextlib.suppress(TelegramError):  # the query may be too old to answer
        await query.answer(tr.render(text)[:200], show_alert=True)
