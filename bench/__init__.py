"""Benchmark harness: the bot's job pipeline against the vendors' documented polling loop."""
