"""Pure transcript rendering: plain and speaker-labelled text, SRT/VTT subtitles, message chunks."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from bot.model.speech import Segment, Transcript, Word

_Piece = TypeVar("_Piece", Segment, Word)

_CUE_MAX_SECONDS = 7.0
_CUE_MAX_CHARS = 80
_CUE_MAX_GAP = 1.5  # a pause this long starts a new subtitle
_CUE_DEFAULT_SECONDS = 2.0  # for a segment whose end is unknown

_NO_SPACE_BEFORE = frozenset(".,!?;:%)]}»”’…，。！？；：、）」』】》〉")
_NO_SPACE_AFTER = frozenset("([{«“‘¿¡（「『【《〈")
_CJK_BREAKS = "。！？；，、"
# Kana, CJK ideographs and full-width forms are written without spaces between words.
_CJK_RANGES = (
    (0x3000, 0x30FF),
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xF900, 0xFAFF),
    (0xFF00, 0xFFEF),
)


@dataclass(frozen=True, slots=True)
class Cue:
    """One subtitle: seconds from the start of the audio and its text."""

    start: float
    end: float
    text: str


SPEAKER = "Speaker {n}"  # the label template; bot.chat.replies passes the reader's translation


def speaker_labels(speakers: Iterable[str | None], label: str = SPEAKER) -> dict[str, str]:
    """Map raw speaker ids ("speaker_0", "SPEAKER_00") to "Speaker 1", "Speaker 2"... by order."""
    labels: dict[str, str] = {}
    for speaker in speakers:
        if speaker is not None and speaker not in labels:
            labels[speaker] = label.replace("{n}", str(len(labels) + 1))
    return labels


def render_plain(t: Transcript) -> str:
    """Return the transcript as one block of text ("" when nothing was recognised)."""
    if t.text.strip():
        return t.text.strip()
    if t.segments:
        return join_text(s.text for s in t.segments)
    return _join_words(t.words, _has_spacing(t.words))


def render_diarized(t: Transcript, label: str = SPEAKER) -> str:
    """Return ``Speaker N: ...`` paragraphs, one per turn; plain text when no speaker is known."""
    turns = _turns(t, label)
    if not any(label for label, _ in turns):
        return render_plain(t)
    return "\n\n".join(f"{label}: {text}" if label else text for label, text in turns)


def render_transcript(t: Transcript, *, diarize: bool, label: str = SPEAKER) -> str:
    """Return the diarized rendering when asked for, else the plain one."""
    return render_diarized(t, label) if diarize else render_plain(t)


def subtitle_cues(t: Transcript, *, diarize: bool | None = None, label: str = SPEAKER) -> list[Cue]:
    """Return subtitle cues from timed segments, else from timed words ([] without timings).

    ``diarize`` (default: ``t.diarized``) prefixes each cue with its speaker label.
    """
    with_speakers = t.diarized if diarize is None else diarize
    if any(s.start is not None for s in t.segments):
        return _segment_cues(t.segments, with_speakers, label)
    if any(w.start is not None for w in t.words):
        return _word_cues(t.words, with_speakers, label)
    return []


def to_srt(t: Transcript, *, diarize: bool | None = None, label: str = SPEAKER) -> str | None:
    """Return SubRip subtitles, or None when the transcript has no timings."""
    cues = subtitle_cues(t, diarize=diarize, label=label)
    if not cues:
        return None
    blocks = (
        f"{i}\n{_timestamp(c.start, ',')} --> {_timestamp(c.end, ',')}\n{c.text}"
        for i, c in enumerate(cues, 1)
    )
    return "\n\n".join(blocks) + "\n"


def to_vtt(t: Transcript, *, diarize: bool | None = None) -> str | None:
    """Return WebVTT subtitles, or None when the transcript has no timings."""
    cues = subtitle_cues(t, diarize=diarize)
    if not cues:
        return None
    blocks = (f"{_timestamp(c.start, '.')} --> {_timestamp(c.end, '.')}\n{c.text}" for c in cues)
    return "WEBVTT\n\n" + "\n\n".join(blocks) + "\n"


def join_text(pieces: Iterable[str]) -> str:
    """Join fragments with single spaces, except before punctuation and between CJK characters."""
    out: list[str] = []
    last = ""
    for piece in pieces:
        piece = piece.strip()
        if not piece:
            continue
        if last and _needs_space(last, piece[0]):
            out.append(" ")
        out.append(piece)
        last = piece[-1]
    return "".join(out)


_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|(?<=[。！？])")


def split_sentences(text: str, limit: int) -> list[str]:
    """Split ``text`` for speech: whole sentences packed into parts of at most ``limit``
    characters (so every part ends where a voice would pause); a sentence longer than ``limit``
    is split like :func:`split_message`.
    """
    parts: list[str] = []
    current = ""
    for sentence in (s.strip() for s in _SENTENCE_END.split(text.strip())):
        if not sentence:
            continue
        joined = f"{current} {sentence}" if current else sentence
        if len(joined) <= limit:
            current = joined
            continue
        if current:
            parts.append(current)
        pieces = split_message(sentence, limit)
        parts.extend(pieces[:-1])
        current = pieces[-1] if pieces else ""
    if current:
        parts.append(current)
    return parts


def split_message(text: str, limit: int, *, utf16: bool = False) -> list[str]:
    """Split ``text`` into chunks of at most ``limit`` characters without losing a word.

    Breaks prefer paragraph and line breaks, then spaces (or CJK punctuation); a word longer than
    ``limit`` is cut. With ``utf16`` the length is counted in UTF-16 code units, as Telegram does.

    Raises:
        ValueError: ``limit`` is smaller than 1 (2 with ``utf16``, so any character fits).
    """
    if limit < (2 if utf16 else 1):
        raise ValueError(f"limit too small: {limit}")
    size: Callable[[str], int] = _utf16_len if utf16 else len
    chunks: list[str] = []
    rest = text.strip()
    while rest:
        if size(rest) <= limit:
            chunks.append(rest)
            break
        cut = _fit(rest, limit, size)
        at = _break_at(rest, cut)
        chunks.append(rest[:at].rstrip())
        rest = rest[at:].lstrip()
    return chunks


def _turns(t: Transcript, label: str = SPEAKER) -> list[tuple[str | None, str]]:
    """Group consecutive pieces by speaker; a piece without a speaker stays in the current turn."""
    if any(s.speaker for s in t.segments):
        labels = speaker_labels((s.speaker for s in t.segments), label)
        turns = _group(t.segments, _segment_speaker)
        return [(labels.get(k or ""), join_text(s.text for s in g)) for k, g in turns]
    if any(w.speaker for w in t.words):
        spacing = _has_spacing(t.words)
        labels = speaker_labels((w.speaker for w in t.words if w.type != "spacing"), label)
        # Spacing tokens never start a turn: ElevenLabs gives them a speaker too.
        groups = _group(t.words, _word_speaker)
        return [(labels.get(k or ""), _join_words(g, spacing)) for k, g in groups]
    return []


def _group(
    items: Sequence[_Piece], key: Callable[[_Piece], str | None]
) -> list[tuple[str | None, list[_Piece]]]:
    groups: list[tuple[str | None, list[_Piece]]] = []
    for item in items:
        speaker = key(item)
        if groups and (speaker is None or speaker == groups[-1][0]):
            groups[-1][1].append(item)
        else:
            groups.append((speaker, [item]))
    return [(k, g) for k, g in groups if any(i.text.strip() for i in g)]


def _segment_speaker(segment: Segment) -> str | None:
    return segment.speaker


def _word_speaker(word: Word) -> str | None:
    return None if word.type == "spacing" else word.speaker


def _has_spacing(words: Sequence[Word]) -> bool:
    return any(w.type == "spacing" for w in words)


def _join_words(words: Iterable[Word], spacing: bool) -> str:
    """Join word tokens: verbatim when the provider sent its own spacing tokens, else smartly."""
    if spacing:
        return " ".join("".join(w.text for w in words).split())
    return join_text(w.text for w in words)


def _needs_space(before: str, after: str) -> bool:
    if before in _NO_SPACE_AFTER or after in _NO_SPACE_BEFORE:
        return False
    return not (_is_cjk(before) and _is_cjk(after))


def _is_cjk(ch: str) -> bool:
    code = ord(ch)
    return any(lo <= code <= hi for lo, hi in _CJK_RANGES)


def _segment_cues(segments: Sequence[Segment], with_speakers: bool, label: str) -> list[Cue]:
    labels = speaker_labels((s.speaker for s in segments), label)
    timed = [s for s in segments if s.start is not None and s.text.strip()]
    cues: list[Cue] = []
    for i, seg in enumerate(timed):
        start = seg.start or 0.0
        following = timed[i + 1].start if i + 1 < len(timed) else None
        end = seg.end
        if end is None or end <= start:
            end = start + _CUE_DEFAULT_SECONDS
            if following is not None and following > start:
                end = min(end, following)
        shown = labels.get(seg.speaker or "") if with_speakers else None
        cues.append(Cue(start, end, _cue_text(seg.text, shown)))
    return cues


def _word_cues(words: Sequence[Word], with_speakers: bool, label: str) -> list[Cue]:
    spacing = _has_spacing(words)
    labels = speaker_labels((w.speaker for w in words if w.type != "spacing"), label)
    cues: list[Cue] = []
    for group in _cue_groups(words, with_speakers):
        timed = [w for w in group if w.start is not None and w.type != "spacing"]
        text = _join_words(group, spacing)
        if not timed or not text:
            continue
        start = timed[0].start or 0.0
        end = max((w.end if w.end is not None else w.start) or 0.0 for w in timed)
        shown = labels.get(timed[0].speaker or "") if with_speakers else None
        cues.append(Cue(start, max(end, start + 0.1), _cue_text(text, shown)))
    return cues


def _cue_groups(words: Sequence[Word], with_speakers: bool) -> list[list[Word]]:
    """Cut the word stream at speaker changes, long pauses and the cue length limits."""
    groups: list[list[Word]] = [[]]
    start = end = 0.0
    speaker: str | None = None
    chars = 0
    for word in words:
        if word.type == "spacing" or word.start is None:
            groups[-1].append(word)  # untimed tokens ride along with their neighbours
            continue
        if chars and (
            (with_speakers and word.speaker is not None and word.speaker != speaker)
            or (word.end if word.end is not None else word.start) - start > _CUE_MAX_SECONDS
            or chars + len(word.text) + 1 > _CUE_MAX_CHARS
            or word.start - end > _CUE_MAX_GAP
        ):
            groups.append([])
            chars = 0
        if not chars:
            start, speaker = word.start, word.speaker
        groups[-1].append(word)
        chars += len(word.text) + 1
        end = word.end if word.end is not None else word.start
    return groups


def _cue_text(text: str, label: str | None) -> str:
    # A blank line ends a cue and "-->" marks timings, so neither may appear in cue text.
    clean = " ".join(text.split()).replace("-->", "->")
    return f"{label}: {clean}" if label else clean


def _timestamp(seconds: float, separator: str) -> str:
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _fit(rest: str, limit: int, size: Callable[[str], int]) -> int:
    """Return the longest prefix length (in code points) whose size is within ``limit``."""
    cut = min(len(rest), limit)
    while cut > 1 and (over := size(rest[:cut]) - limit) > 0:
        cut -= max(1, (over + 1) // 2)  # a code point is at most 2 units
    return max(1, cut)


def _break_at(rest: str, cut: int) -> int:
    """Where to end the chunk ``rest[:cut]`` (the separator itself is dropped by stripping)."""
    half = cut // 2
    for separator in ("\n\n", "\n"):
        at = rest.rfind(separator, 0, cut + len(separator))
        if at > half:
            return at
    for at in range(cut, 0, -1):
        if rest[at].isspace():
            return at
    for at in range(cut - 1, half, -1):
        if rest[at] in _CJK_BREAKS:
            return at + 1
    return cut
