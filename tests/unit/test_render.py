"""Tests for bot.chat.render: transcript text, speaker labels, subtitles and message splitting."""

from __future__ import annotations

import random
import re

import pytest

from bot.chat.render import (
    Cue,
    join_text,
    render_diarized,
    render_plain,
    render_transcript,
    speaker_labels,
    split_message,
    split_sentences,
    subtitle_cues,
    to_srt,
    to_vtt,
)
from bot.model.speech import Segment, Transcript, Word


def _eleven_words() -> tuple[Word, ...]:
    """ElevenLabs Scribe shape: words and spacing tokens, each with a speaker_id."""
    tokens = [
        ("Hi", "word", 0.0, 0.3, "speaker_0"),
        (" ", "spacing", 0.3, 0.4, "speaker_0"),
        ("there,", "word", 0.4, 0.8, "speaker_0"),
        (" ", "spacing", 0.8, 0.9, "speaker_0"),
        ("Bob.", "word", 0.9, 1.2, "speaker_0"),
        (" ", "spacing", 1.2, 1.5, "speaker_1"),
        ("(laughs)", "audio_event", 1.5, 1.9, "speaker_1"),
        (" ", "spacing", 1.9, 2.0, "speaker_1"),
        ("Hello!", "word", 2.0, 2.4, "speaker_1"),
        (" ", "spacing", 2.4, 2.6, "speaker_0"),
        ("Bye", "word", 2.6, 3.0, "speaker_0"),
    ]
    return tuple(
        Word(text, start, end, speaker, kind) for text, kind, start, end, speaker in tokens
    )


def _cantonese() -> Transcript:
    return Transcript(
        text="你好，我係阿明。早晨！",
        segments=(
            Segment("你好，", 0.0, 1.0, "SPEAKER_00"),
            Segment("我係阿明。", 1.0, 2.5, "SPEAKER_00"),
            Segment("早晨！", 2.7, 3.2, "SPEAKER_01"),
        ),
        language="yue",
        diarized=True,
    )


# --- labels and text ---------------------------------------------------------------------------


def test_speaker_labels_in_order_of_first_appearance() -> None:
    labels = speaker_labels(["SPEAKER_07", None, "speaker_0", "SPEAKER_07", "x"])
    assert labels == {"SPEAKER_07": "Speaker 1", "speaker_0": "Speaker 2", "x": "Speaker 3"}


def test_render_plain_prefers_text() -> None:
    t = Transcript(text="  Hello world.  ", segments=(Segment("ignored"),))
    assert render_plain(t) == "Hello world."


def test_render_plain_from_segments_then_words() -> None:
    assert (
        render_plain(Transcript(text="", segments=(Segment("One."), Segment(" Two. "))))
        == "One. Two."
    )
    words = (Word("Hello"), Word(","), Word("world"), Word("!"))
    assert render_plain(Transcript(text="", words=words)) == "Hello, world!"


def test_join_text_spacing_rules() -> None:
    assert (
        join_text(["He", "said", "(", "quietly", ")", ":", "no", "."]) == "He said (quietly): no."
    )
    assert join_text(["你好", "，", "我", "係", "阿明", "。"]) == "你好，我係阿明。"
    assert join_text(["OK", "你好", "", "  "]) == "OK 你好"


def test_empty_transcript_renders_nothing() -> None:
    t = Transcript(text="")
    assert render_plain(t) == render_diarized(t) == render_transcript(t, diarize=True) == ""
    assert to_srt(t) is None
    assert to_vtt(t) is None


def test_render_diarized_merges_consecutive_segments() -> None:
    t = Transcript(
        text="a b c d",
        segments=(
            Segment("Good morning.", 0, 1, "speaker_1"),
            Segment("How are you?", 1, 2, "speaker_1"),
            Segment("Fine.", 2, 3, "speaker_0"),
            Segment("Good.", 3, 4, "speaker_1"),
        ),
        diarized=True,
    )
    assert render_diarized(t) == (
        "Speaker 1: Good morning. How are you?\n\nSpeaker 2: Fine.\n\nSpeaker 1: Good."
    )


def test_render_diarized_from_elevenlabs_words_with_spacing() -> None:
    t = Transcript(text="Hi there, Bob. (laughs) Hello! Bye", words=_eleven_words(), diarized=True)
    assert render_diarized(t) == (
        "Speaker 1: Hi there, Bob.\n\nSpeaker 2: (laughs) Hello!\n\nSpeaker 1: Bye"
    )


