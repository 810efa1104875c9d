"""Language codes the Whisper family transcribes, declared by the hosted models built on it."""

from __future__ import annotations

# Whisper's tokenizer list (large-v3 added ``yue``); faster-whisper ships the same codes.
_WHISPER_CODES = """
af am ar as az ba be bg bn bo br bs ca cs cy da de el en es et eu fa fi fo fr gl gu ha haw he hi
hr ht hu hy id is it ja jw ka kk km kn ko la lb ln lo lt lv mg mi mk ml mn mr ms mt my ne nl nn
no oc pa pl ps pt ro ru sa sd si sk sl sn so sq sr su sv sw ta te tg th tk tl tr tt uk ur uz vi
yi yo yue zh
"""
WHISPER_LANGUAGES = frozenset(_WHISPER_CODES.split())
"""The 100 codes Whisper large-v3 takes as ``language`` (ISO 639-1 where there is one)."""
