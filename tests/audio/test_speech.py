"""The speech engine: real espeak-ng, and fakes for what espeak won't do on demand."""

from __future__ import annotations

import asyncio
import itertools
import math
import threading
import time
from collections.abc import AsyncIterator
from contextlib import aclosing, asynccontextmanager
from unittest.mock import patch

import numpy as np
import pytest

from custom_components.rtsp_announcer.audio.exceptions import (
    AnnouncerError,
    InvalidOptionError,
    SpeechEngineError,
    SpeechUnavailableError,
    UnknownLanguageError,
    UnknownVoiceError,
)
from custom_components.rtsp_announcer.audio.speech import (
    DEFAULT_RATE,
    ChunkSink,
    EspeakBackend,
    SpeechBackend,
    SpeechEngine,
    SpeechOptions,
    VoiceCatalog,
    VoiceEngine,
    VoiceInfo,
    format_language,
    split_sentences,
)
from custom_components.rtsp_announcer.audio.speech.espeak import _import_binding
from tests.audio.helpers import speech_threads
from tests.helpers.waiting import until

SHORT = "Turn on the kitchen lights."
LONG = " ".join(
    [
        "The quick brown fox jumps over the lazy dog near the river bank.",
        "Please remember to close the garage door before you leave the house.",
        "The washing machine has finished and the laundry is ready to be dried.",
    ]
    * 15
)
CHINESE = "请打开厨房的灯。"
NATIVE = 22050


# Full-width marks, spelled out so that they cannot be mistaken for ASCII.
EXCLAIM, QUESTION, SEMICOLON = "\uff01", "\uff1f", "\uff1b"


def is_running(engine: SpeechEngine) -> bool:
    """Read afresh: the state changes behind the type checker's narrowing."""
    return engine.running


def catalog_of(engine: SpeechEngine) -> VoiceCatalog | None:
    return engine.catalog


async def drain(audio: AsyncIterator[bytes]) -> int:
    total = 0
    async for chunk in audio:
        total += len(chunk)
    return total


def seconds(pcm: bytes, rate: int = NATIVE) -> float:
    return len(pcm) / 2 / rate


def rms(pcm: bytes) -> float:
    return float(np.sqrt(np.mean(np.frombuffer(pcm, dtype="<i2").astype(float) ** 2)))


# -- real espeak-ng ---------------------------------------------------------------


async def test_english_duration(engine: SpeechEngine) -> None:
    at_default = await engine.synthesize(SHORT)
    at_200 = await engine.synthesize(SHORT, rate=200)
    # NOTES: 1.38 s at pyttsx3's 200 wpm; espeak varies by a few per cent.
    assert seconds(at_200) == pytest.approx(1.38, rel=0.12)
    assert seconds(at_default) == pytest.approx(1.38 * 200 / DEFAULT_RATE, rel=0.12)
    assert rms(at_default) > 500
    assert engine.native_rate == NATIVE


async def test_chinese(engine: SpeechEngine) -> None:
    pcm = await engine.synthesize(CHINESE, language="zh")
    assert 1.0 < seconds(pcm) < 4.0
    assert rms(pcm) > 500
    assert (await engine.resolve_voice("zh")).identifier == "sit/cmn"


async def test_sample_rate(engine: SpeechEngine) -> None:
    native = await engine.synthesize(SHORT)
    at_48k = await engine.synthesize(SHORT, sample_rate=48000)
    assert seconds(at_48k, 48000) == pytest.approx(seconds(native), rel=0.05)


async def speak_with(voice: VoiceEngine, text: str, language: str) -> bytes:
    """What a fallback does with any voice: only the protocol's members."""
    async with aclosing(
        voice.stream(text, sample_rate=16000, language=language)
    ) as audio:
        return b"".join([chunk async for chunk in audio])


async def test_local_engine_is_a_voice_engine(engine: SpeechEngine) -> None:
    voice: VoiceEngine = engine
    assert voice.name == "espeak-ng"
    pcm = await speak_with(voice, SHORT, "en-US")
    assert seconds(pcm, 16000) == pytest.approx(1.38 * 200 / DEFAULT_RATE, rel=0.12)
    assert seconds(await speak_with(voice, CHINESE, "zh-CN"), 16000) > 1.0