def test_render_diarized_from_words_without_spacing() -> None:
    words = (
        Word("Yes", 0, 0.2, "A"),
        Word(",", 0.2, 0.2, "A"),
        Word("sure", 0.3, 0.5, "A"),
        Word("No", 0.8, 1.0, "B"),
        Word("!", 1.0, 1.0, "B"),
    )
    assert (
        render_diarized(Transcript(text="", words=words))
        == "Speaker 1: Yes, sure\n\nSpeaker 2: No!"
    )


def test_render_diarized_cantonese_segments() -> None:
    assert render_diarized(_cantonese()) == "Speaker 1: 你好，我係阿明。\n\nSpeaker 2: 早晨！"


def test_render_diarized_without_speakers_falls_back_to_plain() -> None:
    t = Transcript(text="Just text.", segments=(Segment("Just text.", 0, 1),))
    assert render_diarized(t) == "Just text."


def test_render_transcript_chooses() -> None:
    t = _cantonese()
    assert render_transcript(t, diarize=False) == "你好，我係阿明。早晨！"
    assert render_transcript(t, diarize=True).startswith("Speaker 1: ")


# --- subtitles ---------------------------------------------------------------------------------


def test_srt_from_diarized_segments() -> None:
    assert to_srt(_cantonese()) == (
        "1\n00:00:00,000 --> 00:00:01,000\nSpeaker 1: 你好，\n\n"
        "2\n00:00:01,000 --> 00:00:02,500\nSpeaker 1: 我係阿明。\n\n"
        "3\n00:00:02,700 --> 00:00:03,200\nSpeaker 2: 早晨！\n"
    )


def test_vtt_without_speaker_prefix_when_not_diarized() -> None:
    t = Transcript(
        text="x",
        segments=(
            Segment("First line\n\nwith --> arrow", 3661.5, None),
            Segment("Next", 3662.0, 3663.25),
        ),
    )
    assert to_vtt(t) == (
        "WEBVTT\n\n"
        "01:01:01.500 --> 01:01:02.000\nFirst line with -> arrow\n\n"
        "01:01:02.000 --> 01:01:03.250\nNext\n"
    )


def test_subtitle_speaker_prefix_can_be_forced() -> None:
    cues = subtitle_cues(_cantonese(), diarize=False)
    assert [c.text for c in cues] == ["你好，", "我係阿明。", "早晨！"]


def test_srt_cues_from_words_respect_limits() -> None:
    words = tuple(Word(f"word{i:02d}", i * 0.5, i * 0.5 + 0.4) for i in range(40))
    t = Transcript(text="", words=words)
    cues = subtitle_cues(t)
    assert len(cues) > 2
    for cue in cues:
        assert cue.end - cue.start <= 7.0
        assert len(cue.text) <= 80
        assert cue.end > cue.start
    assert " ".join(c.text for c in cues).split() == [w.text for w in words]
    srt = to_srt(t)
    assert srt is not None
    assert re.fullmatch(
        r"(\d+\n\d\d:\d\d:\d\d,\d{3} --> \d\d:\d\d:\d\d,\d{3}\n[^\n]+\n\n)*"
        r"\d+\n\d\d:\d\d:\d\d,\d{3} --> \d\d:\d\d:\d\d,\d{3}\n[^\n]+\n",
        srt,
    )


def test_word_cues_split_at_speaker_change_and_pause() -> None:
    t = Transcript(text="", words=_eleven_words(), diarized=True)
    assert subtitle_cues(t) == [
        Cue(0.0, 1.2, "Speaker 1: Hi there, Bob."),
        Cue(1.5, 2.4, "Speaker 2: (laughs) Hello!"),
        Cue(2.6, 3.0, "Speaker 1: Bye"),
    ]
    paused = (Word("one", 0, 0.5), Word("two", 0.6, 1.0), Word("three", 5.0, 5.5))
    cues = subtitle_cues(Transcript(text="", words=paused))
    assert [c.text for c in cues] == ["one two", "three"]


def test_no_timings_means_no_subtitles() -> None:
    t = Transcript(text="hello", segments=(Segment("hello"),), words=(Word("hello"),))
    assert subtitle_cues(t) == []
    assert to_srt(t) is None
    assert to_vtt(t) is None


