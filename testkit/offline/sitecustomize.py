"""Loaded by subprocesses the tests start (PYTHONPATH): refuse every non-loopback connection."""

from tests_offline_guard import install

install()