async def test_first_chunk_long_before_synthesis_ends(engine: SpeechEngine) -> None:
    await engine.async_start()
    start = time.perf_counter()
    whole = await engine.synthesize(LONG, sample_rate=24000)
    full = time.perf_counter() - start
    assert seconds(whole, 24000) > 60

    before = engine.stats.samples
    start = time.perf_counter()
    async with aclosing(engine.stream(LONG, sample_rate=24000)) as audio:
        first = await anext(audio)
        first_at = time.perf_counter() - start
        received = engine.stats.samples - before
    assert first
    assert first_at < full / 3
    assert first_at < 0.05
    # Only the first sentences had been made when the first chunk came out.
    assert received / NATIVE < 0.25 * seconds(whole, 24000)


def test_speech_options_from_mapping() -> None:
    options = {"rate": 300, "pitch": 20, "volume": 0.5, "gap": 5, "voice": "x"}
    assert SpeechOptions.from_mapping(options) == SpeechOptions.create(
        rate=300, pitch=20, volume=0.5, gap=5
    )
    assert SpeechOptions.from_mapping({}) == SpeechOptions()
    with pytest.raises(InvalidOptionError):
        SpeechOptions.from_mapping({"rate": "fast"})


def test_stream_with_passes_the_options_on(engine: SpeechEngine) -> None:
    options = SpeechOptions.create(rate=300, pitch=20, volume=0.5, gap=5)
    with patch.object(engine, "stream") as stream:
        audio = engine.stream_with(SHORT, options, sample_rate=16000, voice="v")
    assert audio is stream.return_value
    stream.assert_called_once_with(
        SHORT, sample_rate=16000, voice="v", rate=300, pitch=20, volume=0.5, gap=5
    )


async def test_cancel_aborts_and_next_request_works(engine: SpeechEngine) -> None:
    await engine.async_start()
    async with aclosing(engine.stream(LONG, sample_rate=16000)) as audio:
        async for _chunk in audio:
            break
    assert engine.stats.cancelled == 1
    # Cancelled sentences are never synthesised in full: far less than the
    # text's 100 s of audio came out of espeak.
    await asyncio.sleep(0.05)
    assert engine.stats.samples / NATIVE < 60
    assert seconds(await engine.synthesize(SHORT)) > 1.0


async def test_task_cancellation_aborts(engine: SpeechEngine) -> None:
    await engine.async_start()
    got_chunk = asyncio.Event()

    async def consume() -> None:
        async with aclosing(engine.stream(LONG, sample_rate=24000)) as audio:
            async for _chunk in audio:
                got_chunk.set()
                await asyncio.sleep(10)

    task = asyncio.create_task(consume())
    await got_chunk.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert engine.stats.cancelled == 1
    assert seconds(await engine.synthesize(SHORT)) > 1.0


async def test_callback_abort_in_espeak(engine: SpeechEngine) -> None:
    """Returning 1 from the synth callback stops espeak_Synth at once."""
    await engine.async_start()
    chunks: list[int] = []

    def run(backend: SpeechBackend) -> None:
        def sink(data: bytes) -> bool:
            chunks.append(len(data))
            return False

        backend.set_voice("gmw/en")
        backend.set_options(SpeechOptions())
        backend.synthesize(LONG, sink)

    await engine._call(run)
    assert len(chunks) == 1
    assert seconds(await engine.synthesize(SHORT)) > 1.0


async def test_error_inside_callback_is_contained(engine: SpeechEngine) -> None:
    await engine.async_start()

    def run(backend: SpeechBackend) -> None:
        def sink(data: bytes) -> bool:
            msg = "consumer broke"
            raise KeyError(msg)

        backend.synthesize(LONG, sink)

    with pytest.raises(SpeechEngineError) as err:
        await engine._call(run)
    assert isinstance(err.value.__cause__, KeyError)
    with pytest.raises(SpeechEngineError, match="could not load voice"):
        await engine._call(lambda backend: backend.set_voice("nope/nothing"))
    # Same thread, still working.
    assert len(speech_threads()) == 1
    assert seconds(await engine.synthesize(SHORT)) > 1.0


