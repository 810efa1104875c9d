"""Durable jobs: the SQLite store (only writer of job rows) and the poller."""
