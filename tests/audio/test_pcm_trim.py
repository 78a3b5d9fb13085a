"""Leading silence: dropped before the first sound, whatever the chunking."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custom_components.rtsp_announcer.audio.pcm import LeadingSilenceTrimmer
from custom_components.rtsp_announcer.audio.speech import (
    SpeechBackend,
    SpeechEngine,
    SpeechOptions,
    split_sentences,
)

RATE = 22050
# -50 dBFS of 32767.
THRESHOLD = 32767 * 10 ** (-50 / 20)


def pcm(*parts: np.ndarray) -> bytes:
    return bytes(np.concatenate(parts).astype("<i2").tobytes())


def tone(samples: int, level: int = 8000) -> np.ndarray:
    wave: np.ndarray = level * np.sin(np.arange(samples) * 0.3) + level / 2
    return wave.astype(np.int16)


def quiet(samples: int, level: int = 0) -> np.ndarray:
    silent: np.ndarray = np.full(samples, level, dtype=np.int16)
    return silent


def onset(data: bytes) -> int:
    samples = np.abs(np.frombuffer(data, dtype="<i2").astype(np.int32))
    loud = np.flatnonzero(samples > THRESHOLD)
    return int(loud[0]) if loud.size else len(samples)


def expected(data: bytes, keep: int, limit: int) -> bytes:
    start = min(max(0, onset(data) - keep), limit)
    return data[2 * start :]


def trim(data: bytes, cuts: list[int], **kwargs: float) -> bytes:
    trimmer = LeadingSilenceTrimmer(RATE, **kwargs)
    out = []
    last = 0
    for cut in [*sorted(cuts), len(data)]:
        out.append(trimmer.process(data[last:cut]))
        last = cut
    out.append(trimmer.flush())
    return b"".join(out)


def test_drops_silence_keeping_five_ms() -> None:
    data = pcm(quiet(1100), tone(2000), quiet(500), tone(100))
    out = trim(data, [])
    # 5 ms at 22050 Hz is 110 samples.
    assert out == data[2 * (1100 - 110) :]
    trimmer = LeadingSilenceTrimmer(RATE)
    assert trimmer.process(data) == out
    assert trimmer.dropped_samples == 990
    assert not trimmer.trimming
    # The pause inside the sound is not touched, nor anything after it.
    assert trimmer.process(pcm(quiet(3000))) == pcm(quiet(3000))


def test_noise_below_the_threshold_is_silence() -> None:
    data = pcm(quiet(1000, level=90), quiet(1000, level=-90), tone(500))
    assert trim(data, [700, 1500]) == data[2 * (2000 - 110) :]


def test_sound_from_the_first_sample_is_kept_whole() -> None:
    data = pcm(tone(500))
    assert trim(data, [1, 3, 10]) == data


def test_gives_up_after_a_second() -> None:
    # Two seconds of silence, then sound: only the first second is dropped.
    data = pcm(quiet(2 * RATE), tone(500))
    trimmer = LeadingSilenceTrimmer(RATE)
    out = b"".join(trimmer.process(data[i : i + 882]) for i in range(0, len(data), 882))
    assert out == data[2 * RATE :]
    assert trimmer.dropped_samples == RATE
    # Silence alone: the same bound, then it flows.
    silent = pcm(quiet(3 * RATE))
    assert trim(silent, [2000, 30000]) == silent[2 * RATE :]


def test_short_silence_alone_leaves_the_kept_part() -> None:
    silent = pcm(quiet(3000))
    trimmer = LeadingSilenceTrimmer(RATE)
    assert trimmer.process(silent) == b""
    assert trimmer.trimming
    assert trimmer.flush() == silent[-220:]
    assert trimmer.process(b"") == b""


def test_reset_trims_again() -> None:
    trimmer = LeadingSilenceTrimmer(RATE, keep_ms=0)
    assert trimmer.process(pcm(quiet(100), tone(10))) == pcm(tone(10))
    trimmer.reset()
    assert trimmer.trimming
    assert trimmer.process(pcm(quiet(100), tone(10))) == pcm(tone(10))


def test_odd_bytes_and_bad_arguments() -> None:
    data = pcm(quiet(400), tone(300))
    # Cut in the middle of samples: the odd byte waits for its partner.
    assert trim(data, [1, 3, 401, 799, 801]) == data[2 * (400 - 110) :]
    with pytest.raises(ValueError, match="sample_rate"):
        LeadingSilenceTrimmer(0)
    with pytest.raises(ValueError, match="keep_ms"):
        LeadingSilenceTrimmer(RATE, keep_ms=-1)


def test_max_ms_zero_trims_nothing() -> None:
    data = pcm(quiet(400), tone(300))
    assert trim(data, [100], max_ms=0) == data


@settings(max_examples=300, deadline=None)
@given(
    silence=st.integers(0, 3000),
    noise=st.integers(0, 100),
    sound=st.integers(0, 400),
    tail=st.integers(0, 400),
    keep_ms=st.sampled_from([0.0, 1.0, 5.0, 20.0]),
    max_ms=st.sampled_from([0.0, 10.0, 50.0, 1000.0]),
    cuts=st.lists(st.integers(0, 8000), max_size=12),
)
def test_chunked_equals_one_shot(
    silence: int,
    noise: int,
    sound: int,
    tail: int,
    keep_ms: float,
    max_ms: float,
    cuts: list[int],
) -> None:
    rng = np.random.default_rng(silence + sound)
    hiss = rng.integers(-noise, noise + 1, silence).astype(np.int16)
    data = pcm(hiss, tone(sound), quiet(tail))
    keep = round(RATE * keep_ms / 1000)
    limit = round(RATE * max_ms / 1000)
    cuts = [cut for cut in cuts if cut <= len(data)]
    one_shot = trim(data, [], keep_ms=keep_ms, max_ms=max_ms)
    assert one_shot == expected(data, keep, limit)
    assert trim(data, cuts, keep_ms=keep_ms, max_ms=max_ms) == one_shot


# -- on espeak-ng's own audio -------------------------------------------------------

PHRASES = {
    # A plosive first: its closure is silent, ~49 ms in all.
    "plosive": ("Turn on the kitchen lights.", "en"),
    # A vowel first: espeak's bare 12 ms.
    "vowel": ("Hello. The door is open.", "en"),
    "chinese": ("请打开厨房的灯。", "zh"),
}


async def untrimmed(engine: SpeechEngine, text: str, language: str) -> bytes:
    """espeak's raw output for `text`, sentence by sentence, as the engine asks."""
    voice = (await engine.resolve_voice(language)).identifier
    chunks: list[bytes] = []

    def sink(data: bytes) -> bool:
        chunks.append(data)
        return True

    def run(backend: SpeechBackend) -> None:
        backend.set_voice(voice)
        backend.set_options(SpeechOptions())
        for sentence in split_sentences(text):
            backend.synthesize(sentence, sink)

    await engine._call(run)
    return b"".join(chunks)


@pytest.mark.parametrize("phrase", list(PHRASES))
async def test_espeak_speech_starts_at_once(engine: SpeechEngine, phrase: str) -> None:
    text, language = PHRASES[phrase]
    raw = await untrimmed(engine, text, language)
    leading = onset(raw)
    assert 0.010 < leading / RATE < 0.080
    trimmed = await engine.synthesize(text, language=language)
    # Starts 5 ms before the first audible sample...
    assert onset(trimmed) / RATE == pytest.approx(0.005, abs=0.0005)
    # ...and is shorter by the silence dropped, less those 5 ms; the pauses
    # between sentences stay (espeak varies by a few samples from run to run).
    dropped = (len(raw) - len(trimmed)) / 2 / RATE
    assert dropped == pytest.approx(leading / RATE - 0.005, abs=0.003)


async def test_trimmed_after_resampling(engine: SpeechEngine) -> None:
    text, language = PHRASES["plosive"]
    at_48k = await engine.synthesize(text, sample_rate=48000, language=language)
    samples = np.abs(np.frombuffer(at_48k, dtype="<i2").astype(np.int32))
    first = int(np.flatnonzero(samples > THRESHOLD)[0])
    assert first / 48000 == pytest.approx(0.005, abs=0.001)