async def test_voices_for_language(engine: SpeechEngine) -> None:
    voices = [voice.identifier for voice in await engine.voices_for_language("zh")]
    assert voices[0] == "sit/cmn"
    assert "sit/yue" in voices
    with pytest.raises(UnknownLanguageError):
        await engine.voices_for_language("xx")


async def test_concurrent_requests_in_order(engine: SpeechEngine) -> None:
    await engine.async_start()
    texts = [" ".join(["word"] * (i + 1)) + "." for i in range(20)]
    finished: list[int] = []

    async def one(index: int) -> bytes:
        pcm = await engine.synthesize(texts[index], sample_rate=16000)
        finished.append(index)
        return pcm

    results = await asyncio.gather(*(one(i) for i in range(20)))
    assert finished == list(range(20))
    durations = [seconds(pcm, 16000) for pcm in results]
    assert all(d > 0.2 for d in durations)
    # One more word each time: every caller got its own text.
    assert durations[-1] > durations[0] + 3
    assert sum(b > a for a, b in itertools.pairwise(durations)) >= 17
    assert engine.stats.failed == 0
    assert len(speech_threads()) == 1


async def test_event_loop_stays_responsive(engine: SpeechEngine) -> None:
    await engine.async_start()
    gaps: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    tick = asyncio.create_task(ticker())
    await asyncio.gather(
        *(engine.synthesize(LONG, sample_rate=48000) for _ in range(2))
    )
    stop.set()
    await tick
    assert max(gaps) < 0.05


async def test_voices(engine: SpeechEngine) -> None:
    assert catalog_of(engine) is None
    voices = await engine.voices()
    catalog = catalog_of(engine)
    assert catalog is not None
    assert catalog.resolve("zh-CN").identifier == "sit/cmn"
    assert len(voices) > 100
    by_id = {voice.identifier.lower(): voice for voice in voices}
    cmn = by_id["sit/cmn"]
    # All of espeak's languages, not just the first one pyttsx3 keeps.
    assert {code for _, code in cmn.languages} >= {"cmn", "zh"}
    assert cmn.language == "cmn"
    assert (8, "zh") in by_id["sit/yue"].languages
    assert by_id["gmw/en-us"].name == "English (America)"
    assert await engine.voices() == voices


@pytest.mark.parametrize(
    ("language", "identifier"),
    [
        ("zh", "sit/cmn"),
        ("zh-CN", "sit/cmn"),
        ("zh_cn", "sit/cmn"),
        ("ZH-Hans", "sit/cmn"),
        ("zh-TW", "sit/cmn"),
        ("cmn", "sit/cmn"),
        ("yue", "sit/yue"),
        ("zh-HK", "sit/yue"),
        ("zh-hant-hk", "sit/yue"),
        ("de-DE", "gmw/de"),
        ("de", "gmw/de"),
        ("en-US", "gmw/en-us"),
        ("en_us", "gmw/en-us"),
        ("EN-us", "gmw/en-us"),
        ("en", "gmw/en"),
        ("en-GB", "gmw/en"),
        ("en-AU", "gmw/en"),
        ("pt-BR", "roa/pt-br"),
        ("pt", "roa/pt"),
        ("fr-CA", "roa/fr"),
        ("es-MX", "roa/es-419"),
        ("nb-NO", "gmq/nb"),
    ],
)
async def test_language_mapping(
    engine: SpeechEngine, language: str, identifier: str
) -> None:
    voice = await engine.resolve_voice(language, None)
    assert voice.identifier.lower() == identifier


