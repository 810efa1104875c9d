"""Which path a local transcription takes (batched or sequential), its settings, and the bench's
check that no sentence of a script went missing."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bench.local_batched import missing_sentences, script
from bot.config.load import parse_config
from bot.model.errors import ConfigError
from bot.providers.local.batched import prompt_after, speech_only, windows
from bot.providers.local.settings import WhisperSettings, default_batch_size, read_whisper
from bot.providers.local.whisper import WhisperSpeechToText
from testkit.support import config_dict


def test_default_batch_size_grows_with_threads_within_8_to_16() -> None:
    assert [default_batch_size(n) for n in (1, 2, 3, 4, 8)] == [8, 8, 12, 16, 16]


def test_read_whisper_batch_defaults_follow_the_threads_and_keys_override() -> None:
    auto, problems = read_whisper({"cpu_threads": 4}, "providers.local")
    assert not problems and (auto.batch_size, auto.batch_min_seconds) == (16, 300.0)
    given, _ = read_whisper({"batch_size": 3, "batch_min_seconds": 0}, "providers.local")
    assert (given.batch_size, given.batch_min_seconds) == (3, 0.0)


def test_read_whisper_refuses_a_negative_threshold() -> None:
    _, problems = read_whisper({"batch_min_seconds": -1}, "providers.local")
    assert problems == ["providers.local.batch_min_seconds: must be 0 or more"]


def test_config_schema_knows_the_batch_keys_and_checks_them(tmp_path: Path) -> None:
    pytest.importorskip("faster_whisper", reason="the local extra is not installed")
    local = {"type": "local", "batch_size": 0, "batch_min_seconds": 90}
    data = config_dict(tmp_path, providers={"local": local})
    with pytest.raises(ConfigError) as info:
        parse_config(data, env={})
    assert any("batch_size" in p for p in info.value.problems), info.value.problems
    assert not any("batch_min_seconds" in p for p in info.value.problems)


@pytest.mark.parametrize(
    ("threshold", "duration", "batched"),
    [
        (300.0, 299.9, False),
        (300.0, 300.0, True),
        (300.0, 7200.0, True),
        (0.0, 5.0, True),
        (0.0, 0.0, False),  # unknown length: the sequential path takes any length
        (math.inf, 7200.0, False),
    ],
)
def test_whisper_takes_the_batched_path_from_the_threshold(
    threshold: float, duration: float, batched: bool
) -> None:
    stt = WhisperSpeechToText("local", WhisperSettings(batch_min_seconds=threshold))
    try:
        assert stt.batched(duration) is batched
    finally:
        stt.close()


def test_missing_sentences_names_a_dropped_sentence_not_a_misheard_word() -> None:
    reference = "The cat sat on the mat. A dog ran in the park. Birds sang all day long."
    assert missing_sentences(reference, "the cat sat on a mat a dog ran in the park birds") == [
        "Birds sang all day long."
    ]
    assert missing_sentences(reference, reference.lower()) == []


def test_bench_script_is_the_same_each_run_and_long_enough() -> None:
    paragraphs = script(120.0)
    assert paragraphs == script(120.0)
    assert len(paragraphs) >= 9 and all(2 <= len(p) <= 4 for p in paragraphs)


def test_windows_hold_whole_speech_spans_up_to_the_limit_and_cut_only_between_them() -> None:
    spans = [
        {"start": 0, "end": 8},
        {"start": 10, "end": 25},
        {"start": 27, "end": 31},  # 31 from 0 is past 30: a new window starts at its start
        {"start": 40, "end": 70},  # a span of the whole limit stands alone
        {"start": 71, "end": 72},
    ]
    assert windows(spans, 30) == [(0, 25), (27, 31), (40, 70), (71, 72)]
    assert windows([], 30) == []


def test_prompt_after_is_the_last_words_heard_or_none() -> None:
    assert prompt_after(["One two.", "", " three four five. "], words=3) == "three four five."
    assert prompt_after(["", "  "]) is None
    assert prompt_after(["anything"], words=0) is None


def test_speech_only_leaves_out_the_pauses_and_says_where_the_spans_went() -> None:
    np = pytest.importorskip("numpy")
    audio = np.arange(20, dtype=np.float32)
    speech, moved = speech_only(audio, [{"start": 2, "end": 5}, {"start": 10, "end": 12}])
    assert speech.tolist() == [2.0, 3.0, 4.0, 10.0, 11.0]
    assert moved == [{"start": 0, "end": 3}, {"start": 3, "end": 5}]
    empty, none = speech_only(audio, [])
    assert len(empty) == 0 and none == []
