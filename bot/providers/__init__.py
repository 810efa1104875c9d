"""Providers behind the speech and chat roles (base.py, chat.py); registry.py builds them."""