async def test_unknown_language_and_voice(engine: SpeechEngine) -> None:
    for language in ("xx", "tlh", "qq-QQ", "", "en us", "123"):
        with pytest.raises(UnknownLanguageError):
            await engine.resolve_voice(language, None)
    with pytest.raises(UnknownVoiceError):
        await engine.resolve_voice("en", "gmw/nonexistent")
    with pytest.raises(UnknownLanguageError):
        await engine.synthesize(SHORT, language="xx-YY")
    with pytest.raises(UnknownVoiceError):
        await engine.synthesize(SHORT, voice="robot")
    assert isinstance(UnknownVoiceError("x"), AnnouncerError)


async def test_voice_by_identifier_or_name(engine: SpeechEngine) -> None:
    assert (await engine.resolve_voice("en", "GMW/EN-US")).identifier == "gmw/en-US"
    voice = await engine.resolve_voice("en", "English (America)")
    assert voice.identifier == "gmw/en-US"
    pcm = await engine.synthesize(SHORT, voice="sit/cmn", language="zh")
    assert seconds(pcm) > 0.5


async def test_supported_languages(engine: SpeechEngine) -> None:
    languages = await engine.supported_languages()
    assert languages == sorted(set(languages))
    for code in ("en", "en-US", "en-GB", "de", "de-DE", "zh", "zh-CN", "zh-HK"):
        assert code in languages
    assert {"cmn", "yue", "zh-Hans", "cmn-Latn-pinyin"} <= set(languages)
    for code in languages:
        await engine.resolve_voice(code)


@pytest.mark.parametrize(
    "options",
    [
        {"rate": 79},
        {"rate": 451},
        {"rate": True},
        {"rate": 150.0},
        {"rate": "fast"},
        {"pitch": -1},
        {"pitch": 101},
        {"volume": 1.01},
        {"volume": 2},
        {"volume": -0.1},
        {"volume": True},
        {"volume": "loud"},
        {"gap": -1},
        {"gap": 101},
        {"sample_rate": 7999},
        {"sample_rate": 48001},
    ],
)
async def test_option_validation(
    engine: SpeechEngine, options: dict[str, object]
) -> None:
    kwargs: dict[str, object] = {"sample_rate": 16000, **options}
    with pytest.raises(InvalidOptionError) as err:
        engine.stream(SHORT, **kwargs)  # type: ignore[arg-type]
    assert isinstance(err.value, ValueError)
    with pytest.raises(InvalidOptionError):
        await engine.synthesize(SHORT, **kwargs)  # type: ignore[arg-type]
    if "sample_rate" not in options:
        with pytest.raises(InvalidOptionError):
            await engine.synthesize(SHORT, **options)  # type: ignore[arg-type]
    # Rejected before any work: no thread was started for it.
    assert not engine.running


async def test_options_change_audio(engine: SpeechEngine) -> None:
    slow = await engine.synthesize(SHORT, rate=80)
    fast = await engine.synthesize(SHORT, rate=450)
    assert seconds(slow) > 2 * seconds(fast)
    gapped = await engine.synthesize(SHORT, gap=30)
    assert seconds(gapped) > seconds(await engine.synthesize(SHORT)) + 0.5
    # The integration's volume scale: 0.5 is a quarter of the amplitude
    # (-12 dB), mapped onto espeak's own 0-200.
    full = await engine.synthesize(SHORT)
    half = await engine.synthesize(SHORT, volume=0.5)
    level = 20 * math.log10(rms(half) / rms(full))
    assert level == pytest.approx(-12.04, abs=0.1), f"volume 0.5: {level:.2f} dB"
    print(f"local voice at volume 0.5: {level:.2f} dB")  # noqa: T201
    silent = await engine.synthesize(SHORT, volume=0)
    assert not np.frombuffer(silent, dtype="<i2").any()
    extremes = [
        SpeechOptions.create(rate=80, pitch=0, volume=0, gap=0),
        SpeechOptions.create(rate=450, pitch=100, volume=1, gap=100),
    ]
    assert extremes[0].rate == 80
    assert (extremes[0].gain, extremes[1].gain) == (0.0, 1.0)
    assert SpeechOptions.create(volume=0.5).gain == 0.25
    assert extremes[1].gap == 100


