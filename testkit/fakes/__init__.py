"""Local fake servers (providers, Telegram Bot API, Discord) and test inputs; loopback only."""
