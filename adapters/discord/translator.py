"""discord.py's command translator backed by our catalogs: localized descriptions and choices."""

from __future__ import annotations

import discord
from discord import app_commands

from bot.text import negotiate, text_for

# Discord's own limits on localized strings (names of context menus: 32; the rest: 100).
_MAX = {
    app_commands.TranslationContextLocation.command_name: 32,
    app_commands.TranslationContextLocation.choice_name: 100,
    app_commands.TranslationContextLocation.command_description: 100,
    app_commands.TranslationContextLocation.parameter_description: 100,
}


class CatalogTranslator(app_commands.Translator):
    """Translates command descriptions, parameter descriptions, choice names and the context
    menu's name; slash-command and parameter names stay English (people type them; aliases per
    language would split the help and the docs)."""

    async def translate(
        self,
        string: app_commands.locale_str,
        locale: discord.Locale,
        context: app_commands.TranslationContextTypes,
    ) -> str | None:
        """The text in ``locale``; None (Discord shows the English) where we have nothing."""
        limit = _MAX.get(context.location)
        if limit is None:
            return None
        if context.location is app_commands.TranslationContextLocation.command_name and not (
            isinstance(context.data, app_commands.ContextMenu)
        ):
            return None
        code = negotiate(locale.value)
        if code == "en":
            return None
        translated = text_for(code).gettext(string.message)
        if translated == string.message or len(translated) > limit:
            return None
        return translated