async def test_empty_text_yields_nothing(engine: SpeechEngine) -> None:
    assert await engine.synthesize("") == b""
    assert await engine.synthesize("  ... !! ") == b""


async def test_stop_restart(engine: SpeechEngine) -> None:
    assert not is_running(engine)
    await engine.async_start()
    assert is_running(engine)
    assert len(speech_threads()) == 1
    await engine.async_stop()
    await engine.async_stop()
    assert not is_running(engine)
    assert not speech_threads()
    # Lazily back on the next request.
    assert await engine.synthesize(SHORT)
    assert is_running(engine)
    await engine.async_stop()
    assert not speech_threads()
    async with engine as started:
        assert started.running
    assert not speech_threads()


async def test_two_engines_take_turns() -> None:
    first, second = SpeechEngine(), SpeechEngine()
    try:
        results = await asyncio.gather(
            *(e.synthesize(SHORT) for _ in range(4) for e in (first, second))
        )
    finally:
        await first.async_stop()
        await second.async_stop()
    assert all(seconds(pcm) > 1.0 for pcm in results)
    assert not speech_threads()


# -- text --------------------------------------------------------------------------


def test_split_sentences() -> None:
    text = (
        'Hello Dr. Smith. It is 3.5 degrees outside! Really? "Yes." Next line\n'
        f"new line. 你好。今天很好{EXCLAIM}真的吗{QUESTION}是的{SEMICOLON}好。」ok"
    )
    assert split_sentences(text) == [
        "Hello Dr. Smith.",
        "It is 3.5 degrees outside!",
        "Really?",
        '"Yes."',
        "Next line",
        "new line.",
        "你好。",
        f"今天很好{EXCLAIM}",
        f"真的吗{QUESTION}",
        f"是的{SEMICOLON}",
        "好。」",
        "ok",
    ]
    assert split_sentences("") == []
    assert split_sentences(" ... \n !! ") == []
    assert split_sentences("No end mark") == ["No end mark"]
    assert split_sentences("A\x00B.") == ["A B."]


def test_split_long_sentence() -> None:
    words = " ".join(f"word{i}," for i in range(200))
    parts = split_sentences(words, max_chars=100)
    assert all(len(part) <= 100 for part in parts)
    assert " ".join(parts) == words
    chinese = "很" * 250
    assert "".join(split_sentences(chinese, max_chars=100)) == chinese


def test_format_language() -> None:
    assert format_language("en-us") == "en-US"
    assert format_language("cmn-latn-pinyin") == "cmn-Latn-pinyin"
    assert format_language("en-gb-x-rp") == "en-GB-x-rp"
    assert format_language("es-419") == "es-419"
    assert format_language("ZH-HANS") == "zh-Hans"


def test_catalog_priorities() -> None:
    catalog = VoiceCatalog(
        [
            VoiceInfo(identifier="a/xx", name="X", languages=((5, "xx"),)),
            VoiceInfo(
                identifier="a/xx-yy", name="X (Y)", languages=((2, "xx-yy"), (6, "xx"))
            ),
            VoiceInfo(identifier="a/xx-zz", name="X (Z)", languages=((3, "xx"),)),
        ]
    )
    # Lowest priority wins.
    assert catalog.resolve("xx").identifier == "a/xx-zz"
    # A regional voice beats the language's best voice.
    assert catalog.resolve("xx-YY").identifier == "a/xx-yy"
    # No voice for the region: the language's best voice.
    assert catalog.resolve("xx-QQ").identifier == "a/xx-zz"
    assert [v.identifier for v in catalog.candidates("xx")] == [
        "a/xx-zz",
        "a/xx",
        "a/xx-yy",
    ]
    with pytest.raises(UnknownLanguageError):
        catalog.resolve("yy")
    assert catalog.find_voice("x (y)").identifier == "a/xx-yy"


# -- fakes: what real espeak won't do on demand -----------------------------------


# 60 ms of a constant level: sound, so no leading silence is trimmed.
FAKE_CHUNK = np.full(1323, 1000, dtype="<i2").tobytes()