# --- split_message -----------------------------------------------------------------------------


def _words(text: str) -> list[str]:
    return text.split()


def test_split_short_text_is_one_chunk() -> None:
    assert split_message("  hello world \n", 4096) == ["hello world"]
    assert split_message(" \n\t ", 10) == []


def test_split_prefers_paragraph_then_line_breaks() -> None:
    # Both breaks fall in the second half of the 60-character window: the paragraph wins.
    text = "a" * 35 + "\n\n" + "b " * 5 + "\n" + "c " * 40
    assert split_message(text, 60)[0] == "a" * 35
    # A line break beats the later spaces.
    assert split_message("a" * 35 + "\n" + "b " * 40, 60)[0] == "a" * 35
    # A break in the first half would waste the chunk: spaces later on win.
    assert (
        split_message("a" * 10 + "\n\n" + "b " * 40, 60)[0] == "a" * 10 + "\n\n" + "b " * 23 + "b"
    )


def test_split_hard_splits_a_long_word() -> None:
    assert split_message("x" * 25 + " tail", 10) == ["x" * 10, "x" * 10, "xxxxx tail"]
    assert split_message("x" * 25, 10) == ["x" * 10, "x" * 10, "x" * 5]


def test_split_cjk_prefers_punctuation() -> None:
    text = "你好你好你好。" + "早晨" * 4
    assert split_message(text, 10) == ["你好你好你好。", "早晨早晨早晨早晨"]


def test_split_utf16_counts_emoji_as_two() -> None:
    text = "😀" * 5
    assert split_message(text, 4, utf16=True) == ["😀😀", "😀😀", "😀"]
    assert split_message(text, 4) == ["😀😀😀😀", "😀"]


def test_split_rejects_a_useless_limit() -> None:
    with pytest.raises(ValueError):
        split_message("abc", 0)
    with pytest.raises(ValueError):
        split_message("abc", 1, utf16=True)


@pytest.mark.parametrize("utf16", [False, True])
def test_split_properties_on_random_text(utf16: bool) -> None:
    rng = random.Random(7)
    vocab = ["a", "word", "longerword", "😀", "naïve", "你好", "x" * 70, ",", "\n", "\n\n", "—"]
    size = (lambda s: len(s.encode("utf-16-le")) // 2) if utf16 else len
    for _ in range(200):
        text = " ".join(rng.choice(vocab) for _ in range(rng.randint(0, 120)))
        limit = rng.choice([5, 16, 50, 200])
        chunks = split_message(text, limit, utf16=utf16)
        assert all(chunk and chunk == chunk.strip() for chunk in chunks)
        assert all(size(chunk) <= limit for chunk in chunks)
        # Nothing lost or reordered: the non-space characters are identical.
        assert "".join(_words("".join(chunks))) == "".join(_words(text))
        if limit >= 70 * 2:  # no word is longer than the limit, so none may be cut
            assert _words(" ".join(chunks)) == _words(text)


def test_split_telegram_sized_transcript() -> None:
    text = "\n\n".join(f"Speaker {i % 2 + 1}: " + "blah " * 300 for i in range(10))
    chunks = split_message(text, 4096, utf16=True)
    assert len(chunks) > 1
    assert all(len(c) <= 4096 for c in chunks)
    assert all(c.startswith("Speaker") for c in chunks)  # cut at paragraph breaks


# --- split_sentences ---------------------------------------------------------------------------


def test_split_sentences_packs_whole_sentences_under_the_limit() -> None:
    text = "First one here. Second is a bit longer! Third? Fourth ends it."
    parts = split_sentences(text, 40)
    assert parts == ["First one here. Second is a bit longer!", "Third? Fourth ends it."]
    assert all(len(p) <= 40 for p in parts)
    assert " ".join(parts) == text


def test_split_sentences_cuts_an_overlong_sentence_at_words() -> None:
    text = "Short. " + "word " * 30 + "end. Tail."
    parts = split_sentences(text, 50)
    assert parts[0] == "Short." and all(len(p) <= 50 for p in parts)
    assert " ".join(parts).split() == text.split()
    assert split_sentences("你好。今天天氣好！", 6) == ["你好。", "今天天氣好！"]
