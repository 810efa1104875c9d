"""Stitch the transcripts of a long recording's parts into one, on the recording's clock."""

from __future__ import annotations

from collections.abc import Sequence

from bot.chat.replies import missing_part_text
from bot.model.job import JobState, Part
from bot.model.speech import Segment, Transcript, Word
from bot.text import ENGLISH, Text


def stitch(parts: Sequence[Part], tr: Text = ENGLISH) -> Transcript:
    """One transcript from the parts in order: every timing moved by its part's start, so
    subtitles run on across parts; speakers kept apart per part (a diarizer numbers the
    speakers of each part afresh, and nothing says part 2's first speaker is part 1's); a part
    that failed shows as a marked gap with its time range (in ``tr``'s language)."""
    texts: list[str] = []
    segments: list[Segment] = []
    words: list[Word] = []
    language = currency = None
    cost = 0.0
    diarized = False
    for part in parts:
        texts.append(_text(part, len(parts), tr))
        t = part.transcript if part.state is JobState.COMPLETED else None
        if t is None:
            segments.append(Segment(texts[-1], part.start, part.start + part.duration))
            continue
        segments += [_segment(s, part) for s in t.segments]
        words += [_word(w, part) for w in t.words]
        language = language or t.language
        currency = currency or t.currency
        cost += t.cost or part.cost or 0.0
        diarized = diarized or t.diarized
    return Transcript(
        text="\n\n".join(x for x in texts if x),
        segments=tuple(segments),
        words=tuple(words),
        language=language,
        duration=sum(p.duration for p in parts),
        cost=cost,
        currency=currency,
        diarized=diarized,
    )


def finished_text(parts: Sequence[Part], tr: Text = ENGLISH) -> str | None:
    """The text of the parts that have ended, up to the first one still running, joined as
    :func:`stitch` joins them: always a prefix of the final text (None: nothing yet)."""
    texts: list[str] = []
    for part in parts:
        if not part.state.terminal:
            break
        texts.append(_text(part, len(parts), tr))
    return "\n\n".join(x for x in texts if x) or None


def _text(part: Part, count: int, tr: Text) -> str:
    """A part's text in the stitched transcript: its own, or its marked gap."""
    t = part.transcript if part.state is JobState.COMPLETED else None
    if t is None:
        return missing_part_text(part.index, count, part.start, part.duration, part.error, tr)
    return t.text.strip()


def _shift(value: float | None, part: Part) -> float | None:
    return None if value is None else value + part.start


def _speaker(speaker: str | None, part: Part) -> str | None:
    return None if speaker is None else f"{part.index + 1}:{speaker}"


def _segment(s: Segment, part: Part) -> Segment:
    return Segment(s.text, _shift(s.start, part), _shift(s.end, part), _speaker(s.speaker, part))


def _word(w: Word, part: Part) -> Word:
    start, end = _shift(w.start, part), _shift(w.end, part)
    return Word(w.text, start, end, _speaker(w.speaker, part), w.type)