class FakeBackend:
    """A backend that can hang, fail, or synthesise slowly, and checks turns."""

    def __init__(self, *, chunks: int = 3, delay: float = 0.0) -> None:
        self.chunks = chunks
        self.delay = delay
        self.release = threading.Event()
        self.entered = threading.Event()
        self.aborted = 0
        self.produced = 0
        self.threads: set[int] = set()
        self.active = 0
        self.max_active = 0
        self._lock = threading.Lock()

    def initialize(self) -> int:
        return NATIVE

    def list_voices(self) -> list[VoiceInfo]:
        return [VoiceInfo(identifier="fake/en", name="Fake", languages=((5, "en"),))]

    def set_voice(self, identifier: str) -> None:
        assert identifier == "fake/en"

    def set_options(self, options: SpeechOptions) -> None:
        pass

    def synthesize(self, text: str, sink: ChunkSink) -> None:
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            self.threads.add(threading.get_ident())
        try:
            self.entered.set()
            if text.startswith("hang"):
                self.release.wait(10)
            if text.startswith("boom"):
                msg = "synthesiser exploded"
                raise ValueError(msg)
            for _ in range(self.chunks):
                if not sink(FAKE_CHUNK):
                    self.aborted += 1
                    return
                self.produced += 1
                if self.delay:
                    time.sleep(self.delay)
        finally:
            with self._lock:
                self.active -= 1


@asynccontextmanager
async def engine_on(
    fake: FakeBackend, **timeouts: float
) -> AsyncIterator[SpeechEngine]:
    """An engine on `fake`; at the end a hung call is let go and the engine stopped.

    Its threads must all be gone then.
    """
    engine = SpeechEngine(loader=lambda: fake, **timeouts)
    try:
        yield engine
    finally:
        fake.release.set()
        await engine.async_stop()
    assert not speech_threads()


async def assert_waits_for_the_stuck_thread(
    engine: SpeechEngine, fake: FakeBackend
) -> None:
    """Refused while the stuck thread lives; speaks once it has gone."""
    with pytest.raises(SpeechEngineError, match="stuck"):
        await engine.synthesize("too early.")
    fake.release.set()
    await until(lambda: not speech_threads(), 2.0)
    assert await engine.synthesize("now.")


async def test_exception_fails_request_thread_carries_on() -> None:
    fake = FakeBackend()
    async with engine_on(fake) as engine:
        assert await engine.synthesize("before.")
        with pytest.raises(SpeechEngineError) as err:
            await engine.synthesize("boom.")
        assert isinstance(err.value.__cause__, ValueError)
        assert len(await engine.synthesize("after.")) == 3 * len(FAKE_CHUNK)
        assert len(fake.threads) == 1
        assert engine.stats.failed == 1


async def test_hang_replaces_thread_without_overlap() -> None:
    fake = FakeBackend()
    async with engine_on(fake, timeout=0.2) as engine:
        await engine.async_start()
        hung = asyncio.create_task(engine.synthesize("hang."))
        queued = asyncio.create_task(engine.synthesize("queued."))
        with pytest.raises(SpeechEngineError, match="replaced"):
            await hung
        # Moved to the new thread, which keeps out of the library.
        with pytest.raises(SpeechEngineError, match="stuck"):
            await queued
        assert engine.stats.timeouts == 1
        assert engine.stats.restarts == 1
        assert len(speech_threads()) == 2
        assert engine.running

        start = time.perf_counter()
        with pytest.raises(SpeechEngineError, match="stuck"):
            await engine.synthesize("fails fast.")
        assert time.perf_counter() - start < 0.05

        fake.release.set()
        await until(lambda: len(speech_threads()) == 1, 2.0)
        await until(lambda: not engine._stuck, 2.0)
        assert len(await engine.synthesize("after.")) == 3 * len(FAKE_CHUNK)
        # Two threads used the library, never both at once.
        assert len(fake.threads) == 2
        assert fake.max_active == 1


