"""Offline speech engines (``type: local``): faster-whisper STT and Piper TTS, on this machine."""
