"""What adapters call: intake of voice notes and text, text jobs, chat admin, limits."""