async def test_stop_while_hung_then_restart() -> None:
    fake = FakeBackend()
    async with engine_on(fake, timeout=0.1, stop_timeout=0.1) as engine:
        with pytest.raises(SpeechEngineError, match="replaced"):
            await engine.synthesize("hang.")
        await engine.async_stop()
        # The stuck thread cannot be joined; a new one must still wait for it.
        await assert_waits_for_the_stuck_thread(engine, fake)


async def test_stop_during_hang_keeps_library_guarded() -> None:
    fake = FakeBackend()
    async with engine_on(fake, timeout=10, stop_timeout=0.1) as engine:
        hung = asyncio.create_task(engine.synthesize("hang."))
        await asyncio.to_thread(fake.entered.wait, 2)
        await engine.async_stop()
        with pytest.raises(SpeechEngineError, match="stopped"):
            await hung
        await assert_waits_for_the_stuck_thread(engine, fake)
        assert fake.max_active == 1


async def test_stream_cancel_aborts_via_callback() -> None:
    fake = FakeBackend(chunks=200, delay=0.002)
    engine = SpeechEngine(loader=lambda: fake)
    try:
        async with aclosing(engine.stream("long.", sample_rate=16000)) as audio:
            async for _chunk in audio:
                break
        await until(lambda: fake.aborted == 1, 2.0)
        await until(lambda: engine.stats.aborted == 1, 2.0)
        assert fake.produced < 100
        assert await engine.synthesize("next.")
    finally:
        await engine.async_stop()


async def test_stop_fails_pending_requests() -> None:
    fake = FakeBackend(chunks=500, delay=0.002)
    engine = SpeechEngine(loader=lambda: fake)
    tasks = [asyncio.create_task(engine.synthesize(f"text {i}.")) for i in range(3)]
    await asyncio.to_thread(fake.entered.wait, 2)
    await engine.async_stop()
    for task in tasks:
        with pytest.raises(SpeechEngineError, match="stopped"):
            await task
    assert fake.aborted == 1
    assert not speech_threads()


async def test_engines_sharing_a_library_take_turns() -> None:
    fake = FakeBackend(chunks=5, delay=0.001)
    engines = [SpeechEngine(loader=lambda: fake) for _ in range(3)]
    try:
        await asyncio.gather(
            *(engine.synthesize(f"text {i}.") for i in range(4) for engine in engines)
        )
    finally:
        for engine in engines:
            await engine.async_stop()
    assert len(fake.threads) == 3
    assert fake.max_active == 1


async def test_library_missing() -> None:
    calls = 0

    def missing() -> SpeechBackend:
        nonlocal calls
        calls += 1
        msg = "libespeak-ng.so.1: cannot open shared object file"
        raise OSError(msg)

    engine = SpeechEngine(loader=missing)
    try:
        with pytest.raises(SpeechUnavailableError, match="cannot open"):
            await engine.async_start()
        with pytest.raises(SpeechUnavailableError):
            await engine.voices()
        with pytest.raises(SpeechUnavailableError):
            await engine.synthesize(SHORT)
        audio = engine.stream(SHORT, sample_rate=16000)
        with pytest.raises(SpeechUnavailableError):
            await drain(audio)
        # Known after the first failure: later requests do not retry.
        assert calls == 1
        await engine.async_stop()
        with pytest.raises(SpeechUnavailableError):
            await engine.supported_languages()
        assert calls == 2
    finally:
        await engine.async_stop()
    assert not speech_threads()


def test_binding_missing() -> None:
    with pytest.raises(SpeechUnavailableError):
        _import_binding("custom_components.rtsp_announcer.no_such_binding")


async def test_initialise_failure_is_unavailable() -> None:
    class BrokenLibrary:
        AUDIO_OUTPUT_SYNCHRONOUS = 2

        def Initialize(self, *args: object) -> int:  # noqa: N802
            return -1

    engine = SpeechEngine(loader=lambda: EspeakBackend(BrokenLibrary()))
    try:
        with pytest.raises(SpeechUnavailableError, match="initialise"):
            await engine.synthesize(SHORT)
    finally:
        await engine.async_stop()
