"""Telegram adapter (python-telegram-bot): voice notes to transcripts, /speak to voice notes."""
